// Training the whole network live on the teaching photos: the worker runs the library's training
// step one batch per request (web/src/live.rs), so this loop can draw, pause and stop between
// batches. Per epoch: the training loss and top-1, the held-out top-1 (every fifth photo of each
// class, when there are enough), and conv1's filters as they form (the paper's Figure 3).

import { figureOf } from "./model.js";

const $ = (id) => document.getElementById(id);

// `model()`: the model in use; `classes()`: the teaching classes [{name, index, photos}];
// `showModel(info)`: the page shows that model's card; `run(job)`: the teaching queue.
export function setupLive({ model, classes, showModel, run }) {
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

  async function liveRun() {
    const given = classes();
    if (given.length < 2) return status("Add at least two classes, each with example photos.");
    const empty = given.find((c) => c.photos.length === 0);
    if (empty) return status(`“${empty.name}” has no example photos yet.`);
    const epochs = Math.max(1, Math.min(500, Math.round(Number($("live-epochs").value) || 10)));
    const m = await model();
    await m.ask({ type: "liveStart", names: given.map((c) => c.name), fromScratch: $("live-mode").value === "scratch", epochs });
    const total = given.reduce((n, c) => n + c.photos.length, 0);
    let added = 0;
    for (const entry of given) {
      for (const { source } of entry.photos) {
        await m.ask({ type: "liveAdd", bytes: new Uint8Array(await source.arrayBuffer()), class: entry.index });
        added += 1;
        if (added % 10 === 0 || added === total) status(`Preparing the photos: ${added} of ${total}`);
      }
    }
    live = { paused: false, stopped: false, resume: null };
    buttons(true);
    $("live-curves").parentElement.hidden = false;
    const history = [];
    try {
      await train(m, history);
      const { info } = await m.ask({ type: "liveEnd", keep: true });
      showModel(JSON.parse(info));
      const last = history[history.length - 1];
      status(`Trained ${history.length} epoch${history.length === 1 ? "" : "s"}${last ? `: loss ${last.loss.toFixed(3)}` : ""}; the trained model is in use now`);
    } finally {
      live = null;
      buttons(false);
    }
  }

  async function train(m, history) {
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
      images += 16;
      const rate = images / ((performance.now() - started) / 1000);
      status(`Epoch ${progress.epoch} of ${progress.epochs}, batch ${progress.batch} of ${progress.batches} · ~${rate.toFixed(1)} images/s`);
      if (progress.epoch_end) {
        history.push(progress.epoch_end);
        drawCurves(history);
        const { pictures } = await m.ask({ type: "liveFilters" });
        $("live-filters").replaceChildren(figureOf(pictures[0]));
      }
    }
  }
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
