// The page in headless Debian Chromium: WebGPU (SwiftShader) and CPU agree with the native trainer,
// bad files show errors, and nothing but the app and the weights is fetched.
//
// Needs: dist/ built by scripts/build-web.sh (or $ALEXNET_DIST), /usr/bin/chromium, and the fixtures that scripts/test-browser.sh
// prepares in $ALEXNET_WEB_FIXTURES (weights, native predictions, bad files).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { execFileSync } from "node:child_process";
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
// While true, the server hangs up on every request: the network is gone.
let offline = false;
// Paths served from another fixture file (to change a file between visits).
const served = new Map();

function serve(req, res) {
  if (offline) {
    req.socket.destroy();
    return;
  }
  const url = new URL(req.url, "http://x");
  requests.push(url.pathname);
  const fixture = served.get(url.pathname) || url.pathname;
  const file = fixture.startsWith("/fixtures/")
    ? path.join(fixtures, fixture.slice("/fixtures/".length))
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
  assert.ok(fs.existsSync(path.join(dist, "index.html")), "dist/ missing: run scripts/build-web.sh first");
  server = http.createServer(serve);
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
  // The photos through `trainer predict` (same weights; decode + preprocess + forward), to set
  // beside the page's latencies below.
  const nativeMs = readJsonl("native.jsonl").map((l) => `${path.basename(l.image)} ${Math.round(l.ms)} ms`);
  console.log(`native latency per image (trainer predict, same files): ${nativeMs.join(", ")}`);
});

// The browsers' profiles hold the page's caches (the model: hundreds of MB each): removed once
// every browser has closed.
const profiles = [];
after(() => {
  if (server) server.close();
  for (const dir of profiles) {
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    } catch (e) {
      console.log(`could not remove ${dir}: ${e.message}`);
    }
  }
});

// A fresh Chromium profile; `webgpu`: with WebGPU (SwiftShader), `camera`: a synthetic camera,
// allowed without asking.
async function launch({ webgpu = false, camera = false } = {}) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "alexnet-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      ...FLAGS,
      ...(webgpu ? ["--enable-unsafe-webgpu"] : []),
      ...(camera ? ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"] : []),
    ],
  });
  profiles.push(userDataDir);
  const page = context.pages()[0] || (await context.newPage());
  // Every error and warning the page (or its worker) logs, and every uncaught exception.
  const logged = [];
  page.on("console", (m) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    logged.push(`${m.type()}: ${m.text()}`);
    console.log("[page]", m.type(), m.text());
  });
  page.on("pageerror", (e) => logged.push(`uncaught: ${e.message}`));
  return { context, page, logged };
}

// Opens the page at `query` and waits until its model has loaded.
async function visit(page, query) {
  await page.goto(`${base}/${query}`);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: TIMEOUT });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  assert.equal(ready, "true", await page.textContent("[data-testid=error]"));
  // The service worker has installed: the page's files are in Cache Storage (and fetched).
  await page.evaluate(() => navigator.serviceWorker.ready);
}

// `model`: the weights' URL, or null for the page's own (the shipped model).
async function openPage({ webgpu, query = "", model = "/fixtures/model.safetensors", camera = false }) {
  const { context, page, logged } = await launch({ webgpu, camera });
  await visit(page, model ? `?model=${model}${query}` : `?${query.replace(/^&/, "")}`);
  return { context, page, logged };
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
  // The gallery shows the newest image first.
  const rows = await page.$$eval("[data-testid=shot]:first-child [data-testid=prediction]", (els) =>
    els.map((e) => ({ index: Number(e.dataset.index), label: e.dataset.label, prob: Number(e.dataset.prob) })),
  );
  const error = await page.evaluate(() => {
    const e = document.querySelector("[data-testid=error]");
    return e.hidden ? "" : e.textContent;
  });
  const latency = error ? "" : await page.textContent("[data-testid=latency]");
  return { rows: error ? [] : rows, error, latency, wall: Date.now() - started };
}

function readJsonl(file) {
  return fs.readFileSync(path.join(fixtures, file), "utf8").trim().split("\n").map((l) => JSON.parse(l));
}

// `trainer predict --json` on the same files, by file name: {top5, out_of_classes}.
function answersByFile(file) {
  return new Map(readJsonl(file).map((l) => [path.basename(l.image), l]));
}

