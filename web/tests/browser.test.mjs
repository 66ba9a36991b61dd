// The page in headless Debian Chromium: WebGPU (SwiftShader) and CPU agree with the native trainer,
// bad files show errors, and nothing but the app and the weights is fetched.
//
// Needs: dist/ built by trunk (or $ALEXNET_DIST), /usr/bin/chromium, and the fixtures that scripts/test-browser.sh
// prepares in $ALEXNET_WEB_FIXTURES (weights, native predictions, bad files).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { chromium } from "playwright-core";

const root = path.resolve(import.meta.dirname, "../..");
const dist = process.env.ALEXNET_DIST || path.join(root, "dist");
const fixtures = process.env.ALEXNET_WEB_FIXTURES;
const photosDir = path.join(process.env.ALEXNET_DATA || path.join(root, "../shared/data"), "photos");
const FLAGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];
const TIMEOUT = 10 * 60 * 1000;

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css", ".json": "application/json" };
let server;
let base;
const requests = [];

function serve(req, res) {
  const url = new URL(req.url, "http://x");
  requests.push(url.pathname);
  const file = url.pathname.startsWith("/fixtures/")
    ? path.join(fixtures, url.pathname.slice("/fixtures/".length))
    : path.join(dist, url.pathname === "/" ? "index.html" : url.pathname);
  fs.stat(file, (err, stat) => {
    if (err || !stat.isFile()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream", "content-length": stat.size });
    fs.createReadStream(file).pipe(res);
  });
}

before(async () => {
  assert.ok(fixtures && fs.existsSync(path.join(fixtures, "model.safetensors")), "run through scripts/test-browser.sh");
  assert.ok(fs.existsSync(path.join(dist, "index.html")), "dist/ missing: trunk build first");
  server = http.createServer(serve);
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
  // The photos through `trainer predict` (same weights; decode + preprocess + forward), to set
  // beside the page's latencies below.
  const nativeMs = nativeLines().map((l) => `${path.basename(l.image)} ${Math.round(l.ms)} ms`);
  console.log(`native latency per image (trainer predict, same files): ${nativeMs.join(", ")}`);
});

after(() => server && server.close());

async function openPage({ webgpu, query }) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "alexnet-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: webgpu ? [...FLAGS, "--enable-unsafe-webgpu"] : FLAGS,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => m.type() === "error" && console.log("[page]", m.text()));
  await page.goto(`${base}/?model=/fixtures/model.safetensors${query || ""}`);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: TIMEOUT });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  assert.equal(ready, "true", await page.textContent("[data-testid=error]"));
  return { context, page };
}

async function classify(page, file) {
  const before = await page.evaluate(() => Number(document.body.dataset.classified || 0) + Number(document.body.dataset.failed || 0));
  const started = Date.now();
  await page.setInputFiles("input[type=file]", file);
  await page.waitForFunction(
    (n) => Number(document.body.dataset.classified || 0) + Number(document.body.dataset.failed || 0) > n,
    before,
    { timeout: TIMEOUT },
  );
  const rows = await page.$$eval("[data-testid=prediction]", (els) =>
    els.map((e) => ({ index: Number(e.dataset.index), label: e.dataset.label, prob: Number(e.dataset.prob) })),
  );
  const error = await page.evaluate(() => {
    const e = document.querySelector("[data-testid=error]");
    return e.hidden ? "" : e.textContent;
  });
  const latency = await page.textContent("[data-testid=latency]");
  return { rows, error, latency, wall: Date.now() - started };
}

