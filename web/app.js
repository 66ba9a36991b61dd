// The page: loads the weights (progress bar, Cache Storage, sha256 check), picks WebGPU or the CPU,
// and classifies dropped, chosen or pasted images with the wasm `Classifier`.

const params = new URLSearchParams(location.search);
const MANIFEST_URL = "model/manifest.json";
const CACHE_NAME = "alexnet-models-v1";
// fc6's f32 weight: the largest binding the model needs on the GPU.
const LARGEST_TENSOR_BYTES = 9216 * 4096 * 4;

const $ = (id) => document.getElementById(id);
let classifier = null;
let queue = Promise.resolve();

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function progress(loaded, total, label) {
  $("progress").hidden = false;
  const pct = total ? Math.min(100, (100 * loaded) / total) : 0;
  $("progress-bar").style.width = `${pct}%`;
  const mb = (n) => (n / 1e6).toFixed(1);
  $("progress-text").textContent = total ? `${label} ${mb(loaded)} / ${mb(total)} MB` : `${label} ${mb(loaded)} MB`;
}

async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Downloads with a progress bar; the response is kept in Cache Storage, so a second visit
// loads without the network.
async function fetchWeights(url, expectedSha) {
  const cache = "caches" in self ? await caches.open(CACHE_NAME) : null;
  let response = cache ? await cache.match(url) : undefined;
  const fromCache = Boolean(response);
  if (!response) {
    response = await fetch(url);
    if (!response.ok) throw new Error(`could not download the model ${url}: HTTP ${response.status}`);
  }
  const total = Number(response.headers.get("content-length")) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    progress(loaded, total, fromCache ? "Loading cached model" : "Downloading model");
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.length;
  }
  if (expectedSha) {
    const actual = await sha256Hex(bytes);
    if (actual !== expectedSha) {
      if (cache) await cache.delete(url);
      throw new Error(`the model file's sha256 is ${actual}, expected ${expectedSha} (corrupt download?)`);
    }
  }
  if (cache && !fromCache) {
    await cache.put(url, new Response(bytes, { headers: { "content-length": String(bytes.length) } }));
  }
  return bytes;
}

// WebGPU only when an adapter exists and can bind the largest weight tensor.
async function chooseBackend() {
  if (params.get("backend") === "cpu") return { backend: "cpu", why: "forced by ?backend=cpu" };
  if (!navigator.gpu) return { backend: "cpu", why: "this browser has no WebGPU" };
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch (e) {
    adapter = null;
  }
  if (!adapter) return { backend: "cpu", why: "no WebGPU adapter" };
  if (adapter.limits.maxStorageBufferBindingSize < LARGEST_TENSOR_BYTES) {
    return { backend: "cpu", why: "the WebGPU adapter cannot hold the model" };
  }
  return { backend: "webgpu", why: "" };
}

// trunk's loader sets window.wasmBindings and fires TrunkApplicationStarted; if the wasm module
// fails to start, its promise rejects instead.
function wasmBindings() {
  if (window.wasmBindings) return Promise.resolve(window.wasmBindings);
  return new Promise((resolve, reject) => {
    addEventListener("TrunkApplicationStarted", () => resolve(window.wasmBindings), { once: true });
    const failed = (reason) => {
      if (!window.wasmBindings) reject(new Error(`the WebAssembly module failed to start: ${reason}`));
    };
    addEventListener("unhandledrejection", (e) => failed(e.reason));
    addEventListener("error", (e) => failed(e.message));
  });
}

function renderCard(info, manifest) {
  const labels = info.labels.map((l) => l.name);
  const p = info.provenance || {};
  // The manifest holds the accuracy measured on the whole validation set by `trainer eval`.
  const measured = (manifest && manifest.accuracy) || {};
  const tenCrop = measured.top1_ten_crop ?? p.val_top1_ten_crop;
  const centre = measured.top1_center ?? p.val_top1_center;
  // The page classifies one centre crop, so that figure comes first.
  const accuracy = centre !== undefined
    ? `validation top-1 ${(100 * centre).toFixed(1)}%`
    : tenCrop !== undefined ? `validation top-1 ${(100 * tenCrop).toFixed(1)}% (10-crop)` : null;
  const width = info.config.width && info.config.width !== 1 ? ` at ${info.config.width}× width` : "";
  const parts = [
    `<strong>${info.config.preset} AlexNet${width}</strong>, ${labels.length} classes`,
    accuracy,
    p.dataset ? `trained on ${String(p.dataset).split("/").pop()}` : null,
  ].filter(Boolean);
  const shown = labels.length <= 20 ? labels.join(", ") : `${labels.slice(0, 20).join(", ")}, …`;
  $("model-card").innerHTML = "";
  const head = document.createElement("div");
  head.innerHTML = parts.join(" · ");
  const list = document.createElement("div");
  list.textContent = `Recognises: ${shown}`;
  $("model-card").append(head, list);
  if (manifest && manifest.card) {
    const link = document.createElement("a");
    link.href = manifest.card;
    link.textContent = "model card";
    $("model-card").append(link);
  }
}