// The page's notes under a photo's top 5 say what `trainer predict` says: "none of my classes"
// where the model's threshold flags it, "not sure" at a low top-1 for a model without one.
async function assertNotes(page, want, label) {
  const note = async (id) => Boolean(await page.$(`[data-testid=shot]:first-child [data-testid=${id}]`));
  assert.equal(await note("out-of-classes"), want.out_of_classes === true, `${label}: the none-of-my-classes note`);
  const unsure = want.out_of_classes === null && want.top5[0].prob < 0.5;
  assert.equal(await note("unsure"), unsure, `${label}: the low-confidence note (top-1 ${want.top5[0].prob})`);
}

async function agreesWithNative(page, label) {
  const expected = answersByFile("native.jsonl");
  const photos = fs.readdirSync(photosDir).sort();
  const timings = [];
  for (const photo of photos) {
    const { rows, error, latency } = await classify(page, path.join(photosDir, photo));
    assert.equal(error, "", `${label} ${photo}: ${error}`);
    const answer = expected.get(photo);
    const want = answer.top5;
    assert.deepEqual(rows.map((r) => r.index), want.map((r) => r.index), `${label} ${photo}: top-5 classes`);
    rows.forEach((r, i) => assert.ok(Math.abs(r.prob - want[i].prob) <= 1e-3, `${label} ${photo}: p=${r.prob} native ${want[i].prob}`));
    await assertNotes(page, answer, `${label} ${photo}`);
    timings.push(`${photo} ${latency}`);
  }
  console.log(`${label} latency per image: ${timings.join(", ")}`);
}

test("WebGPU agrees with native, bad files give errors, no stray requests", { timeout: 4 * TIMEOUT }, async () => {
  // SwiftShader is a software adapter: the page would pick the CPU by itself (tested below).
  const { context, page, logged } = await openPage({ webgpu: true, query: "&backend=webgpu" });
  try {
    const backend = await page.textContent("[data-testid=backend]");
    assert.match(backend, /WebGPU/);
    const loadedRequests = requests.length;
    await agreesWithNative(page, "WebGPU");
    // No kernel the browser rejected (CubeCL logs those to the worker's console).
    assert.deepEqual(logged, [], "the console");

    const expectedErrors = {
      "text.jpg": "not an image in a supported format",
      "truncated.png": "could not be decoded",
      "empty.png": "the file is empty",
      "huge.png": "images over 64 megapixels (8192x8192) are refused",
      "line.png": "60000x1 pixels: too elongated to classify",
      "truncated.jpg": "the JPEG file is truncated",
    };
    for (const [bad, expected] of Object.entries(expectedErrors)) {
      const { error } = await classify(page, path.join(fixtures, bad));
      assert.ok(error.includes(expected), `${bad}: "${error}" lacks "${expected}"`);
    }
    const { rows, error } = await classify(page, path.join(photosDir, "chelsea.png"));
    assert.equal(error, "");
    assert.equal(rows.length, 5);

    // After load: no request at all (images never leave the page).
    // (The service worker's own script, /sw.js, may be re-checked by the browser: no image data.)
    assert.deepEqual(requests.slice(loadedRequests).filter((p) => p !== "/sw.js"), [], "requests after load");
    const allowed = (p) => p === "/" || p === "/index.html" || p.startsWith("/fixtures/") && p.endsWith(".safetensors") || /\.(js|wasm|css)$/.test(p) || p === "/favicon.ico"
      || p === "/model/manifest.json" || p === "/model/check.jpg"; // the service worker keeps them for offline use
    assert.deepEqual(requests.filter((p) => !allowed(p)), [], "unexpected requests");

    if (process.env.ALEXNET_SCREENSHOT) {
      await page.screenshot({ path: process.env.ALEXNET_SCREENSHOT, fullPage: true });
    }
  } finally {
    await context.close();
  }
});

