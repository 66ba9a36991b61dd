// Teaching the model new classes: the visitor names classes and gives each example photos; the
// worker computes each photo's fc7 features as it arrives and, on "Teach", trains a new last layer
// with the library's teaching (the same code as `trainer teach`). The photos stay here as the
// browser's File objects (read again only when another model is loaded, so that a large folder
// is not held in memory), and are kept in this browser (web/store.js) so that a reload loses
// none of them. Every name is shown as text, never HTML.

import { setupLive } from "./live.js";
import { CACHE_NAME } from "./model.js";
import { keep, keepPhoto, kept, keptPhotos } from "./store.js";

const $ = (id) => document.getElementById(id);
const MAX_NAME = 60;
// Passes over the examples and the seed: `trainer teach`'s defaults, so both give the same layer.
const EPOCHS = 30;
const SEED = 0;
// Models made or picked here, kept (Cache Storage, the page's model cache) until the visitor goes
// back or forgets what the page keeps: the taught model in use, and the loaded model when it is
// not the bundled one (a network trained live, or a picked weights file).
function keptModel(path) {
  const request = new Request(new URL(path, location.href));
  const cache = () => ("caches" in self ? caches.open(CACHE_NAME) : null);
  return {
    async keep(bytes) {
      const c = await cache();
      if (c) await c.put(request, new Response(bytes));
    },
    async forget() {
      const c = await cache();
      if (c) await c.delete(request);
    },
    async bytes() {
      const c = await cache();
      const saved = c && (await c.match(request));
      return saved ? new Uint8Array(await saved.arrayBuffer()) : null;
    },
  };
}
const TAUGHT = keptModel("taught/model.safetensors");
const LOADED = keptModel("loaded/model.safetensors");

