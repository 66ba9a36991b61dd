// The README's picture of the page (docs/screenshot.png): the shipped model in headless Debian
// Chromium on its CPU path, classifying two of the committable photos, one of them opened to show
// what the network sees.
//
//   (cd web && node screenshot.mjs [OUT.png])     after scripts/build-web.sh
//
// The photos are not Imagenette's (those may not be committed, even inside a picture): the model
// knows only its 10 classes, and the page says so beside a low-confidence answer.

import fs from "node:fs";
import path from "node:path";
import { launchChromium } from "./drive-page.mjs";
import { serveDist } from "./serve-dist.mjs";

const root = path.resolve(import.meta.dirname, "..");
const dist = process.env.ALEXNET_DIST || path.join(root, "dist");
const photos = path.join(process.env.ALEXNET_DATA || path.join(root, "../shared/data"), "photos");
const out = path.resolve(process.argv[2] || path.join(root, "docs/screenshot.png"));

const server = await serveDist(dist);

const { page, close } = await launchChromium({ viewport: { width: 1100, height: 900 } });
try {
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 120000 });
  for (const photo of ["coffee.png", "rocket.jpg"]) {
    const done = await page.evaluate(() => Number(document.body.dataset.classified || 0));
    await page.setInputFiles("input[type=file]", path.join(photos, photo));
    await page.waitForFunction((n) => Number(document.body.dataset.classified || 0) > n, done, { timeout: 120000 });
  }
  await page.click("[data-testid=shot]:first-child [data-testid=explain]");
  await page.waitForSelector("[data-testid=shot]:first-child [data-testid=inside] figure", { timeout: 120000 });
  fs.mkdirSync(path.dirname(out), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  console.log(out);
} finally {
  await close();
  server.close();
}
