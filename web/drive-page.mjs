// What the scripts that drive the built page share (bench-teach.mjs, bench-live.mjs,
// bench-ort.mjs, screenshot.mjs): Debian's Chromium, headless, on a fresh profile with the
// project's flags; and giving the teaching panel the first photos of each class of a folder.

import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { chromium } from "playwright-core";

export const LONG = 60 * 60 * 1000;

// `{page, close}`: a page in a new headless Chromium; `close` also removes its profile.
// `options`: more of Playwright's context options (e.g. `viewport`).
export const CHROMIUM_FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

export async function launchChromium(options = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "alexnet-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_FLAGS,
    ...options,
  });
  const page = context.pages()[0] || (await context.newPage());
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { page, close };
}

export const sorted = (dir) => fs.readdirSync(dir).sort();

// Opens the teaching panel, adds a class per folder of `train` (sorted) and gives each its first
// `k` photos (sorted, as `trainer teach` orders them); resolves once every class has them all.
export async function giveExamples(page, train, k) {
  const classes = sorted(train);
  await page.click("[data-testid=teach-open]");
  for (const name of classes) {
    await page.fill("[data-testid=teach-class-name]", name);
    await page.press("[data-testid=teach-class-name]", "Enter");
  }
  const inputs = await page.$$("[data-testid=teach-examples]");
  for (const [i, input] of inputs.entries()) {
    const dir = path.join(train, classes[i]);
    await input.setInputFiles(sorted(dir).slice(0, k).map((p) => path.join(dir, p)));
  }
  await page.waitForFunction(
    (want) => [...document.querySelectorAll(".teach-classes li .meta")].every((e) => e.textContent.includes(` ${want} photo`)),
    k,
    { timeout: LONG },
  );
  return classes;
}
