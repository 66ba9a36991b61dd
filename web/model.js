// The model's side of the page: downloading the weights (sha256 check, Cache Storage), choosing
// WebGPU or the CPU, checking the chosen backend on the manifest's image, and `Model`, which runs
// the wasm `Classifier` in a Web Worker (worker.js) and speaks its protocol.

const params = new URLSearchParams(location.search);
export const MANIFEST_URL = "model/manifest.json";
// Cache Storage for weights: the bundled model once it has loaded, and a taught model (teach.js).
export const CACHE_NAME = "alexnet-models-v1";
// Workers the CPU path classifies on: two (the paper's two-GPU split, split.js) where the machine
// has a second core and they are the faster at load; the address's `?workers=1` or `?workers=2`
// decides instead.
const CPU_WORKERS = Math.min(2, Number(params.get("workers")) || navigator.hardwareConcurrency || 1);
const WORKERS_CHOSEN = params.has("workers");

async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Downloads, telling `onProgress(loaded, total, label)` as it goes. Returns the bytes, `keep()`, which stores them in Cache Storage
// (so that a second visit loads without the network), and `forget()`. `keep` is called only once
// the model has loaded, so a truncated or foreign file is never kept.
export async function fetchWeights(url, expectedSha, onProgress) {
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
    onProgress(loaded, total, fromCache ? "Loading cached model" : "Downloading model");
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.length;
  }
  const forget = async () => cache && (await cache.delete(url));
  if (expectedSha) {
    const actual = await sha256Hex(bytes);
    if (actual !== expectedSha) {
      await forget();
      // A cached copy of another version: download the current one.
      if (fromCache) return fetchWeights(url, expectedSha, onProgress);
      throw new Error(`the model file's sha256 is ${actual}, expected ${expectedSha} (corrupt download?)`);
    }
  }
  const keep = async () => {
    if (cache && !fromCache) {
      await cache.put(url, new Response(bytes, { headers: { "content-length": String(bytes.length) } }));
    }
  };
  return { bytes, keep, forget };
}

// The largest tensor of a weights file once on the device (as f32), from its safetensors header
// (8 bytes of little-endian length, then JSON), before anything is uploaded.
function largestTensorBytes(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = bytes.length >= 8 ? Number(view.getBigUint64(0, true)) : Infinity;
  if (length > bytes.length - 8) throw new Error("the model file is not a safetensors file");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  let largest = 0;
  for (const [name, tensor] of Object.entries(header)) {
    if (name === "__metadata__" || !Array.isArray(tensor.shape)) continue;
    largest = Math.max(largest, tensor.shape.reduce((a, b) => a * b, 1) * 4);
  }
  return largest;
}

const mb = (n) => `${(n / 1e6).toFixed(0)} MB`;

// WebGPU only on a hardware adapter that can hold this model's largest tensor: a software
// adapter (SwiftShader, llvmpipe: a GPU emulated on the CPU) is slower than the CPU path.
// `?backend=webgpu` or `?backend=cpu` decides instead.
export async function chooseBackend(bytes) {
  const forced = params.get("backend");
  if (forced === "cpu") return { backend: "cpu", why: "chosen by ?backend=cpu" };
  if (!navigator.gpu) return { backend: "cpu", why: "this browser has no WebGPU" };
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    adapter = null;
  }
  if (!adapter) return { backend: "cpu", why: "no WebGPU adapter" };
  const largest = largestTensorBytes(bytes);
  const limit = Math.min(adapter.limits.maxStorageBufferBindingSize, adapter.limits.maxBufferSize);
  if (largest > limit) {
    return { backend: "cpu", why: `the WebGPU adapter holds ${mb(limit)} per buffer, this model needs ${mb(largest)}` };
  }
  if (forced === "webgpu") return { backend: "webgpu", why: "chosen by ?backend=webgpu" };
  const info = adapter.info || {};
  const names = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  if (info.isFallbackAdapter || adapter.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|software/i.test(names)) {
    return { backend: "cpu", why: "the WebGPU adapter is a software one, slower than the CPU path" };
  }
  // Both paths are real: the check image decides which is faster (and is remembered).
  return { backend: "webgpu", why: "", compare: `${names} ${bytes.length}` };
}

// The manifest's check: one image and the top 5 that `trainer predict` gives for it.
export async function fetchCheck(manifest) {
  if (!manifest || !manifest.check) return null;
  const r = await fetch(new URL(manifest.check.image, new URL(MANIFEST_URL, location.href)));
  if (!r.ok) return null;
  return { bytes: new Uint8Array(await r.arrayBuffer()), top5: manifest.check.top5 };
}

// Classifies the check image twice (the first run compiles and warms up) and compares the
// answer with the trainer's: {agrees, ms} (ms: the second, warm run).
async function verify(model, check) {
  await model.classify(check.bytes.slice());
  const { top, ms } = await model.classify(check.bytes.slice());
  const agrees = top.length === check.top5.length
    && top.every((p, i) => p.index === check.top5[i].index && Math.abs(p.prob - check.top5[i].prob) <= 1e-3);
  return { agrees, ms };
}

