// Training the whole network live on the teaching photos: the worker runs the library's training
// step one batch per request (`alexnet::train::live`), so this loop can draw, pause and stop between
// batches. Per epoch: the training loss and top-1, the held-out top-1 (every fifth photo of each
// class, when there are enough), and conv1's filters as they form (the paper's Figure 3). After
// each epoch the run's checkpoint is kept in this browser (web/store.js): after a reload, "Resume"
// goes on from it with the same photos.

import { figureOf } from "./model.js";
import { forget, keep, kept } from "./store.js";

const $ = (id) => document.getElementById(id);

// `model()`: the model in use; `classes()`: the teaching classes [{name, index, photos}];
// `showModel(info)`: the page shows that model's card; `run(job)`: the teaching queue;
// `newLoaded()`: the trained model, now the loaded one, kept and given the examples again.
export function setupLive({ model, classes, showModel, run, newLoaded }) {
  let live = null; // {paused, stopped, resume}
  const status = (text) => {
    $("live-status").textContent = text;
  };
  const buttons = (running) => {
    $("live-train").disabled = running;
    $("live-pause").disabled = !running;
    $("live-stop").disabled = !running;
    $("live-pause").textContent = "Pause";
  };

  $("live-pause").addEventListener("click", () => {
    if (!live) return;
    live.paused = !live.paused;
    $("live-pause").textContent = live.paused ? "Resume" : "Pause";
    if (!live.paused && live.resume) live.resume();
  });
  $("live-stop").addEventListener("click", () => {
    if (!live) return;
    live.stopped = true;
    if (live.resume) live.resume();
  });

  $("live-train").addEventListener("click", () => {
    status("Waiting for the teaching queue…");
    return run(() => liveRun().catch((e) => status(`Live training stopped: ${e.message || e}`)));
  });
  $("live-resume").addEventListener("click", () => {
    status("Waiting for the teaching queue…");
    return run(() => resumeRun().catch((e) => status(`Live training stopped: ${e.message || e}`)));
  });
  $("live-forget").addEventListener("click", async () => {
    await forget("live");
    $("live-interrupted").hidden = true;
    status("The interrupted run is forgotten.");
  });

  async function liveRun() {
    const given = classes();
    if (given.length < 2) return status("Add at least two classes, each with example photos.");
    const empty = given.find((c) => c.photos.length === 0);
    if (empty) return status(`“${empty.name}” has no example photos yet.`);
    const epochs = Math.max(1, Math.min(500, Math.round(Number($("live-epochs").value) || 10)));
    const fromScratch = $("live-mode").value === "scratch";
    const m = await model();
    const names = given.map((c) => c.name);
    const photos = given.map((c) => c.photos.slice());
    await m.ask({ type: "liveStart", names, photos: photos.reduce((n, p) => n + p.length, 0), fromScratch, epochs });
    // A new run replaces an interrupted one.
    await forget("live");
    $("live-interrupted").hidden = true;
    await addPhotos(m, photos);
    await trainAndUse(m, { names, counts: photos.map((p) => p.length) }, []);
  }

  // The run kept at its last epoch's end, with the first photos of each of its classes (the ones
  // it had: photos given later are not in it).
  async function resumeRun() {
    const saved = await kept("live");
    if (!saved) return status("No interrupted run is kept in this browser.");
    const given = classes();
    const entries = saved.names.map((name) => given.find((c) => c.name === name));
    if (entries.some((e, i) => !e || e.photos.length < saved.counts[i])) {
      return status("The interrupted run's photos are not all here any more: it cannot go on (“Forget it”, then train anew).");
    }
    const m = await model();
    await m.ask({ type: "liveResume", state: saved.state, model: saved.model, optim: saved.optim });
    $("live-interrupted").hidden = true;
    await addPhotos(m, entries.map((e, i) => e.photos.slice(0, saved.counts[i])));
    drawCurves(saved.history);
    await trainAndUse(m, { names: saved.names, counts: saved.counts }, saved.history);
  }

  // `byClass[i]`: the photos of the run's class i.
  async function addPhotos(m, byClass) {
    const total = byClass.reduce((n, photos) => n + photos.length, 0);
    let added = 0;
    for (const [index, photos] of byClass.entries()) {
      for (const { source } of photos) {
        await m.ask({ type: "liveAdd", bytes: new Uint8Array(await source.arrayBuffer()), class: index });
        added += 1;
        if (added % 10 === 0 || added === total) status(`Preparing the photos: ${added} of ${total}`);
      }
    }
  }

  // Trains to the run's end or a stop, keeping a checkpoint after each epoch; then the trained
  // model is in use. `runClasses`: the run's class names and photo counts; `history`: its epochs so far.
  async function trainAndUse(m, runClasses, history) {
    live = { paused: false, stopped: false, resume: null };
    buttons(true);
    $("live-curves").parentElement.hidden = false;
    try {
      await train(m, history, runClasses);
      const { info } = await m.ask({ type: "liveEnd", keep: true });
      await forget("live");
      showModel(JSON.parse(info));
      status("Giving the trained network your photos again…");
      await newLoaded();
      const last = history[history.length - 1];
      status(`Trained ${history.length} epoch${history.length === 1 ? "" : "s"}${last ? `: loss ${last.loss.toFixed(3)}` : ""}; the trained model is in use now`);
    } finally {
      live = null;
      buttons(false);
    }
  }

  // Shows "Resume" when a run was interrupted (by a reload, a closed tab, a crash).
  async function restore() {
    const saved = await kept("live").catch(() => null);
    if (!saved) return;
    const epoch = saved.history.length;
    $("live-interrupted-text").textContent = `A live training run (${saved.names.length} classes) was interrupted after epoch ${epoch}; its checkpoint is kept in this browser.`;
    $("live-interrupted").hidden = false;
  }

  async function train(m, history, runClasses) {
    const started = performance.now();
    let images = 0;
    while (!live.stopped) {
      if (live.paused) {
        const where = $("live-status").textContent;
        status(`${where} · paused`);
        await new Promise((resolve) => (live.resume = resolve));
        live.resume = null;
        status(where);
        continue;
      }
      const { progress } = await m.ask({ type: "liveStep" });
      if (!progress) break;
      images += progress.images;
      const rate = images / ((performance.now() - started) / 1000);
      status(`Epoch ${progress.epoch} of ${progress.epochs}, batch ${progress.batch} of ${progress.batches} · ~${rate.toFixed(1)} images/s`);
      if (progress.epoch_end) {
        history.push(progress.epoch_end);
        drawCurves(history);
        const { checkpoint } = await m.ask({ type: "liveCheckpoint" });
        await keep("live", { ...runClasses, history, ...checkpoint }).catch((e) => status(`The checkpoint could not be kept in this browser (${e.message || e}): a reload would lose this run.`));
        const { pictures } = await m.ask({ type: "liveFilters" });
        $("live-filters").replaceChildren(figureOf(pictures[0]));
      }
    }
  }

  return { restore };
}