// `model()`: the model in use (a promise); `bundled()`: the bundled model's weights file (bytes);
// `showModel(info)`: the page shows the card (and filters) of the model now in use;
// `registerPhoto(name, url)`: the page's id for a photo (the nearest photos show examples too).
export function setupTeaching({ model, bundled, showModel, registerPhoto }) {
  const classes = []; // {name, index, photos: [{source: a File or Blob, photo}], count}
  let busy = Promise.resolve();
  let taught = false;
  let notKept = ""; // why photos are no longer kept in this browser, once one was refused
  const status = (text) => {
    $("teach-status").textContent = text;
  };
  // One worker request at a time, in order; a failure is shown and never stops the next one.
  const run = (job) => {
    busy = busy.then(job).catch((e) => status(String(e.message || e)));
    return busy;
  };

  // The model in use is another network (its features differ): every photo given so far is added
  // again (called from within the queue).
  async function rebased() {
    taught = false;
    const m = await model();
    for (const entry of classes) {
      for (const { source, photo } of entry.photos) {
        await m.ask({ type: "example", bytes: new Uint8Array(await source.arrayBuffer()), class: entry.index, photo });
      }
    }
  }

  // A new loaded model is in use (trained live, or picked): kept in this browser in place of the
  // bundled one (a taught model made on the one before is forgotten), then given every photo.
  async function newLoaded() {
    const { bytes } = await (await model()).ask({ type: "weights" });
    await TAUGHT.forget();
    await LOADED.keep(bytes).catch((e) => status(`This model could not be kept in this browser (${e.message || e}): a reload goes back to the bundled one.`));
    $("teach-bundled").hidden = false;
    await rebased();
  }

  const live = setupLive({ model, classes: () => classes, showModel, run, newLoaded });

  $("teach-open").addEventListener("click", () => {
    $("teach-panel").hidden = !$("teach-panel").hidden;
    if (!$("teach-panel").hidden) $("teach-class-name").focus();
  });

  // Why a name cannot be a new class, or null.
  const refusal = (name) => {
    if (!name) return "A class needs a name.";
    if (name.length > MAX_NAME) return `A class name has at most ${MAX_NAME} characters.`;
    if (classes.some((c) => c.name === name)) return `There is already a class named “${name}”.`;
    return null;
  };

  $("teach-class-name").addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    const name = e.target.value.trim();
    const refused = refusal(name);
    if (refused) return status(refused);
    e.target.value = "";
    addClass(name);
    status(`Class “${name}” added: give it example photos.`);
  });

  // A folder in the trainer's layout: one subfolder of photos per class (or train/ holding them;
  // val/ and test/ are for scoring and are left out). Classes of the same name get the photos.
  $("teach-folder").addEventListener("change", (e) => {
    const files = [...e.target.files];
    e.target.value = "";
    const { byClass, skipped } = classFolders(files);
    if (!byClass.size) return status("That folder has no class subfolders with photos: it needs one subfolder of photos per class.");
    const accepted = [];
    for (const [name, photos] of byClass) {
      const entry = classes.find((c) => c.name === name) || (refusal(name) ? null : addClass(name));
      if (entry) accepted.push([entry, photos]);
      else run(async () => status(`Folder “${name}” left out: ${refusal(name)}`));
    }
    const total = accepted.reduce((n, [, photos]) => n + photos.length, 0);
    let place = 0;
    for (const [entry, photos] of accepted) {
      for (const file of photos) {
        place += 1;
        const progress = `${place} of ${total}`;
        run(() => addExample(entry, file.name, file, progress));
      }
    }
    if (skipped) run(async () => status(`${skipped} file${skipped === 1 ? "" : "s"} of that folder are not photos or lie outside class subfolders: left out.`));
  });

  function addClass(name) {
    const index = classes.length;
    const row = document.createElement("li");
    const label = document.createElement("span");
    label.className = "teach-name";
    label.textContent = name;
    const count = document.createElement("span");
    count.className = "meta";
    count.textContent = " · no photos yet · ";
    const input = document.createElement("input");
    input.type = "file";
    input.accept = "image/*";
    input.multiple = true;
    input.dataset.testid = "teach-examples";
    input.setAttribute("aria-label", `example photos of ${name}`);
    const hold = document.createElement("button");
    hold.type = "button";
    hold.textContent = "Hold to add camera frames";
    hold.dataset.testid = "teach-camera";
    row.append(label, count, input, document.createTextNode(" "), hold);
    $("teach-classes").append(row);
    const entry = { name, index, photos: [], count };
    classes.push(entry);
    keep("classes", classes.map((c) => c.name)).catch(() => {});
    input.addEventListener("change", () => {
      const files = [...input.files];
      input.value = "";
      for (const file of files) run(() => addExample(entry, file.name, file));
    });
    holdForFrames(hold, (name, blob) => run(() => addExample(entry, name, blob)));
    return entry;
  }

  // `source`: a File or Blob; `progress`: "n of N" for a folder's photos; `restored`: it comes
  // from this browser's storage (and is kept there already).
  async function addExample(entry, name, source, progress = "", restored = false) {
    const photo = registerPhoto(name, URL.createObjectURL(source));
    try {
      const bytes = new Uint8Array(await source.arrayBuffer());
      await (await model()).ask({ type: "example", bytes, class: entry.index, photo });
    } catch (e) {
      status(`${name}: ${e.message || e} (not added)`);
      return;
    }
    entry.photos.push({ source, photo });
    const n = entry.photos.length;
    entry.count.textContent = ` · ${n} photo${n === 1 ? "" : "s"} · `;
    if (!restored) status(`${name} added to “${entry.name}”${progress ? ` (${progress})` : ""}.`);
    if (!restored && !notKept) {
      await keepPhoto(entry.name, name, source).catch((e) => {
        // Most likely the browser's storage is full: the photos from here on are used, not kept.
        notKept = `From ${name} on, photos are used but not kept in this browser (${e.message || e}): a reload loses them.`;
        $("teach-kept").textContent = notKept;
        $("teach-kept").hidden = false;
      });
    }
  }

  // While `button` is held, a frame of the running camera every quarter second (at most one
  // waiting at a time), as a JPEG Blob, goes to `add(name, blob)`.
  let frames = 0;
  function holdForFrames(button, add) {
    let timer = null;
    let waiting = false;
    const grab = async () => {
      const video = $("video");
      if (waiting || !video.videoWidth) return;
      waiting = true;
      try {
        const canvas = document.createElement("canvas");
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        canvas.getContext("2d").drawImage(video, 0, 0);
        const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
        frames += 1;
        await add(`camera frame ${frames}`, blob);
      } finally {
        waiting = false;
      }
    };
    button.addEventListener("pointerdown", () => {
      const stream = $("video").srcObject;
      if (!stream || !stream.active) return status("Start the camera first (“Use the camera”), then hold this button.");
      grab();
      timer = setInterval(grab, 250);
    });
    const release = () => {
      clearInterval(timer);
      timer = null;
    };
    for (const type of ["pointerup", "pointerleave", "pointercancel"]) button.addEventListener(type, release);
  }

  $("teach-train").addEventListener("click", () =>
    run(async () => {
      if (classes.length < 2) return status("Add at least two classes, each with example photos.");
      const empty = classes.find((c) => c.photos.length === 0);
      if (empty) return status(`“${empty.name}” has no example photos yet.`);
      status("Teaching…");
      const m = await model();
      const { lesson, info, ms } = await m.ask({ type: "teach", names: classes.map((c) => c.name), epochs: EPOCHS, seed: SEED });
      taught = true;
      showModel(JSON.parse(info));
      await TAUGHT.keep((await m.ask({ type: "weights" })).bytes);
      const how = `${lesson.classes} classes from ${lesson.examples} photos in ${(ms / 1000).toFixed(1)} s`;
      status(lesson.held_out_top1 === null
        ? `Taught ${how} (too few photos to hold some out): trained`
        : `Taught ${how}; on a fifth of the photos held out, top-1 ${(100 * lesson.held_out_top1).toFixed(1)}%`);
      $("teach-export").disabled = false;
    }));

  // Back to the loaded model (`request` useLoaded) or to the bundled one (useAsLoaded): the kept
  // models it replaces are forgotten, and every photo is given to it again.
  async function goBack(request, name, done) {
    const { info } = await (await model()).ask(request);
    await TAUGHT.forget();
    if (request.type === "useAsLoaded") {
      await LOADED.forget();
      $("teach-bundled").hidden = true;
    }
    showModel(JSON.parse(info));
    status(`Back to the ${name}: giving it your photos again…`);
    await rebased();
    status(`Back to the ${name}${done}; your classes and photos are still here.`);
  }

  $("teach-reset").addEventListener("click", () =>
    run(() => goBack({ type: "useLoaded" }, "loaded model", " (the taught one is no longer kept)")));
  $("teach-bundled").addEventListener("click", () =>
    run(() => goBack({ type: "useAsLoaded", bytes: bundled() }, "bundled model", "")));

  $("teach-export").addEventListener("click", () =>
    run(async () => {
      const int8 = $("teach-int8").checked;
      const { bytes } = await (await model()).ask({ type: "export", int8 });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
      link.download = `alexnet-${taught ? "taught" : "model"}${int8 ? "-int8" : ""}.safetensors`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    }));

  // The classes and photos kept from an earlier visit, given again (their features computed in
  // the queue, as new ones); how many of each, or null when none are kept.
  async function restoreExamples() {
    const names = (await kept("classes").catch(() => null)) || [];
    if (!names.length) return null;
    const photos = await keptPhotos().catch(() => []);
    $("teach-panel").hidden = false;
    for (const name of names) if (!classes.some((c) => c.name === name)) addClass(name);
    for (const { className, name, blob } of photos) {
      const entry = classes.find((c) => c.name === className);
      if (entry) run(() => addExample(entry, name, blob, "", true));
    }
    return { classes: names.length, photos: photos.length };
  }

  // A model kept in this browser (`kept`: TAUGHT or LOADED), in use again (`type`: "useWeights"
  // or "useAsLoaded"): its class names, or null when none was kept (or it could not be used, and
  // is forgotten).
  async function restoreModel(kept, type, what) {
    const bytes = await kept.bytes();
    if (!bytes) return null;
    try {
      const { info } = await (await model()).ask({ type, bytes });
      const parsed = JSON.parse(info);
      showModel(parsed);
      $("teach-panel").hidden = false;
      return parsed.labels.map((l) => l.name).join(", ");
    } catch (e) {
      await kept.forget();
      status(`The ${what} kept in this browser could not be used (${e.message || e}); it is forgotten.`);
      return null;
    }
  }

  return {
    // What an earlier visit left: a trained or picked model, a taught one (a broken one is
    // forgotten), the classes and photos, an interrupted live run.
    async restore() {
      // The models first (the loaded one, then one taught on it): the photos' features are
      // computed with the model in use.
      const loadedNames = await restoreModel(LOADED, "useAsLoaded", "trained or picked model");
      $("teach-bundled").hidden = !loadedNames;
      const taughtNames = await restoreModel(TAUGHT, "useWeights", "taught model");
      taught = Boolean(taughtNames);
      const names = taughtNames || loadedNames;
      const examples = await restoreExamples();
      const given = examples && `${examples.classes} classes and ${examples.photos} photos`;
      const back = names
        ? `Your model (${names}) is back${given ? `, with your ${given}` : ""}`
        : given && `Your ${given} are back`;
      if (back) run(async () => status(`${back} (kept in this browser until you go back or forget what this page keeps).`));
      await live.restore();
    },
    // A picked weights file was loaded: kept, and given every photo (its features differ).
    async modelChanged() {
      await run(newLoaded);
    },
  };
}

const PHOTO = /\.(jpe?g|png|gif|webp|bmp)$/i;

// A picked folder's photos by class: the subfolder right under it (or under its train/), by
// name; `skipped`: files that are not photos or lie outside class subfolders.
function classFolders(files) {
  const byClass = new Map();
  let skipped = 0;
  for (const file of files) {
    const dirs = (file.webkitRelativePath || file.name).split("/").slice(1, -1);
    const name = (dirs[0] === "train" ? dirs[1] : dirs[0])?.trim();
    if (!name || dirs[0] === "val" || dirs[0] === "test" || !PHOTO.test(file.name)) {
      skipped += 1;
      continue;
    }
    if (!byClass.has(name)) byClass.set(name, []);
    byClass.get(name).push(file);
  }
  for (const photos of byClass.values()) photos.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { byClass: new Map([...byClass].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), skipped };
}