test("the camera classifies frame after frame, and gives a class examples while a button is held", { timeout: TIMEOUT }, async () => {
  const { context, page } = await openPage({ webgpu: false, camera: true, model: null });
  const holdFor = async (ms) => {
    await page.hover("[data-testid=teach-camera]");
    await page.mouse.down();
    await page.waitForTimeout(ms);
    await page.mouse.up();
  };
  try {
    await page.click("[data-testid=teach-open]");
    await page.fill("[data-testid=teach-class-name]", "my desk");
    await page.press("[data-testid=teach-class-name]", "Enter");
    await holdFor(100);
    assert.match(await page.textContent("[data-testid=teach-status]"), /^Start the camera first/);
    await page.click("[data-testid=camera]");
    await page.waitForFunction(() => /frames\/s/.test(document.querySelector("[data-testid=camera-fps]").textContent), null, { timeout: TIMEOUT });
    assert.equal(await page.$$eval("[data-testid=camera-top] li", (els) => els.length), 5);
    // The page's rate counts every frame since the camera started: read after two seconds, it
    // is the shipped model's steady rate more than its first frame's.
    await page.waitForTimeout(2000);
    console.log(`camera (shipped model): ${await page.textContent("[data-testid=camera-fps]")}`);
    await holdFor(1000);
    await page.waitForFunction(() => /added to “my desk”/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    const count = await page.textContent(".teach-classes li .meta");
    assert.match(count, / [1-9][0-9]* photos? /, `frames added while held: ${count}`);
    console.log(`camera frames added in a 1 s hold: ${count.trim()}`);
    await page.click("[data-testid=camera]");
    assert.equal(await page.textContent("[data-testid=camera]"), "Use the camera");
  } finally {
    await context.close();
  }
});

test("a software WebGPU adapter counts as the CPU", { timeout: TIMEOUT }, async () => {
  const { context, page } = await openPage({ webgpu: true });
  try {
    const backend = await page.textContent("[data-testid=backend]");
    assert.match(backend, /^CPU \(the WebGPU adapter is a software one/);
  } finally {
    await context.close();
  }
});

test("a model file's text is never HTML", { timeout: TIMEOUT }, async () => {
  const { context, page } = await openPage({ webgpu: false, query: "" , model: "/fixtures/injected.safetensors" });
  try {
    const card = await page.textContent("[data-testid=model-card]");
    assert.ok(card.includes("<img src=x onerror="), `the payload is shown as text: ${card}`);
    assert.equal(await page.evaluate(() => window.injected), undefined, "the payload ran");
    assert.equal(await page.$("[data-testid=model-card] img"), null, "the payload became an element");
  } finally {
    await context.close();
  }
});

test("a model file that fails to load is not kept in the cache", { timeout: TIMEOUT }, async () => {
  const { context, page } = await launch();
  try {
    served.set("/fixtures/flaky.safetensors", "/fixtures/truncated-model.safetensors");
    await page.goto(`${base}/?model=/fixtures/flaky.safetensors`);
    await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: TIMEOUT });
    assert.equal(await page.evaluate(() => document.body.dataset.ready), "error");
    assert.match(await page.textContent("[data-testid=error]"), /The model could not be loaded/);
    // The server is fixed: the next visit loads the good file, not a cached broken one.
    served.set("/fixtures/flaky.safetensors", "/fixtures/model.safetensors");
    await visit(page, "?model=/fixtures/flaky.safetensors");
  } finally {
    served.clear();
    await context.close();
  }
});

test("without WebGPU the CPU fallback runs and agrees, and the page never freezes", { timeout: 4 * TIMEOUT }, async () => {
  // On two workers (the paper's two-GPU split), whatever this machine's timing would choose.
  const { context, page, logged } = await openPage({ webgpu: false, query: "&workers=2" });
  try {
    assert.match(await page.textContent("[data-testid=backend]"), /^CPU \(no WebGPU adapter\) · 2 workers$/);
    // Main-thread tasks over 50 ms ("long tasks") while classifying: inference runs in a worker.
    await page.evaluate(() => {
      window.longTasks = [];
      new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration)))
        .observe({ type: "longtask" });
    });
    await agreesWithNative(page, "CPU");
    // A file that does not decode fails before the helper hears of it; the next photo still goes
    // through both workers.
    for (const [bad, expected] of [["truncated.png", "could not be decoded"], ["line.png", "too elongated"]]) {
      const { error } = await classify(page, path.join(fixtures, bad));
      assert.ok(error.includes(expected), `${bad}: "${error}" lacks "${expected}"`);
    }
    const { rows } = await classify(page, path.join(photosDir, "chelsea.png"));
    const want = answersByFile("native.jsonl").get("chelsea.png").top5;
    assert.deepEqual(rows.map((r) => r.index), want.map((r) => r.index), "chelsea.png after the bad files");
    assert.deepEqual(logged.filter((l) => /one worker/.test(l)), [], "the split was kept");
    const longTasks = await page.evaluate(() => window.longTasks);
    const stall = Math.max(0, ...longTasks);
    console.log(`longest main-thread task while classifying: ${stall ? `${Math.round(stall)} ms` : "none over 50 ms"}`);
    assert.ok(stall <= 50, `the main thread stalled for ${Math.round(stall)} ms`);
  } finally {
    await context.close();
  }
});

