// Our page's CPU path against ONNX Runtime Web on the same model, in the same headless Chromium,
// one photo at a time: scripts/bench-ort.sh prepares DIR (the ONNX files, the same weights in our
// format, onnxruntime-web) and runs this. Both sides are timed from an encoded photo to the
// logits (decoding, resizing to 256, the centre 224 crop, normalising, the network): ours as the
// page's worker times it (the latency it shows), ORT's around the same steps done by the browser
// (createImageBitmap, a canvas) and `session.run`; ORT's `session.run` alone is printed too.
// ORT runs on one thread: the page is not cross-origin isolated, and a second thread did not help
// ORT on 2 cores (BENCHMARKS.md).
//
//   node web/bench-ort.mjs DIR MODEL [ROUNDS]     MODEL: torchvision or ours
//   ALEXNET_WORKERS=1|2: the page's CPU path on that many workers (default: as the page chooses)

import fs from "node:fs";
import path from "node:path";
import { LONG, launchChromium } from "./drive-page.mjs";
import { serveDist } from "./serve-dist.mjs";

const root = path.resolve(import.meta.dirname, "..");
const dist = process.env.ALEXNET_DIST || path.join(root, "dist");
const dir = path.resolve(process.argv[2]);
const model = process.argv[3] || "torchvision";
const rounds = Number(process.argv[4] || 3);
const photosDir = path.join(process.env.ALEXNET_DATA || path.join(root, "../shared/data"), "photos");
const photos = fs.readdirSync(photosDir).sort().map((p) => path.join(photosDir, p));
const ORT = "/bench/npm/node_modules/onnxruntime-web/dist/";

fs.writeFileSync(path.join(dir, "ort.html"), `<!doctype html><title>ORT</title><script type="module">
import * as ort from "${ORT}ort.min.mjs";
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = "${ORT}";
const MEAN = [0.485, 0.456, 0.406], STD = [0.229, 0.224, 0.225];
async function input(blob) {
  const bitmap = await createImageBitmap(blob);
  const scale = 256 / Math.min(bitmap.width, bitmap.height);
  const [w, h] = [Math.round(bitmap.width * scale), Math.round(bitmap.height * scale)];
  const g = new OffscreenCanvas(224, 224).getContext("2d");
  g.drawImage(bitmap, -(w - 224) / 2, -(h - 224) / 2, w, h);
  const rgba = g.getImageData(0, 0, 224, 224).data;
  const x = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < 224 * 224; i++) for (let c = 0; c < 3; c++) x[c * 224 * 224 + i] = (rgba[4 * i + c] / 255 - MEAN[c]) / STD[c];
  return new ort.Tensor("float32", x, [1, 3, 224, 224]);
}
window.bench = async (modelUrl, urls, rounds) => {
  const session = await ort.InferenceSession.create(modelUrl, { executionProviders: ["wasm"] });
  const blobs = await Promise.all(urls.map(async (u) => (await fetch(u)).blob()));
  const [full, run] = [[], []];
  for (let r = 0; r < rounds; r++) {
    for (const blob of blobs) {
      const t0 = performance.now();
      const x = await input(blob);
      const t1 = performance.now();
      await session.run({ images: x });
      const t2 = performance.now();
      full.push(t2 - t0);
      run.push(t2 - t1);
    }
  }
  return { full, run };
};
document.body.dataset.ready = "true";
</script>`);
fs.mkdirSync(path.join(dir, "photos"), { recursive: true });
for (const p of photos) fs.copyFileSync(p, path.join(dir, "photos", path.basename(p)));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const server = await serveDist(dist, { "/bench/": dir });
const base = `http://127.0.0.1:${server.address().port}`;
const { page, close } = await launchChromium();
try {
  // Ours: each photo dropped on the page in turn; the first round warms up.
  const workers = process.env.ALEXNET_WORKERS ? `&workers=${process.env.ALEXNET_WORKERS}` : "";
  await page.goto(`${base}/?backend=cpu&model=/bench/${model}.safetensors${workers}`);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: LONG });
  const backend = await page.textContent("[data-testid=backend]");
  const ours = [];
  for (let r = 0; r <= rounds; r++) {
    for (const p of photos) {
      const before = Number(await page.evaluate(() => document.body.dataset.classified || 0));
      await page.setInputFiles("input[type=file]", p);
      await page.waitForFunction((n) => Number(document.body.dataset.classified || 0) > n, before, { timeout: LONG });
      const ms = Number((await page.textContent("[data-testid=latency]")).replace(" ms", ""));
      if (r > 0) ours.push(ms);
    }
  }
  // ORT: the same photos, after one warm-up round.
  await page.goto(`${base}/bench/ort.html`);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: LONG });
  const urls = photos.map((p) => `/bench/photos/${path.basename(p)}`);
  const ort = await page.evaluate(([m, u, n]) => window.bench(m, u, n + 1), [`/bench/${model}.onnx`, urls, rounds]);
  const warm = (xs) => xs.slice(photos.length);
  console.log(JSON.stringify({
    model,
    backend,
    photos: photos.length,
    rounds,
    ours_ms_median: median(ours),
    ort_ms_median: median(warm(ort.full)),
    ort_session_run_ms_median: median(warm(ort.run)),
    ours_over_ort: median(ours) / median(warm(ort.full)),
  }));
} finally {
  await close();
  server.close();
}