// Loss (left axis, to the run's largest) and top-1 (right axis, 0-100 %) per epoch: training top-1
// dashed, held-out top-1 solid. The figures are also on the canvas's data-history (JSON).
function drawCurves(history) {
  const canvas = $("live-curves");
  canvas.dataset.history = JSON.stringify(history);
  const g = canvas.getContext("2d");
  const [w, h, pad] = [canvas.width, canvas.height, 16];
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#8a94a6";
  g.strokeRect(pad, pad / 2, w - 2 * pad, h - pad - pad / 2);
  const x = (i) => pad + ((w - 2 * pad) * (i + 0.5)) / history.length;
  const maxLoss = Math.max(...history.map((e) => e.loss), 1e-9);
  const line = (values, top, color, dash) => {
    g.strokeStyle = color;
    g.setLineDash(dash);
    g.beginPath();
    values.forEach((v, i) => {
      const y = h - pad - (h - 1.5 * pad) * (v / top);
      if (i === 0) g.moveTo(x(i), y);
      else g.lineTo(x(i), y);
    });
    g.stroke();
    g.setLineDash([]);
  };
  line(history.map((e) => e.loss), maxLoss, "#a01818", []);
  line(history.map((e) => e.top1), 1, "#2f6fde", [4, 3]);
  if (history.every((e) => e.held_out_top1 !== null)) line(history.map((e) => e.held_out_top1), 1, "#2f6fde", []);
  g.fillStyle = "#555";
  g.font = "11px system-ui, sans-serif";
  g.fillText("loss (red), top-1 (blue: dashed training, solid held out)", pad + 4, pad + 8);
}
