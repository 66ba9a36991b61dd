// The model lives in this worker, off the page's main thread: loading it and classifying never
// freeze the page. One request at a time, in arrival order (the classifier is not re-entrant).
//   in:  {type: "load", bytes, backend} | {type: "classify", id, bytes}
//        | {type: "classifyRgba", id, rgba, width, height} (a camera frame)
//        | {type: "filters", id} | {type: "explain", id, bytes, class}
//   out: {type: "loaded", backend, info} | {type: "result", id, top, outOfClasses, ms}
//        (outOfClasses: whether the photo shows none of the model's classes; null for a model
//        not calibrated)
//        | {type: "pictures", id, pictures: [{name, width, height, rgba}]}
//        | {type: "error", id, message, fatal}
// `fatal`: the WebAssembly instance trapped (a panic) and cannot be used again: the page starts a
// new worker.
import init, { Classifier } from "./alexnet-web.js";

const ready = init();
let classifier = null;
let queue = Promise.resolve();

onmessage = ({ data }) => {
  queue = queue.then(() => handle(data));
};

async function handle(data) {
  try {
    await ready;
    if (data.type === "load") {
      classifier = await Classifier.load(data.bytes, data.backend);
      postMessage({ type: "loaded", backend: classifier.backend(), info: classifier.infoJson() });
    } else if (data.type === "classify") {
      const start = performance.now();
      const answer = JSON.parse(await classifier.classifyFile(data.bytes, 5));
      postMessage({ type: "result", id: data.id, top: answer.top, outOfClasses: answer.out_of_classes, ms: performance.now() - start });
    } else if (data.type === "classifyRgba") {
      const start = performance.now();
      const answer = JSON.parse(await classifier.classifyRgba(data.rgba, data.width, data.height, 5));
      postMessage({ type: "result", id: data.id, top: answer.top, outOfClasses: answer.out_of_classes, ms: performance.now() - start });
    } else if (data.type === "filters" || data.type === "explain") {
      const pictures = data.type === "filters" ? [classifier.filters()] : classifier.explain(data.bytes, data.class);
      postMessage({ type: "pictures", id: data.id, pictures: [...pictures] }, [...pictures].map((p) => p.rgba.buffer));
    }
  } catch (e) {
    const fatal = e instanceof WebAssembly.RuntimeError;
    postMessage({ type: "error", id: data.id, message: String((e && e.message) || e), fatal });
  }
}