// Loads the model on the chosen backend, then makes sure of it with the check image: WebGPU must
// give the trainer's answer (else the CPU takes over, and the page says so); where both paths are
// real, the faster one on the check image stays, and the choice is remembered for this adapter
// and model. Resolves to {model, loaded, why}.
export async function startModel(bytes, choice, check) {
  const remembered = choice.compare && JSON.parse(localStorage.getItem("alexnet-backend") || "null");
  if (remembered && remembered.key === choice.compare) {
    choice = { backend: remembered.backend, why: remembered.why };
  }
  const model = new Model(bytes, choice.backend);
  const loaded = await model.start();
  if (!check || choice.backend !== "webgpu") return { model, loaded, why: choice.why };
  const gpu = await verify(model, check);
  if (gpu.agrees && !choice.compare) return { model, loaded, why: choice.why };
  const cpu = new Model(bytes, "cpu");
  const cpuLoaded = await cpu.start();
  if (!gpu.agrees) {
    model.terminate();
    return { model: cpu, loaded: cpuLoaded, why: "WebGPU's answer on the check image differs from the trainer's" };
  }
  const cpuCheck = await verify(cpu, check);
  const cpuWins = cpuCheck.ms < gpu.ms;
  const [fast, slow] = cpuWins ? [cpuCheck.ms, gpu.ms] : [gpu.ms, cpuCheck.ms];
  const why = `faster on the check image: ${fast.toFixed(0)} ms against ${slow.toFixed(0)} ms on ${cpuWins ? "WebGPU" : "the CPU"}`;
  localStorage.setItem("alexnet-backend", JSON.stringify({ key: choice.compare, backend: cpuWins ? "cpu" : "webgpu", why }));
  (cpuWins ? model : cpu).terminate();
  return cpuWins ? { model: cpu, loaded: cpuLoaded, why } : { model, loaded, why };
}

// The model runs in a Web Worker (worker.js): the page's main thread only renders. If the worker's
// WebAssembly traps, a new worker loads the same bytes again, so the page keeps working.
export class Model {
  constructor(bytes, backend) {
    this.bytes = bytes;
    this.backend = backend;
    this.pending = new Map();
    this.nextId = 1;
  }

  // Starts a worker (and on the CPU a helper) and loads the weights in it; resolves to {backend, info}.
  start() {
    this.worker = new Worker("worker.js", { type: "module" });
    const peer = this.startHelper();
    this.worker.onmessage = ({ data }) => {
      const waiting = this.pending.get(data.id ?? 0);
      if (!waiting) return;
      this.pending.delete(data.id ?? 0);
      if (data.type === "error") {
        const error = new Error(data.message);
        error.fatal = data.fatal;
        waiting.reject(error);
      } else {
        waiting.resolve(data);
      }
    };
    this.worker.onerror = (e) => {
      e.preventDefault();
      const error = new Error(`the model's worker failed: ${e.message || "it could not start"}`);
      // An uncaught error (a trap inside an async wasm call lands here): the worker is not to be
      // trusted any more, so the next request starts a new one.
      error.fatal = true;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    const message = { type: "load", bytes: this.bytes, backend: this.backend, peer, measure: !WORKERS_CHOSEN };
    return this.request(message, 0, peer ? [peer] : []);
  }

  // The second worker of the CPU path, cutting its part from the same bytes while the first
  // loads; returns the first's port to it (or nothing, with one worker).
  startHelper() {
    this.helper = null;
    if (this.backend !== "cpu" || CPU_WORKERS < 2) return undefined;
    const channel = new MessageChannel();
    this.helper = new Worker("worker.js", { type: "module" });
    this.helper.postMessage({ type: "help", port: channel.port2, bytes: this.bytes }, [channel.port2]);
    const worker = this.worker;
    this.helper.onerror = (e) => {
      e.preventDefault();
      worker.postMessage({ type: "helperLost" });
    };
    return channel.port1;
  }

  // A request with the next id: resolves to the worker's answer.
  ask(message) {
    return this.request(message, this.nextId++);
  }

  request(message, id, transfer = []) {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  terminate() {
    this.worker.terminate();
    this.helper?.terminate();
  }

  // Top 5 of a canvas's RGBA pixels: {top, outOfClasses, ms}.
  classifyRgba(rgba, width, height) {
    return this.request({ type: "classifyRgba", rgba, width, height }, this.nextId++);
  }

  // Pictures of what the network sees (computed on the CPU, in the worker).
  async filters() {
    return (await this.request({ type: "filters" }, this.nextId++)).pictures[0];
  }

  async explain(bytes, cls) {
    return (await this.request({ type: "explain", bytes, class: cls }, this.nextId++)).pictures;
  }

  // Top 5 of an encoded image: {top, outOfClasses, ms}. When the worker's WebAssembly traps (a lost GPU
  // device, a panic), a new worker takes over (on the CPU if it was WebGPU) and the image is
  // tried once more.
  async classify(bytes, photo) {
    try {
      return await this.request({ type: "classify", bytes, photo }, this.nextId++);
    } catch (e) {
      if (!e.fatal) throw e;
      this.terminate();
      if (this.backend === "webgpu") {
        this.backend = "cpu";
        if (this.onFallback) this.onFallback(e.message);
      }
      await this.start();
      return await this.request({ type: "classify", bytes, photo }, this.nextId++);
    }
  }
}

// A picture from the worker ({name, width, height, rgba}) as a canvas in a captioned figure.
export function figureOf(picture) {
  const canvas = document.createElement("canvas");
  canvas.width = picture.width;
  canvas.height = picture.height;
  canvas.getContext("2d").putImageData(new ImageData(picture.rgba, picture.width, picture.height), 0, 0);
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = picture.name;
  figure.append(canvas, caption);
  return figure;
}