test("the shipped model loads by default with a clean console, agrees with native, and works offline after one visit", { timeout: 4 * TIMEOUT }, async () => {
  const shippedDir = path.join(fixtures, "shipped");
  const manifest = JSON.parse(fs.readFileSync(path.join(dist, "model", "manifest.json"), "utf8"));
  const expected = answersByFile("shipped.jsonl");
  const flagged = [...expected.values()].filter((a) => a.out_of_classes === true).length;
  assert.ok(flagged > 0 && flagged < expected.size, `the shipped model is calibrated: it flags ${flagged} of ${expected.size} photos`);
  // WebGPU on, as Chromium ships it: its adapter here is SwiftShader, a software one, so the page
  // picks the CPU by itself. (Without WebGPU, Chromium itself warns "No available adapters." when
  // the page asks for one: that run is the CPU fallback test's.)
  const { context, page, logged } = await launch({ webgpu: true });
  try {
    const photos = fs.readdirSync(shippedDir).sort();
    const firstPrediction = async () => {
      const started = Date.now();
      await visit(page, "");
      const { rows, error } = await classify(page, path.join(shippedDir, photos[0]));
      assert.equal(error, "");
      return { ms: Date.now() - started, rows };
    };
    const modelUrl = `/model/${manifest.file}`;
    const cold = await firstPrediction();
    assert.ok(requests.includes(modelUrl), "the shipped model was downloaded");
    // Loading the page and classifying a photo: no error and no warning in the console.
    assert.deepEqual(logged, [], "the console");
    const card = await page.textContent("[data-testid=model-card]");
    assert.match(card, /10 classes/);
    assert.match(card, /golf ball/);
    for (const photo of photos) {
      const { rows, error } = await classify(page, path.join(shippedDir, photo));
      assert.equal(error, "", `${photo}: ${error}`);
      const answer = expected.get(photo);
      const want = answer.top5;
      assert.deepEqual(rows.map((r) => r.index), want.map((r) => r.index), `${photo}: top-5 classes`);
      rows.forEach((r, i) => assert.ok(Math.abs(r.prob - want[i].prob) <= 1e-3, `${photo}: p=${r.prob} native ${want[i].prob}`));
      await assertNotes(page, answer, photo);
    }

    // Inside the network: conv1's filters after load; for an image, the pixels that drove its
    // top class and the five conv layers' feature maps.
    const filters = await page.$eval("[data-testid=filters] canvas", (c) => [c.width, c.height]);
    assert.deepEqual(filters, [24 * 12 + 1, 2 * 12 + 1], "48 filters of 11x11 in two rows (one per group)");
    await page.click("[data-testid=shot]:first-child [data-testid=explain]");
    await page.waitForSelector("[data-testid=shot]:first-child [data-testid=inside] figure", { timeout: TIMEOUT });
    const figures = await page.$$eval("[data-testid=shot]:first-child [data-testid=inside] figcaption", (els) => els.map((e) => e.textContent));
    assert.deepEqual(figures, ["pixels that drove the top class", "conv1", "conv2", "conv3", "conv4", "conv5"]);

    // Several files at once, a bad one among them: one card each, newest first, and the bad
    // one's error stays beside it after the good ones that follow.
    const shotsBefore = await page.$$eval("[data-testid=shot]", (els) => els.length);
    const batch = [path.join(fixtures, "text.jpg"), ...photos.slice(0, 3).map((p) => path.join(shippedDir, p))];
    await page.setInputFiles("input[type=file]", batch);
    await page.waitForFunction((n) => document.querySelectorAll("[data-testid=shot] [data-testid=latency], [data-testid=shot] [data-testid=image-error]").length >= n, shotsBefore + batch.length, { timeout: TIMEOUT });
    const shots = await page.$$eval("[data-testid=shot]", (els) => els.map((e) => e.querySelector(".name").textContent));
    assert.deepEqual(shots.slice(0, batch.length), batch.map((f) => path.basename(f)).reverse());
    assert.match(await page.textContent("[data-testid=shot]:nth-child(4) [data-testid=image-error]"), /not an image/);
    assert.equal(await page.evaluate(() => document.querySelector("[data-testid=error]").hidden), true, "the newest image is fine");

    // With the network gone after that one visit, the page reloads (service worker) and classifies.
    offline = true;
    try {
      const { rows } = await firstPrediction();
      assert.deepEqual(rows.map((r) => r.index), expected.get(photos[0]).top5.map((r) => r.index));
    } finally {
      offline = false;
    }

    // Online again: the weights come from Cache Storage, not the network.
    const before = requests.length;
    const warm = await firstPrediction();
    assert.ok(!requests.slice(before).includes(modelUrl), "the model was fetched again");
    console.log(`cold start to first prediction (CPU path): ${cold.ms} ms downloading the model, ${warm.ms} ms from Cache Storage`);
    assert.match(await page.textContent("[data-testid=storage]"), /MB kept for offline use/);
  } finally {
    await context.close();
  }
});

