// The page: starts the model (model.js) with a progress bar, shows its card, and classifies
// dropped, chosen or pasted images and camera frames; teaching is teach.js's.
import { forgetAll } from "./store.js";
import { setupTeaching } from "./teach.js";
import { MANIFEST_URL, Model, chooseBackend, fetchCheck, fetchWeights, figureOf, startModel } from "./model.js";

const params = new URLSearchParams(location.search);

const $ = (id) => document.getElementById(id);
// Settles once the model has loaded (or failed to): images that arrive before wait for it.
let resolveModel;
let rejectModel;
const modelReady = new Promise((resolve, reject) => {
  resolveModel = resolve;
  rejectModel = reject;
});
modelReady.catch(() => {});
// The model in use: the first one loaded, or one loaded from a file since.
let activeModel = null;
const currentModel = async () => {
  await modelReady;
  return activeModel;
};
let queue = Promise.resolve();

// Every photo the visitor gives the page (classified, or a teaching example), by id: its name and
// a URL of its bytes, to show it among another photo's nearest (the paper's Figure 4).
const photos = new Map();
let nextPhoto = 1;
function registerPhoto(name, url) {
  const id = nextPhoto++;
  photos.set(id, { name, url });
  return id;
}

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


// Everything here comes from the weights file or the manifest: text only, never HTML.
function renderCard(info, manifest) {
  const labels = info.labels.map((l) => String(l.name));
  const p = info.provenance || {};
  // The manifest holds the accuracy measured on the whole validation set by `trainer eval`.
  const measured = (manifest && manifest.accuracy) || {};
  const tenCrop = Number(measured.top1_ten_crop ?? p.val_top1_ten_crop);
  const centre = Number(measured.top1_center ?? p.val_top1_center);
  // The page classifies one centre crop, so that figure comes first.
  const accuracy = Number.isFinite(centre)
    ? `validation top-1 ${(100 * centre).toFixed(1)}%`
    : Number.isFinite(tenCrop) ? `validation top-1 ${(100 * tenCrop).toFixed(1)}% (10-crop)` : null;
  const width = info.config.width && info.config.width !== 1 ? ` at ${Number(info.config.width)}× width` : "";
  const head = document.createElement("div");
  const name = document.createElement("strong");
  name.textContent = `${info.config.preset} AlexNet${width}`;
  const rest = [
    `${labels.length} classes`,
    accuracy,
    p.dataset ? `trained on ${String(p.dataset).split("/").pop()}` : null,
  ].filter(Boolean);
  head.append(name, document.createTextNode(`, ${rest.join(" · ")}`));
  const shown = labels.length <= 20 ? labels.join(", ") : `${labels.slice(0, 20).join(", ")}, …`;
  const list = document.createElement("div");
  list.textContent = `Recognises: ${shown}`;
  $("model-card").replaceChildren(head, list);
  if (manifest && typeof manifest.card === "string" && !/^\s*(javascript|data):/i.test(manifest.card)) {
    const link = document.createElement("a");
    link.href = manifest.card;
    link.textContent = "model card";
    $("model-card").append(link);
  }
}

// For a model without an out-of-class threshold (one not calibrated): below this top-1
// probability the page says the model may not know what the photo shows.
const UNSURE = 0.5;
let classCount = 0;

// One card per image, newest first: the image, then its top 5 or its error (which stays).
function newShot(file) {
  const shot = document.createElement("article");
  shot.className = "shot";
  shot.dataset.testid = "shot";
  const img = document.createElement("img");
  img.alt = file.name || "a pasted image";
  const body = document.createElement("div");
  const title = document.createElement("p");
  title.className = "name";
  title.textContent = file.name || "pasted image";
  body.append(title);
  shot.append(img, body);
  $("gallery").prepend(shot);
  $("gallery").hidden = false;
  return { shot, img, body };
}


// A button under an image's top 5: what the network looked at, and what each layer saw.
function insideButton(body, bytes, top) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.testid = "explain";
  button.textContent = "See inside the network";
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "Computing…";
    try {
      const model = await currentModel();
      const pictures = await model.explain(bytes, top[0].index);
      const inside = document.createElement("div");
      inside.className = "inside";
      inside.dataset.testid = "inside";
      inside.append(...pictures.map(figureOf));
      button.replaceWith(inside);
    } catch (e) {
      button.textContent = `Could not look inside: ${e.message || e}`;
    }
  });
  body.append(button);
}

