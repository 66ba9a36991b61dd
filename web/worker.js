// The model lives in this worker, off the page's main thread: loading it and classifying never
// freeze the page. One request at a time, in arrival order (the classifier is not re-entrant).
//   in:  {type: "load", bytes, backend} | {type: "classify", id, bytes, photo}
//        (photo: the page's id for it, under which its fc7 features are kept)
//        | {type: "classifyRgba", id, rgba, width, height} (a camera frame)
//        | {type: "filters", id} | {type: "explain", id, bytes, class}
//        | {type: "example", id, bytes, class, photo} (a teaching example: its features, now)
//        | {type: "nearest", id, photo, n} (the photos nearest it in fc7: the paper's Figure 4)
//        | {type: "teach", id, names, epochs, seed} | {type: "weights", id} (the model in use's file)
//        | {type: "useLoaded", id} (back to the model as loaded; its examples then given again)
//        | {type: "export", id, int8}
//        | {type: "useWeights", id, bytes} (a kept taught model)
//        | {type: "useAsLoaded", id, bytes} (another loaded model: a kept one, or the bundled again)
//        | {type: "liveStart", id, names, photos, fromScratch, epochs} | {type: "liveAdd", id, bytes, class}
//        | {type: "liveStep", id} | {type: "liveFilters", id} | {type: "liveEnd", id, keep}
//        | {type: "liveCheckpoint", id} | {type: "liveResume", id, state, model, optim}
//   out: {type: "loaded", backend, info, workers} (workers: how the CPU path is split, in words)
//        | {type: "result", id, top, outOfClasses, ms}
//        (outOfClasses: whether the photo shows none of the model's classes; null for a model
//        not calibrated)
//        | {type: "pictures", id, pictures: [{name, width, height, rgba}]}
//        | {type: "examples", id, count} | {type: "taught", id, lesson, info, ms}
//        | {type: "done", id, info} | {type: "file", id, bytes} | {type: "nearest", id, photos}
//        | {type: "live", id, progress} (null once done; from liveStart, liveAdd, liveResume:
//          {count}; from liveCheckpoint: {checkpoint} ({state, model, optim} or null))
//        | {type: "error", id, message, fatal}
// `fatal`: the WebAssembly instance trapped (a panic) and cannot be used again: the page starts a
// new worker.
// On the CPU, with a second core, the page starts a helper worker too (split.js): "load" then
// brings `peer`, a MessagePort to it, and the helper gets {type: "help", port, bytes} instead;
// {type: "helperLost"} says the helper failed. `measure`: keep the two only if they are faster.
import init, { Classifier } from "./alexnet-web.js";
import { Primary, SplitFailed, help } from "./split.js";

const ready = init();
let classifier = null;
let split = null; // the primary's side of the split network, when there is a helper
let helperLost = null; // why the helper failed, if it did (it may fail before "load" is handled)
let queue = Promise.resolve();

onmessage = ({ data }) => {
  if (data.type === "help") help(data.port, data.bytes, ready);
  else if (data.type === "helperLost") {
    helperLost = "the helper worker failed";
    split?.lose(helperLost);
  }
  else queue = queue.then(() => handle(data));
};

// A photo's answer through both workers where they hold the network in use, else on this one.
async function classify(id, source, photo, alone) {
  if (split?.ready(classifier)) {
    try {
      return await split.classify(classifier, id, source, photo);
    } catch (e) {
      if (!(e instanceof SplitFailed)) throw e;
      console.warn(`classifying on one worker from now on: ${e.message}`);
    }
  }
  return JSON.parse(await alone());
}

// Requests that change the model in use; each answers with the new model's card.
const SWITCHES = {
  useLoaded: () => classifier.useLoaded(),
  useWeights: (data) => classifier.useWeights(data.bytes),
  useAsLoaded: (data) => classifier.useAsLoaded(data.bytes),
};

