// The page's CPU path on two workers: the paper's two-GPU split (src/split.rs). The page's worker
// (the primary) holds the whole model and part 0 of its network; a helper worker holds part 1.
// For each photo the primary prepares the image and sends it over; then both step through
// conv1..fc7: each computes its part's share of a layer and, where the next layer needs every
// share, sends it to the other over a MessagePort. The primary ends with fc7 and answers with the
// model's own last layer.
//   primary -> helper: {type: "cut", bytes, generation} (a newly loaded model)
//        | {type: "run", id, input} | {type: "cancel", id} (the primary gave the request up)
//   helper -> primary: {type: "cut", generation, error} | {type: "failed", id, message}
//   both ways: {type: "share", id, step, values}
import { Part } from "./alexnet-web.js";

const PARTS = 2;

// The helper could not do its part: the primary classifies with the whole model instead.
export class SplitFailed extends Error {}
class Cancelled extends Error {}

// The other worker's shares, by request and step. Shares of a request not open (one already
// answered or given up) are dropped.
class Mailbox {
  constructor() {
    this.open = new Map(); // id -> {arrived: Map(step -> values), waiting: Map(step -> {resolve, reject}), failed}
  }

  start(id) {
    this.open.set(id, { arrived: new Map(), waiting: new Map(), failed: null });
  }

  forget(id) {
    this.open.delete(id);
  }

  put(id, step, values) {
    const request = this.open.get(id);
    if (!request) return;
    const waiting = request.waiting.get(step);
    if (waiting) {
      request.waiting.delete(step);
      waiting.resolve(values);
    } else {
      request.arrived.set(step, values);
    }
  }

  fail(id, error) {
    const request = this.open.get(id);
    if (!request) return;
    request.failed = error;
    for (const waiting of request.waiting.values()) waiting.reject(error);
    request.waiting.clear();
  }

  failAll(error) {
    for (const id of this.open.keys()) this.fail(id, error);
  }

  take(id, step) {
    const request = this.open.get(id);
    if (!request) return Promise.reject(new Cancelled(`request ${id} is not open`));
    if (request.failed) return Promise.reject(request.failed);
    if (request.arrived.has(step)) {
      const values = request.arrived.get(step);
      request.arrived.delete(step);
      return Promise.resolve(values);
    }
    return new Promise((resolve, reject) => request.waiting.set(step, { resolve, reject }));
  }
}

// The normalised input of a request's image: an encoded file, a canvas's pixels, or given.
function prepare(part, source) {
  if (source.input) return source.input;
  if (source.bytes) return part.prepareFile(source.bytes);
  return part.prepareRgba(source.rgba, source.width, source.height);
}

// One image through this worker's part, exchanging shares with the other worker: resolves to
// fc7's features (the primary) or null (the helper).
async function runPart({ part, index, port, mailbox }, id, input) {
  const steps = Part.steps();
  let x = input;
  for (let step = 0; step < steps; step++) {
    const mine = part.step(step, x);
    const next = step + 1;
    if (next < steps && !part.takesWhole(next)) {
      x = mine;
      continue;
    }
    const share = mine.length;
    const whole = new Float32Array(share * PARTS);
    whole.set(mine, index * share);
    // The primary keeps its share of fc7; the helper sends every share, its last one included.
    if (index !== 0 || next < steps) port.postMessage({ type: "share", id, step, values: mine }, [mine.buffer]);
    if (index !== 0 && next === steps) return null;
    whole.set(await mailbox.take(id, step), (1 - index) * share);
    x = whole;
  }
  return x;
}

// The primary's side: part 0, and the helper it talks to.
export class Primary {
  // `measure`: keep the split only where it is the faster (else always).
  constructor(port, measure) {
    this.port = port;
    this.measure = measure;
    this.index = 0;
    this.mailbox = new Mailbox();
    this.part = null;
    this.generation = -1; // the loaded model's count both parts were cut from; -1: not split
    this.cutReplies = new Map(); // generation -> resolve
    this.cutTried = new Set(); // generations cut (or tried)
    this.nextWarmUp = -1; // ids of the blank passes, below the page's request ids
    this.lost = null; // why the helper is gone, once it is
    port.onmessage = ({ data }) => {
      if (data.type === "share") this.mailbox.put(data.id, data.step, data.values);
      else if (data.type === "failed") this.mailbox.fail(data.id, new SplitFailed(data.message));
      else if (data.type === "cut") this.cutReplies.get(data.generation)?.(data);
    };
  }

  // Whether a photo can go through both workers now.
  ready(classifier) {
    return this.generation >= 0 && this.generation === classifier.loadedGeneration() && classifier.usesLoadedNetwork();
  }