function renderPredictions(top, ms) {
  const list = $("predictions");
  list.replaceChildren();
  for (const p of top) {
    const li = document.createElement("li");
    li.className = "prediction";
    li.dataset.testid = "prediction";
    li.setAttribute("data-testid", "prediction");
    li.dataset.index = String(p.index);
    li.dataset.label = p.label;
    li.dataset.prob = String(p.prob);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${(100 * p.prob).toFixed(1)}%`;
    const name = document.createElement("span");
    name.textContent = p.label;
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = `${(100 * p.prob).toFixed(1)}%`;
    li.append(bar, name, pct);
    list.append(li);
  }
  $("latency").textContent = `${ms.toFixed(0)} ms`;
  $("result").hidden = false;
}

async function classify(file) {
  if (!classifier) {
    showError("The model is not loaded yet.");
    return;
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const url = URL.createObjectURL(file);
  try {
    const start = performance.now();
    const top = JSON.parse(await classifier.classifyFile(bytes, 5));
    const ms = performance.now() - start;
    clearError();
    $("preview").src = url;
    renderPredictions(top, ms);
    document.body.dataset.classified = String(Number(document.body.dataset.classified || 0) + 1);
  } catch (e) {
    URL.revokeObjectURL(url);
    showError(`${file.name || "the pasted image"}: ${e.message || e}`);
    document.body.dataset.failed = String(Number(document.body.dataset.failed || 0) + 1);
  }
}

// One image at a time, in the order they arrive.
function enqueue(file) {
  queue = queue.then(() => classify(file));
  return queue;
}

function wireInputs() {
  $("file").addEventListener("change", (e) => {
    for (const f of e.target.files) enqueue(f);
    e.target.value = "";
  });
  addEventListener("dragover", (e) => {
    e.preventDefault();
    $("drop").classList.add("over");
  });
  addEventListener("dragleave", () => $("drop").classList.remove("over"));
  addEventListener("drop", (e) => {
    e.preventDefault();
    $("drop").classList.remove("over");
    for (const f of e.dataTransfer.files) enqueue(f);
  });
  addEventListener("paste", (e) => {
    for (const item of e.clipboardData.items) {
      if (item.kind === "file") enqueue(item.getAsFile());
    }
  });
}

async function main() {
  wireInputs();
  try {
    const custom = params.get("model");
    let manifest = null;
    let url = custom;
    if (!custom) {
      const r = await fetch(MANIFEST_URL);
      if (!r.ok) throw new Error(`no model is bundled with this page (${MANIFEST_URL}: HTTP ${r.status}); pass ?model=URL`);
      manifest = await r.json();
      url = new URL(manifest.file, new URL(MANIFEST_URL, location.href)).href;
    }
    const [bindings, bytes, choice] = await Promise.all([
      wasmBindings(),
      fetchWeights(url, manifest ? manifest.sha256 : params.get("sha256")),
      chooseBackend(),
    ]);
    progress(1, 1, "Starting the model");
    classifier = await bindings.Classifier.load(bytes, choice.backend);
    $("progress").hidden = true;
    const name = classifier.backend();
    $("backend").textContent = choice.why ? `${name} (${choice.why})` : name;
    renderCard(JSON.parse(classifier.infoJson()), manifest);
    document.body.dataset.ready = "true";
  } catch (e) {
    $("progress").hidden = true;
    $("model-card").textContent = "No model loaded.";
    showError(`The model could not be loaded: ${e.message || e}`);
    document.body.dataset.ready = "error";
  }
}

main();