// The paper's Figure 4: the photos given so far whose fc7 features are nearest this one's.
async function showNearest(body, model, photo) {
  const { photos: nearest } = await model.ask({ type: "nearest", photo, n: 5 });
  if (!nearest.length) return;
  const box = document.createElement("div");
  box.className = "nearest";
  box.dataset.testid = "neighbours";
  const caption = document.createElement("p");
  caption.className = "meta";
  caption.textContent = "Nearest in fc7 among your photos (the paper's Figure 4):";
  box.append(caption);
  for (const id of nearest) {
    const kept = photos.get(id);
    if (!kept) continue;
    const img = document.createElement("img");
    img.src = kept.url;
    img.alt = kept.name;
    img.title = kept.name;
    img.dataset.name = kept.name;
    box.append(img);
  }
  body.append(box);
}

// `outOfClasses`: the model's own judgement that the photo shows none of its classes (null for a
// model not calibrated, which falls back to a low top-1 probability).
function renderPredictions(body, { top, outOfClasses, ms }, backend) {
  const list = document.createElement("ol");
  for (const p of top) {
    const li = document.createElement("li");
    li.className = "prediction";
    li.dataset.testid = "prediction";
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
  if (outOfClasses) {
    const note = document.createElement("p");
    note.className = "unsure";
    note.dataset.testid = "out-of-classes";
    note.textContent = `None of my classes: this photo seems to show none of the ${classCount} this model knows. Its closest guesses:`;
    body.append(note);
  }
  body.append(list);
  if (outOfClasses === null && top.length && top[0].prob < UNSURE) {
    const note = document.createElement("p");
    note.className = "unsure";
    note.dataset.testid = "unsure";
    note.textContent = `Not sure: this model knows only its ${classCount} classes, and this photo may show none of them.`;
    body.append(note);
  }
  const meta = document.createElement("p");
  meta.className = "meta";
  const latency = document.createElement("span");
  latency.dataset.testid = "latency";
  latency.textContent = `${ms.toFixed(0)} ms`;
  meta.append(latency, document.createTextNode(` · ${backend}`));
  body.append(meta);
}

async function classify(file) {
  const { shot, img, body } = newShot(file);
  try {
    const model = await currentModel();
    const bytes = new Uint8Array(await file.arrayBuffer());
    const url = URL.createObjectURL(file);
    const photo = registerPhoto(file.name || "pasted image", url);
    const answer = await model.classify(bytes, photo);
    img.src = url;
    clearError();
    renderPredictions(body, answer, model.backendName);
    await showNearest(body, model, photo);
    insideButton(body, bytes, answer.top);
    document.body.dataset.classified = String(Number(document.body.dataset.classified || 0) + 1);
  } catch (e) {
    const message = `${file.name || "the pasted image"}: ${e.message || e}`;
    const error = document.createElement("p");
    error.className = "error";
    error.dataset.testid = "image-error";
    error.textContent = message;
    body.append(error);
    shot.classList.add("failed");
    showError(message);
    document.body.dataset.failed = String(Number(document.body.dataset.failed || 0) + 1);
  }
}

// One image at a time, in the order they arrive; a failure never stops the ones after it.
function enqueue(file) {
  queue = queue.then(() => classify(file)).catch((e) => showError(String(e.message || e)));
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

// The camera: each frame is classified as soon as the previous answer is in; the top 5 and the
// frames per second update live. Stops with the button or when the stream ends.
let camera = null;

async function toggleCamera() {
  if (camera) {
    camera.stop();
    return;
  }
  const video = $("video");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  } catch (e) {
    showError(`The camera could not start: ${e.message || e}`);
    return;
  }
  const model = await currentModel();
  video.srcObject = stream;
  await video.play();
  $("camera-view").hidden = false;
  $("camera").textContent = "Stop the camera";
  let running = true;
  camera = {
    stop() {
      running = false;
      stream.getTracks().forEach((t) => t.stop());
      $("camera").textContent = "Use the camera";
      camera = null;
    },
  };
  const canvas = document.createElement("canvas");
  const started = performance.now();
  let frames = 0;
  while (running && video.videoWidth) {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(video, 0, 0);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    try {
      const { top, outOfClasses } = await model.classifyRgba(new Uint8Array(data.buffer), canvas.width, canvas.height);
      frames += 1;
      const fps = frames / ((performance.now() - started) / 1000);
      const list = $("camera-top");
      list.replaceChildren(...top.map((p) => {
        const li = document.createElement("li");
        li.textContent = `${p.label} ${(100 * p.prob).toFixed(1)}%`;
        return li;
      }));
      // The model's own judgement, as under a dropped photo's guesses.
      $("camera-fps").textContent = outOfClasses
        ? `none of my classes · ${fps.toFixed(1)} frames/s`
        : `${fps.toFixed(1)} frames/s`;
    } catch (e) {
      showError(`camera: ${e.message || e}`);
      break;
    }
  }
  if (camera) camera.stop();
}

// What this page keeps (Cache Storage: the page, its code, the model; IndexedDB: the visitor's
// classes, photos and live run), and a way to forget it.
async function showStorage() {
  if (!navigator.storage || !navigator.storage.estimate) return;
  const { usage } = await navigator.storage.estimate();
  $("storage-size").textContent = `${(usage / 1e6).toFixed(1)} MB kept for offline use`;
  $("storage").hidden = false;
}

async function forgetStorage() {
  for (const name of await caches.keys()) await caches.delete(name);
  const registrations = navigator.serviceWorker ? await navigator.serviceWorker.getRegistrations() : [];
  for (const r of registrations) await r.unregister();
  await forgetAll();
  $("storage-size").textContent = "Forgotten: the next visit downloads everything again, and your classes and photos are no longer kept.";
}

// Shows a model's card: `manifest` only for the bundled model (its measured accuracy).
function showModel(info, manifest = null) {
  classCount = info.labels.length;
  renderCard(info, manifest);
}

// conv1's filters of the model in use, in "Inside the network".
function showFilters(model) {
  model.filters().then((p) => $("filters").replaceChildren(figureOf(p)), () => {});
}

// The backend line, e.g. "CPU (no WebGPU adapter) · 2 workers: 22 ms on 2, 30 ms on 1 for a
// blank frame, best of 3".
function showBackend(loaded, why) {
  const workers = loaded.workers ? ` · ${loaded.workers}` : "";
  $("backend").textContent = `${why ? `${loaded.backend} (${why})` : loaded.backend}${workers}`;
}

// A weights file picked by the visitor: loaded in a new worker on the same backend and checked
// there first; the model in use stays when it fails.
async function loadModelFile(file, teaching) {
  const previous = await currentModel();
  const model = new Model(new Uint8Array(await file.arrayBuffer()), previous.backend);
  let loaded;
  try {
    loaded = await model.start();
  } catch (e) {
    model.terminate();
    showError(`${file.name} cannot be used: ${e.message || e} The model in use stays.`);
    return;
  }
  clearError();
  previous.terminate();
  showBackend(loaded, "");
  model.backendName = loaded.backend;
  activeModel = model;
  showModel(JSON.parse(loaded.info));
  showFilters(model);
  await teaching.modelChanged();
}

async function main() {
  wireInputs();
  $("forget").addEventListener("click", forgetStorage);
  $("camera").addEventListener("click", toggleCamera);
  let bundled = null; // the bundled model's weights file, for "back to the bundled model"
  const modelInUse = (info) => {
    showModel(info);
    currentModel().then(showFilters);
  };
  const teaching = setupTeaching({ model: currentModel, bundled: () => bundled, showModel: modelInUse, registerPhoto });
  $("model-file").addEventListener("change", (e) => {
    const [file] = e.target.files;
    e.target.value = "";
    if (file) queue = queue.then(() => loadModelFile(file, teaching)).catch((err) => showError(String(err.message || err)));
  });
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js").catch((e) => console.warn("no offline support:", e));
  }
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
    const weights = await fetchWeights(url, manifest ? manifest.sha256 : params.get("sha256"), progress);
    const choice = await chooseBackend(weights.bytes);
    progress(1, 1, "Starting the model");
    let started;
    try {
      started = await startModel(weights.bytes, choice, await fetchCheck(manifest));
    } catch (e) {
      await weights.forget();
      throw e;
    }
    const { model, loaded, why } = started;
    await weights.keep();
    bundled = weights.bytes;
    $("progress").hidden = true;
    showBackend(loaded, why);
    model.backendName = loaded.backend;
    model.onFallback = (reason) => {
      model.backendName = "CPU";
      $("backend").textContent = `CPU (WebGPU failed: ${reason})`;
    };
    showModel(JSON.parse(loaded.info), manifest);
    activeModel = model;
    resolveModel(model);
    showStorage();
    showFilters(model);
    await teaching.restore();
    document.body.dataset.ready = "true";
  } catch (e) {
    $("progress").hidden = true;
    $("model-card").textContent = "No model loaded.";
    showError(`The model could not be loaded: ${e.message || e}`);
    rejectModel(new Error("no model is loaded"));
    document.body.dataset.ready = "error";
  }
}

main();