// `trainer predict --json` with the trainer the fixtures were made with, on `photos`.
function nativePredict(weights, photos) {
  const out = execFileSync(process.env.ALEXNET_TRAINER, ["--backend", "cpu", "predict", "--json", "--weights", weights, ...photos], { encoding: "utf8" });
  return new Map(out.trim().split("\n").map((l) => JSON.parse(l)).map((l) => [path.basename(l.image), l]));
}

test("teaching: new classes from example photos, used for every photo after, the nearest photos, exported for the trainer", { timeout: 2 * TIMEOUT }, async () => {
  const teachDir = path.join(fixtures, "teach");
  const classes = fs.readdirSync(path.join(teachDir, "train")).sort();
  // Names as a visitor types them: one carries HTML, shown as text.
  const names = ["first breed", "<b>second</b> breed", "third breed"];
  const { context, page } = await launch();
  try {
    await visit(page, "?backend=cpu");
    await page.click("[data-testid=teach-open]");
    const status = () => page.textContent("[data-testid=teach-status]");
    await page.click("[data-testid=teach-train]");
    await page.waitForFunction(() => document.querySelector("[data-testid=teach-status]").textContent !== "");
    assert.match(await status(), /at least two classes/);
    for (const name of names) {
      await page.fill("[data-testid=teach-class-name]", name);
      await page.press("[data-testid=teach-class-name]", "Enter");
    }
    await page.fill("[data-testid=teach-class-name]", "third breed ");
    await page.press("[data-testid=teach-class-name]", "Enter");
    assert.match(await status(), /already a class named “third breed”/);
    await page.fill("[data-testid=teach-class-name]", "   ");
    await page.press("[data-testid=teach-class-name]", "Enter");
    assert.match(await status(), /needs a name/);
    assert.equal(await page.$$eval("[data-testid=teach-examples]", (els) => els.length), 3);
    assert.equal(await page.$(".teach-classes b"), null, "a class name became HTML");

    const inputs = await page.$$("[data-testid=teach-examples]");
    const examples = [];
    for (const [i, input] of inputs.entries()) {
      const dir = path.join(teachDir, "train", classes[i]);
      const photos = fs.readdirSync(dir).sort().map((p) => path.join(dir, p));
      // A non-image after the last class's examples: refused by name, the rest kept.
      await input.setInputFiles(i === inputs.length - 1 ? [...photos, path.join(fixtures, "text.jpg")] : photos);
      examples.push(photos.length);
    }
    await page.waitForFunction(() => /text\.jpg: .*not added/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    await page.click("[data-testid=teach-train]");
    await page.waitForFunction(() => /(trained|%)$/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    const taught = await status();
    console.log(`teaching: ${taught}`);
    assert.match(taught, new RegExp(`^Taught 3 classes from ${examples.reduce((a, b) => a + b)} photos in [0-9.]+ s; on a fifth of the photos held out, top-1 [0-9.]+%$`));
    assert.match(await page.textContent("[data-testid=model-card]"), /3 classes/);

    // Every photo from now on gets the taught names.
    const testPhotos = classes.map((c) => {
      const dir = path.join(teachDir, "val", c);
      return path.join(dir, fs.readdirSync(dir).sort()[0]);
    });
    const pageAnswers = [];
    for (const photo of testPhotos) {
      const { rows, error } = await classify(page, photo);
      assert.equal(error, "", `${photo}: ${error}`);
      assert.deepEqual(rows.map((r) => r.label).sort(), [...names].sort(), "the taught classes, all three");
      pageAnswers.push(rows);
    }

    // The paper's Figure 4: the photos given so far nearest in fc7. The same photo again is at
    // distance 0 from its first copy.
    await classify(page, testPhotos[0]);
    const nearest = await page.$$eval("[data-testid=shot]:first-child [data-testid=neighbours] img", (els) => els.map((e) => e.dataset.name));
    assert.equal(nearest.length, 5, `nearest: ${nearest}`);
    assert.equal(nearest[0], path.basename(testPhotos[0]), `nearest: ${nearest}`);
    const given = new Set([...testPhotos, ...classes.flatMap((c) => fs.readdirSync(path.join(teachDir, "train", c)))].map((p) => path.basename(p)));
    assert.ok(nearest.every((n) => given.has(n)), `nearest: ${nearest}`);

    // The export is a weights file the trainer reads, and it answers as the page did.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=teach-export]")]);
    const exported = path.join(fixtures, "taught.safetensors");
    await download.saveAs(exported);
    const native = nativePredict(exported, testPhotos);
    testPhotos.forEach((photo, i) => {
      const want = native.get(path.basename(photo)).top5;
      assert.deepEqual(pageAnswers[i].map((r) => r.label), want.map((r) => r.label), `${photo}: the exported model's top 3`);
      pageAnswers[i].forEach((r, k) => assert.ok(Math.abs(r.prob - want[k].prob) <= 1e-3, `${photo}: p=${r.prob} native ${want[k].prob}`));
    });

    // The taught model is kept in the browser: a reload brings it back.
    await visit(page, "?backend=cpu");
    assert.match(await page.textContent("[data-testid=model-card]"), /3 classes/);
    const back = /^Your model \(first breed, <b>second<\/b> breed, third breed\) is back, with your 3 classes and 15 photos/;
    await page.waitForFunction((p) => new RegExp(p).test(document.querySelector("[data-testid=teach-status]").textContent), back.source, { timeout: TIMEOUT });

    // Back to the loaded model, then that export loaded from a file: the taught names again.
    await page.click("[data-testid=teach-reset]");
    await page.waitForFunction(() => /^Back to the loaded model/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    assert.match(await page.textContent("[data-testid=model-card]"), /10 classes/);
    await visit(page, "?backend=cpu");
    assert.match(await page.textContent("[data-testid=model-card]"), /10 classes/, "going back forgot the kept model");
    await page.setInputFiles("[data-testid=model-file]", path.join(fixtures, "truncated-model.safetensors"));
    await page.waitForFunction(() => /cannot be used/.test(document.querySelector("[data-testid=error]").textContent), null, { timeout: TIMEOUT });
    assert.match(await page.textContent("[data-testid=model-card]"), /10 classes/, "a broken file leaves the model in use");
    await page.setInputFiles("[data-testid=model-file]", exported);
    await page.waitForFunction(() => /3 classes/.test(document.querySelector("[data-testid=model-card]").textContent), null, { timeout: TIMEOUT });
    const { rows } = await classify(page, testPhotos[0]);
    assert.deepEqual(rows.map((r) => r.label), pageAnswers[0].map((r) => r.label));

    // A folder in the trainer's layout: its class subfolders under train/ become classes with
    // their photos, val/ is left out; a folder of photos without subfolders is refused.
    await page.click("[data-testid=teach-open]");
    await page.setInputFiles("[data-testid=teach-folder]", teachDir);
    await page.waitForFunction(() => /left out\.$/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    assert.match(await status(), /^3 files of that folder are not photos or lie outside class subfolders/);
    const rowsByClass = await page.$$eval(".teach-classes li", (els) => els.map((e) => e.querySelector(".teach-name").textContent + e.querySelector(".meta").textContent));
    // After the three classes typed in before, kept in this browser across the reloads.
    assert.deepEqual(rowsByClass, [...names, ...classes].map((c) => `${c} · 5 photos · `));
    await page.setInputFiles("[data-testid=teach-folder]", path.join(fixtures, "shipped"));
    await page.waitForFunction(() => /no class subfolders/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
  } finally {
    await context.close();
  }
});

test("live training: the whole network on the teaching photos, fine-tuned and from scratch", { timeout: 2 * TIMEOUT }, async () => {
  const teachDir = path.join(fixtures, "teach");
  const { context, page } = await launch();
  try {
    await visit(page, "?backend=cpu");
    await page.click("[data-testid=teach-open]");
    await page.setInputFiles("[data-testid=teach-folder]", teachDir);
    await page.waitForFunction(() => /left out\.$/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    const liveStatus = () => page.textContent("[data-testid=live-status]");
    const trainLive = async (mode, epochs) => {
      await page.selectOption("[data-testid=live-mode]", mode);
      await page.fill("[data-testid=live-epochs]", String(epochs));
      const started = Date.now();
      await page.click("[data-testid=live-train]");
      await page.waitForFunction(() => /in use now$/.test(document.querySelector("[data-testid=live-status]").textContent), null, { timeout: TIMEOUT });
      const history = JSON.parse(await page.getAttribute("[data-testid=live-curves]", "data-history"));
      console.log(`live training (${mode}, ${epochs} epochs of 12 photos, 3 held out): ${Date.now() - started} ms; loss ${history.map((e) => e.loss.toFixed(3)).join(" ")}; held out ${history.map((e) => e.held_out_top1).join(" ")}`);
      return history;
    };
    // One batch per epoch here: the loss of single batches is noisy, so the first four epochs'
    // mean against the last four's.
    const tuned = await trainLive("fine-tune", 24);
    assert.equal(tuned.length, 24);
    const mean = (epochs) => epochs.reduce((sum, e) => sum + e.loss, 0) / epochs.length;
    assert.ok(mean(tuned.slice(-4)) < mean(tuned.slice(0, 4)), `the loss fell: ${tuned.map((e) => e.loss.toFixed(3))}`);
    assert.ok(tuned.every((e) => e.held_out_top1 !== null), "every fifth photo held out and scored");
    assert.match(await liveStatus(), /^Trained 24 epochs: loss [0-9.]+; the trained model is in use now$/);
    assert.match(await page.textContent("[data-testid=model-card]"), /3 classes/);
    const filters = await page.$eval("[data-testid=live-filters] canvas", (c) => [c.width, c.height]);
    assert.deepEqual(filters, [24 * 12 + 1, 2 * 12 + 1], "the fine-tuned model's 48 conv1 filters");
    const { rows, error } = await classify(page, path.join(teachDir, "val", fs.readdirSync(path.join(teachDir, "val")).sort()[0], fs.readdirSync(path.join(teachDir, "val", fs.readdirSync(path.join(teachDir, "val")).sort()[0]))[0]));
    assert.equal(error, "");
    assert.equal(rows.length, 3, "the trained model's three classes");

    const scratch = await trainLive("scratch", 2);
    assert.equal(scratch.length, 2);
    assert.ok(scratch.every((e) => Number.isFinite(e.loss)), `finite losses: ${scratch.map((e) => e.loss)}`);

    // The trained network (narrower: other fc7 features) is now the one taught on: a photo given
    // after it joins the others, and teaching works on all of them.
    const firstClass = fs.readdirSync(path.join(teachDir, "val")).sort()[0];
    const extra = path.join(teachDir, "val", firstClass, fs.readdirSync(path.join(teachDir, "val", firstClass)).sort()[0]);
    await (await page.$$("[data-testid=teach-examples]"))[0].setInputFiles(extra);
    await page.waitForFunction(() => /added to/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    await page.click("[data-testid=teach-train]");
    await page.waitForFunction(() => /(trained|%)$/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    assert.match(await page.textContent("[data-testid=teach-status]"), /^Taught 3 classes from 16 photos/);

    // Paused (no batch runs), resumed, then stopped early: the model trained so far is in use.
    await page.fill("[data-testid=live-epochs]", "200");
    await page.click("[data-testid=live-train]");
    const statusMatches = (pattern) => page.waitForFunction((p) => new RegExp(p).test(document.querySelector("[data-testid=live-status]").textContent), pattern.source, { timeout: TIMEOUT });
    await statusMatches(/^Epoch 2 of 200/);
    await page.click("[data-testid=live-pause]");
    await statusMatches(/ · paused$/);
    const pausedAt = await liveStatus();
    await page.waitForTimeout(1000);
    assert.equal(await liveStatus(), pausedAt, "a batch ran while paused");
    await page.click("[data-testid=live-pause]");
    await statusMatches(/^Epoch [0-9]+ of 200, batch .*images\/s$/);
    await page.click("[data-testid=live-stop]");
    await statusMatches(/in use now$/);
    const [, epochsDone] = (await liveStatus()).match(/^Trained ([0-9]+) epochs?/);
    assert.ok(Number(epochsDone) >= 1 && Number(epochsDone) < 200, `stopped after ${epochsDone} epochs`);

    // A reload mid-run loses nothing: the classes and photos come back, and the run resumes
    // from its last epoch's checkpoint.
    await page.click("[data-testid=live-train]");
    await statusMatches(/^Epoch 3 of 200/);
    const photosGiven = (await page.textContent("#teach-classes")).match(/[0-9]+ photos/g);
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.ready === "true", null, { timeout: TIMEOUT });
    // (The model trained live before is kept too, as the loaded one, and back first.)
    await page.waitForFunction(() => /^Your model \(.*\) is back, with your 3 classes and 16 photos/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    assert.deepEqual((await page.textContent("#teach-classes")).match(/[0-9]+ photos/g), photosGiven);
    // Epochs of one batch go fast: the reload came after epoch 2 or a little later.
    const [, kept] = (await page.textContent("[data-testid=live-interrupted]")).match(/interrupted after epoch ([0-9]+);/);
    assert.ok(Number(kept) >= 2, `kept after epoch ${kept}`);
    await page.click("[data-testid=live-resume]");
    await statusMatches(new RegExp(`^Epoch ${Number(kept) + 1} of 200, batch 1 of`));
    await page.click("[data-testid=live-stop]");
    await statusMatches(/^Trained [0-9]+ epochs: .*in use now$/);
    const resumed = JSON.parse(await page.getAttribute("[data-testid=live-curves]", "data-history"));
    assert.ok(resumed.length > Number(kept), `the ${kept} epochs before the reload and at least one after: ${resumed.length}`);
    assert.ok(await page.isHidden("[data-testid=live-interrupted]"));

    // The trained model is kept as the loaded one: a reload brings it back, and "back to the
    // bundled model" returns to the page's own for good.
    await visit(page, "?backend=cpu");
    await page.waitForFunction(() => /^Your model \(.*\) is back, with your 3 classes and 16 photos/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    assert.match(await page.textContent("[data-testid=model-card]"), /3 classes/);
    await page.click("[data-testid=teach-bundled]");
    await page.waitForFunction(() => /^Back to the bundled model;/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    assert.match(await page.textContent("[data-testid=model-card]"), /10 classes/);
    await visit(page, "?backend=cpu");
    assert.match(await page.textContent("[data-testid=model-card]"), /10 classes/, "the bundled model again after a reload");
    assert.ok(await page.isHidden("[data-testid=teach-bundled]"));
  } finally {
    await context.close();
  }
});

test("live training on WebGPU: a narrow AlexNet fine-tuned there learns, survives a reload, and classifies", { timeout: 2 * TIMEOUT }, async () => {
  const teachDir = path.join(fixtures, "teach");
  const query = "?model=/fixtures/narrow.safetensors&backend=webgpu";
  const { context, page, logged } = await launch({ webgpu: true });
  try {
    await visit(page, query);
    assert.match(await page.textContent("[data-testid=backend]"), /^WebGPU/);
    await page.click("[data-testid=teach-open]");
    await page.setInputFiles("[data-testid=teach-folder]", teachDir);
    await page.waitForFunction(() => /left out\.$/.test(document.querySelector("[data-testid=teach-status]").textContent), null, { timeout: TIMEOUT });
    const liveStatus = () => page.textContent("[data-testid=live-status]");
    const statusMatches = (pattern) => page.waitForFunction((p) => new RegExp(p).test(document.querySelector("[data-testid=live-status]").textContent), pattern.source, { timeout: TIMEOUT });
    await page.selectOption("[data-testid=live-mode]", "fine-tune");
    await page.fill("[data-testid=live-epochs]", "6");
    const started = Date.now();
    await page.click("[data-testid=live-train]");
    // Interrupted by a reload after its second epoch: the checkpoint, read back from WebGPU,
    // resumes there.
    await statusMatches(/^Epoch 3 of 6/);
    const rate = (await liveStatus()).match(/~([0-9.]+) images\/s/)[1];
    await visit(page, query);
    assert.match(await page.textContent("[data-testid=backend]"), /^WebGPU/);
    const [, kept] = (await page.textContent("[data-testid=live-interrupted]")).match(/interrupted after epoch ([0-9]+);/);
    assert.ok(Number(kept) >= 2, `kept after epoch ${kept}`);
    await page.click("[data-testid=live-resume]");
    await statusMatches(new RegExp(`^Epoch ${Number(kept) + 1} of 6, batch 1 of`));
    await statusMatches(/in use now$/);
    const history = JSON.parse(await page.getAttribute("[data-testid=live-curves]", "data-history"));
    console.log(`live training on WebGPU (fine-tuning a width-0.125 network, 6 epochs of 12 photos, reloaded after ${kept}): ${Date.now() - started} ms; ~${rate} images/s; loss ${history.map((e) => e.loss.toFixed(3)).join(" ")}; held out ${history.map((e) => e.held_out_top1).join(" ")}`);
    assert.equal(history.length, 6);
    assert.ok(history.every((e) => e.held_out_top1 !== null), "every fifth photo held out and scored");
    const mean = (epochs) => epochs.reduce((sum, e) => sum + e.loss, 0) / epochs.length;
    assert.ok(mean(history.slice(-2)) < 0.8 * mean(history.slice(0, 2)), `the loss fell: ${history.map((e) => e.loss.toFixed(3))}`);
    const filters = await page.$eval("[data-testid=live-filters] canvas", (c) => [c.width, c.height]);
    assert.deepEqual(filters, [12 * 12 + 1, 12 + 1], "the narrow network's 12 conv1 filters");
    const firstClass = fs.readdirSync(path.join(teachDir, "val")).sort()[0];
    const photo = path.join(teachDir, "val", firstClass, fs.readdirSync(path.join(teachDir, "val", firstClass)).sort()[0]);
    const { rows, error } = await classify(page, photo);
    assert.equal(error, "");
    assert.equal(rows.length, 3, "the trained model's three classes");
    assert.deepEqual(logged, [], "a clean console");
  } finally {
    await context.close();
  }
});