  // Cuts both parts from the loaded model (unless they are), then runs a blank image through
  // them (the first pass grows each worker's memory). Never throws: without both parts the
  // primary classifies alone.
  async cut(classifier) {
    const generation = classifier.loadedGeneration();
    // Each model is cut once: the helper cuts the first unasked, so asking again would hang.
    if (this.cutTried.has(generation) || this.lost) return;
    this.cutTried.add(generation);
    this.generation = -1;
    this.measured = null;
    try {
      const reply = new Promise((resolve) => this.cutReplies.set(generation, resolve));
      // The helper cuts the first model from the bytes the page gave it; later ones come from here.
      if (generation > 0) this.port.postMessage({ type: "cut", bytes: classifier.loadedWeights(), generation });
      this.part?.free();
      this.part = null;
      this.part = classifier.part(0, PARTS);
      const { error } = await reply;
      this.cutReplies.delete(generation);
      if (error) throw new Error(error);
      this.generation = generation;
      await this.run(this.nextWarmUp--, { input: new Float32Array(3 * 224 * 224) });
      if (this.measure) await this.keepIfFaster(classifier);
    } catch (e) {
      this.generation = -1;
      console.warn(`classifying on one worker: ${e.message || e}`);
    }
  }

  // Keeps the split only where it is the faster: a blank camera-sized frame three times each way,
  // alternating, each way judged by its best time (two workers gain little where the network is
  // small; at load the browser is still compiling the wasm's hot functions beside them, which
  // holds back two workers more than one, so the best time is the steadier judge).
  async keepIfFaster(classifier) {
    const [width, height] = [256, 256];
    const rgba = new Uint8Array(width * height * 4);
    const alone = [];
    const split = [];
    for (let i = 0; i < 3; i++) {
      let started = performance.now();
      await classifier.classifyRgba(rgba, width, height, 1);
      alone.push(performance.now() - started);
      started = performance.now();
      await this.run(this.nextWarmUp--, { rgba, width, height });
      split.push(performance.now() - started);
    }
    this.measured = { alone: Math.min(...alone), split: Math.min(...split) };
    if (this.measured.split >= this.measured.alone) this.generation = -1;
  }

  // How the primary classifies, for the page: "2 workers (...)" or "1 worker (...)".
  describe() {
    if (!this.measured) return this.generation >= 0 ? "2 workers" : "";
    const { alone, split } = this.measured;
    const both = `${split.toFixed(0)} ms on 2, ${alone.toFixed(0)} ms on 1 for a blank frame, best of 3`;
    return this.generation >= 0 ? `2 workers: ${both}` : `1 worker: ${both}`;
  }

  // The helper is gone: every photo from now on on this worker alone.
  lose(message) {
    this.lost = message;
    this.generation = -1;
    this.mailbox.failAll(new SplitFailed(message));
    for (const resolve of this.cutReplies.values()) resolve({ error: message });
  }

  // fc7's features of a request's image, from both parts.
  async run(id, source) {
    // An image that does not decode fails here, before the helper hears of it.
    const input = prepare(this.part, source);
    this.mailbox.start(id);
    try {
      this.port.postMessage({ type: "run", id, input });
      return await runPart(this, id, input);
    } catch (e) {
      if (e instanceof SplitFailed) this.generation = -1;
      // The helper must not wait for shares that will not come.
      else this.port.postMessage({ type: "cancel", id });
      throw e;
    } finally {
      this.mailbox.forget(id);
    }
  }

  // The answer for a request's image, from both parts and the model's last layer.
  async classify(classifier, id, source, photo) {
    return JSON.parse(classifier.classifyFc7(await this.run(id, source), 5, photo));
  }
}

// The helper's side: part 1, cut from `bytes`, then every request the primary sends, in order.
export function help(port, bytes, ready) {
  const helper = { port, index: 1, mailbox: new Mailbox(), part: null };
  let queue = ready.then(() => cut(helper, bytes, 0));
  port.onmessage = ({ data }) => {
    if (data.type === "share") helper.mailbox.put(data.id, data.step, data.values);
    else if (data.type === "cancel") helper.mailbox.fail(data.id, new Cancelled("given up"));
    else if (data.type === "cut") queue = queue.then(() => cut(helper, data.bytes, data.generation));
    else if (data.type === "run") {
      // Opened on arrival: the primary's first share may come before the run before it ends.
      helper.mailbox.start(data.id);
      queue = queue.then(() => helpWith(helper, data));
    }
  };
}

function cut(helper, bytes, generation) {
  try {
    helper.part?.free();
    helper.part = null;
    helper.part = Part.fromWeights(bytes, 1, PARTS);
    helper.port.postMessage({ type: "cut", generation, error: null });
  } catch (e) {
    helper.port.postMessage({ type: "cut", generation, error: String(e.message || e) });
  }
}

async function helpWith(helper, data) {
  try {
    if (!helper.part) throw new Error("the helper has no part of this model");
    await runPart(helper, data.id, data.input);
  } catch (e) {
    if (!(e instanceof Cancelled)) helper.port.postMessage({ type: "failed", id: data.id, message: String(e.message || e) });
  } finally {
    helper.mailbox.forget(data.id);
  }
}