function nativeLines() {
  return fs.readFileSync(path.join(fixtures, "native.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
}

function native() {
  return new Map(nativeLines().map((l) => [path.basename(l.image), l.top5]));
}

async function agreesWithNative(page, label) {
  const expected = native();
  const photos = fs.readdirSync(photosDir).sort();
  const timings = [];
  for (const photo of photos) {
    const { rows, error, latency } = await classify(page, path.join(photosDir, photo));
    assert.equal(error, "", `${label} ${photo}: ${error}`);
    const want = expected.get(photo);
    assert.deepEqual(rows.map((r) => r.index), want.map((r) => r.index), `${label} ${photo}: top-5 classes`);
    rows.forEach((r, i) => assert.ok(Math.abs(r.prob - want[i].prob) <= 1e-3, `${label} ${photo}: p=${r.prob} native ${want[i].prob}`));
    timings.push(`${photo} ${latency}`);
  }
  console.log(`${label} latency per image: ${timings.join(", ")}`);
}

test("WebGPU agrees with native, bad files give errors, no stray requests", { timeout: 4 * TIMEOUT }, async () => {
  const { context, page } = await openPage({ webgpu: true });
  try {
    const backend = await page.textContent("[data-testid=backend]");
    assert.match(backend, /WebGPU/);
    const loadedRequests = requests.length;
    await agreesWithNative(page, "WebGPU");

    for (const bad of ["text.jpg", "truncated.png", "empty.png", "huge.png"]) {
      const { error } = await classify(page, path.join(fixtures, bad));
      assert.ok(error.length > 0, `${bad}: no error shown`);
      console.log(`${bad}: ${error}`);
    }
    const { rows, error } = await classify(page, path.join(photosDir, "chelsea.png"));
    assert.equal(error, "");
    assert.equal(rows.length, 5);

    // After load: no request at all (images never leave the page).
    assert.deepEqual(requests.slice(loadedRequests), [], "requests after load");
    const allowed = (p) => p === "/" || p === "/index.html" || p === "/fixtures/model.safetensors" || /\.(js|wasm|css)$/.test(p) || p === "/favicon.ico";
    assert.deepEqual(requests.filter((p) => !allowed(p)), [], "unexpected requests");

    if (process.env.ALEXNET_SCREENSHOT) {
      await page.screenshot({ path: process.env.ALEXNET_SCREENSHOT, fullPage: true });
    }
  } finally {
    await context.close();
  }
});

test("without WebGPU the CPU fallback runs and agrees", { timeout: 4 * TIMEOUT }, async () => {
  const { context, page } = await openPage({ webgpu: false });
  try {
    assert.match(await page.textContent("[data-testid=backend]"), /CPU/);
    await agreesWithNative(page, "CPU");
  } finally {
    await context.close();
  }
});

test("the shipped model loads by default, agrees with native, and starts from Cache Storage the second time", { timeout: 4 * TIMEOUT }, async () => {
  const shippedDir = path.join(fixtures, "shipped");
  const manifest = JSON.parse(fs.readFileSync(path.join(dist, "model", "manifest.json"), "utf8"));
  const expected = new Map(
    fs.readFileSync(path.join(fixtures, "shipped.jsonl"), "utf8").trim().split("\n")
      .map((l) => JSON.parse(l)).map((l) => [path.basename(l.image), l.top5]),
  );
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "alexnet-chromium-"));
  // No WebGPU flag: the page falls back to the CPU by itself, as on a browser without WebGPU.
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
  try {
    const page = context.pages()[0] || (await context.newPage());
    const photos = fs.readdirSync(shippedDir).sort();
    const firstPrediction = async () => {
      const started = Date.now();
      await page.goto(`${base}/`);
      await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: TIMEOUT });
      assert.equal(await page.evaluate(() => document.body.dataset.ready), "true", await page.textContent("[data-testid=error]"));
      const { rows, error } = await classify(page, path.join(shippedDir, photos[0]));
      assert.equal(error, "");
      return { ms: Date.now() - started, rows };
    };
    const modelUrl = `/model/${manifest.file}`;
    const cold = await firstPrediction();
    assert.ok(requests.includes(modelUrl), "the shipped model was downloaded");
    const card = await page.textContent("[data-testid=model-card]");
    assert.match(card, /10 classes/);
    assert.match(card, /golf ball/);
    for (const photo of photos) {
      const { rows, error } = await classify(page, path.join(shippedDir, photo));
      assert.equal(error, "", `${photo}: ${error}`);
      const want = expected.get(photo);
      assert.deepEqual(rows.map((r) => r.index), want.map((r) => r.index), `${photo}: top-5 classes`);
      rows.forEach((r, i) => assert.ok(Math.abs(r.prob - want[i].prob) <= 1e-3, `${photo}: p=${r.prob} native ${want[i].prob}`));
    }

    // Second visit: the weights come from Cache Storage, not the network.
    const before = requests.length;
    const warm = await firstPrediction();
    assert.ok(!requests.slice(before).includes(modelUrl), "the model was fetched again");
    console.log(`cold start to first prediction (CPU path): ${cold.ms} ms downloading the model, ${warm.ms} ms from Cache Storage`);
  } finally {
    await context.close();
  }
});
