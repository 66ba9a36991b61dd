// Teaching in the page, measured: K photos of each class of a folder (one subfolder per class,
// the trainer's layout, with train/ and val/) taught on the page's CPU path, then every val photo
// classified by the page. Prints the time to add the examples (their features), the time to teach,
// the status line, and val top-1, for BENCHMARKS.md beside `trainer teach` on the same photos.
//
//   (cd web && node bench-teach.mjs K [DATA])    after scripts/build-web.sh
//   DATA defaults to ../shared/data/imagewoof-teach; the first K photos of each class (sorted),
//   as `trainer teach` orders them, so both teach the same layer.

import path from "node:path";
import { LONG, giveExamples, launchChromium, sorted } from "./drive-page.mjs";
import { serveDist } from "./serve-dist.mjs";

const root = path.resolve(import.meta.dirname, "..");
const dist = process.env.ALEXNET_DIST || path.join(root, "dist");
const k = Number(process.argv[2] || 30);
const data = path.resolve(process.argv[3] || path.join(root, "../shared/data/imagewoof-teach"));

const server = await serveDist(dist);

const { page, close } = await launchChromium();
try {
  await page.goto(`http://127.0.0.1:${server.address().port}/?backend=cpu`);
  await page.waitForFunction(() => document.body.dataset.ready === "true", null, { timeout: LONG });
  const started = Date.now();
  const classes = await giveExamples(page, path.join(data, "train"), k);
  const added = Date.now();
  await page.click("[data-testid=teach-train]");
  await page.waitForFunction(() => /(trained|%)$/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: LONG });
  const taught = Date.now();
  const status = await page.textContent("[data-testid=teach-status]");

  const val = classes.flatMap((c) => sorted(path.join(data, "val", c)).map((p) => ({ file: path.join(data, "val", c, p), class: c })));
  await page.setInputFiles("input[type=file]", val.map((v) => v.file));
  await page.waitForFunction((n) => Number(document.body.dataset.classified || 0) + Number(document.body.dataset.failed || 0) >= n, val.length, { timeout: LONG });
  const answers = new Map(await page.$$eval("[data-testid=shot]", (shots) =>
    shots.map((s) => [s.querySelector(".name").textContent, s.querySelector("[data-testid=prediction]")?.dataset.label])));
  const right = val.filter((v) => answers.get(path.basename(v.file)) === v.class).length;
  console.log(JSON.stringify({
    photos_per_class: k,
    examples_seconds: (added - started) / 1000,
    teach_seconds: (taught - added) / 1000,
    status,
    val_top1: right / val.length,
    val_photos: val.length,
  }));
} finally {
  await close();
  server.close();
}