async function handle(data) {
  try {
    await ready;
    if (data.type === "load") {
      classifier = await Classifier.load(data.bytes, data.backend);
      if (data.peer) {
        split = new Primary(data.peer, data.measure);
        if (helperLost) split.lose(helperLost);
        await split.cut(classifier);
      }
      postMessage({ type: "loaded", backend: classifier.backend(), info: classifier.infoJson(), workers: split?.describe() ?? "" });
    } else if (data.type === "classify") {
      const start = performance.now();
      const answer = await classify(data.id, { bytes: data.bytes }, data.photo, () => classifier.classifyFile(data.bytes, 5, data.photo));
      postMessage({ type: "result", id: data.id, top: answer.top, outOfClasses: answer.out_of_classes, ms: performance.now() - start });
    } else if (data.type === "classifyRgba") {
      const start = performance.now();
      const source = { rgba: data.rgba, width: data.width, height: data.height };
      const answer = await classify(data.id, source, undefined, () => classifier.classifyRgba(data.rgba, data.width, data.height, 5));
      postMessage({ type: "result", id: data.id, top: answer.top, outOfClasses: answer.out_of_classes, ms: performance.now() - start });
    } else if (data.type === "example") {
      postMessage({ type: "examples", id: data.id, count: await classifier.addExample(data.bytes, data.class, data.photo) });
    } else if (data.type === "nearest") {
      postMessage({ type: "nearest", id: data.id, photos: [...classifier.nearest(data.photo, data.n)] });
    } else if (data.type === "teach") {
      const start = performance.now();
      const lesson = JSON.parse(await classifier.teach(data.names, data.epochs, BigInt(data.seed)));
      postMessage({ type: "taught", id: data.id, lesson, info: classifier.infoJson(), ms: performance.now() - start });
    } else if (data.type in SWITCHES) {
      await SWITCHES[data.type](data);
      await split?.cut(classifier);
      postMessage({ type: "done", id: data.id, info: classifier.infoJson() });
    } else if (data.type === "weights") {
      const bytes = classifier.weightsInUse();
      postMessage({ type: "file", id: data.id, bytes }, [bytes.buffer]);
    } else if (data.type === "export") {
      const bytes = classifier.exportWeights(data.int8);
      postMessage({ type: "file", id: data.id, bytes }, [bytes.buffer]);
    } else if (data.type === "liveStart") {
      classifier.liveStart(data.names, data.photos, data.fromScratch, data.epochs);
      postMessage({ type: "live", id: data.id, count: 0 });
    } else if (data.type === "liveAdd") {
      postMessage({ type: "live", id: data.id, count: classifier.liveAdd(data.bytes, data.class) });
    } else if (data.type === "liveStep") {
      postMessage({ type: "live", id: data.id, progress: JSON.parse(await classifier.liveStep()) });
    } else if (data.type === "liveCheckpoint") {
      const checkpoint = await classifier.liveCheckpoint();
      const buffers = checkpoint ? [checkpoint.model.buffer, checkpoint.optim.buffer] : [];
      postMessage({ type: "live", id: data.id, checkpoint }, buffers);
    } else if (data.type === "liveResume") {
      classifier.liveResume(data.state, data.model, data.optim);
      postMessage({ type: "live", id: data.id, count: 0 });
    } else if (data.type === "liveFilters") {
      const picture = await classifier.liveFilters();
      postMessage({ type: "pictures", id: data.id, pictures: [picture] }, [picture.rgba.buffer]);
    } else if (data.type === "liveEnd") {
      await classifier.liveEnd(data.keep);
      await split?.cut(classifier);
      postMessage({ type: "done", id: data.id, info: classifier.infoJson() });
    } else if (data.type === "filters" || data.type === "explain") {
      const pictures = data.type === "filters" ? [classifier.filters()] : classifier.explain(data.bytes, data.class);
      postMessage({ type: "pictures", id: data.id, pictures: [...pictures] }, [...pictures].map((p) => p.rgba.buffer));
    }
  } catch (e) {
    const fatal = e instanceof WebAssembly.RuntimeError;
    postMessage({ type: "error", id: data.id, message: String((e && e.message) || e), fatal });
  }
}
