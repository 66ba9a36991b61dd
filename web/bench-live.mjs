// Live training in the page, measured: the first K photos of each class of a folder (train/ of the
// trainer's layout) given to the teaching panel, then a new narrow AlexNet (width 0.125) trained
// live on the page's CPU path (or WebGPU) for E epochs (batch 16; every fifth photo of each class
// held out).
// Prints the time to prepare the photos, the training images/s the page reports last, and each
// epoch's loss and held-out top-1, for BENCHMARKS.md beside `trainer train` on the same photos.
//
//   (cd web && node bench-live.mjs K E [DATA] [MODE] [BACKEND])    after scripts/build-web.sh
//   DATA defaults to ../shared/data/imagenette; MODE is "scratch" (default) or "fine-tune";
//   BACKEND "cpu" (default) or "webgpu" (the browser's adapter: SwiftShader in headless Chromium).

import path from "node:path";
import { CHROMIUM_FLAGS, LONG, giveExamples, launchChromium } from "./drive-page.mjs";
import { serveDist } from "./serve-dist.mjs";

const root = path.resolve(import.meta.dirname, "..");
const dist = process.env.ALEXNET_DIST || path.join(root, "dist");
const k = Number(process.argv[2] || 50);
const epochs = Number(process.argv[3] || 10);
const data = path.resolve(process.argv[4] || path.join(root, "../shared/data/imagenette"));
const mode = process.argv[5] || "scratch";
const backend = process.argv[6] || "cpu";
if (!["cpu", "webgpu"].includes(backend)) throw new Error(`BACKEND is "cpu" or "webgpu", not "${backend}"`);

const server = await serveDist(dist);
const { page, close } = await launchChromium(backend === "webgpu" ? { args: [...CHROMIUM_FLAGS, "--enable-unsafe-webgpu"] } : {});
try {
  await page.goto(`http://127.0.0.1:${server.address().port}/?backend=${backend}`);
  await page.waitForFunction(() => document.body.dataset.ready === "true", null, { timeout: LONG });
  const used = await page.textContent("[data-testid=backend]");
  if (!used.toLowerCase().startsWith(backend === "webgpu" ? "webgpu" : "cpu")) throw new Error(`the page runs on ${used}`);
  const classes = await giveExamples(page, path.join(data, "train"), k);
  await page.selectOption("[data-testid=live-mode]", mode);
  await page.fill("[data-testid=live-epochs]", String(epochs));
  const started = Date.now();
  await page.click("[data-testid=live-train]");
  let prepared = null;
  let rate = null;
  for (;;) {
    const status = await page.textContent("[data-testid=live-status]");
    if (/in use now$|stopped/.test(status)) break;
    if (!prepared && /^Epoch /.test(status)) prepared = Date.now();
    const seen = status.match(/~([0-9.]+) images\/s/);
    if (seen) rate = Number(seen[1]);
    await page.waitForTimeout(1000);
  }
  const done = Date.now();
  const history = JSON.parse(await page.getAttribute("[data-testid=live-curves]", "data-history"));
  console.log(JSON.stringify({
    photos_per_class: k,
    classes: classes.length,
    mode,
    backend: used,
    prepare_seconds: ((prepared ?? done) - started) / 1000,
    train_seconds: (done - (prepared ?? done)) / 1000,
    images_per_second: rate,
    status: await page.textContent("[data-testid=live-status]"),
    loss: history.map((e) => Number(e.loss.toFixed(3))),
    held_out_top1: history.map((e) => e.held_out_top1),
  }));
} finally {
  await close();
  server.close();
}
