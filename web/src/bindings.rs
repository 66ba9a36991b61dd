//! The wasm-bindgen API the page calls.

use wasm_bindgen::prelude::*;

use alexnet::inside::Picture;

use alexnet::train::teach::TeachConfig;
use alexnet::weights::{Precision, SavedModel};
use burn::backend::Flex;

use alexnet::neighbours::Neighbours;

use crate::live::LiveRun;
use crate::parts::Part;
use crate::teach::Examples;
use crate::{Engine, Inside, WebError};
use alexnet::train::live::{self, Checkpoint, Start};

fn js_error(e: WebError) -> JsError {
    JsError::new(&e.to_string())
}

fn live_error(e: live::LiveError) -> JsError {
    js_error(WebError::Live(e))
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    // Warnings and errors (the browser's verdicts on CubeCL's shaders among them) in the worker's
    // console; setting the logger fails only if one is set already.
    let _ = console_log::init_with_level(log::Level::Warn);
}

/// An AlexNet ready to classify images.
#[wasm_bindgen]
pub struct Classifier {
    engine: Engine,
    /// The weights in use (the loaded ones, or a taught model's), for [`Inside`] and export.
    weights: Vec<u8>,
    /// The weights as loaded: what teaching starts from and "back to the loaded model" restores.
    loaded: Vec<u8>,
    inside: Option<Inside>,
    examples: Examples,
    /// fc7 features of every photo the page was given (classified or examples), by its id.
    photos: Neighbours,
    /// A live training run of the whole network (on the classifier's backend), between its
    /// batches.
    live: Option<LiveRun>,
    /// Counts the models loaded (`useAsLoaded`): the page's split network is cut from one.
    loaded_generation: u32,
    /// Whether the network in use (all but its last layer) is the loaded one's: after teaching
    /// it is, after `useWeights` it need not be.
    uses_loaded_network: bool,
}

/// `{name, width, height, rgba}`, `rgba` a Uint8ClampedArray ready for `new ImageData`.
fn picture(name: &str, p: Picture) -> Result<JsValue, JsError> {
    let object = js_sys::Object::new();
    let set = |key: &str, value: JsValue| {
        js_sys::Reflect::set(&object, &key.into(), &value)
            .map(|_| ())
            .map_err(|_| JsError::new("building a picture"))
    };
    set("name", name.into())?;
    set("width", p.width.into())?;
    set("height", p.height.into())?;
    set("rgba", js_sys::Uint8ClampedArray::from(p.rgba.as_slice()).into())?;
    Ok(object.into())
}

#[wasm_bindgen]
impl Classifier {
    /// Loads a weights file's bytes. `backend` is "webgpu" or "cpu"; the page picks "webgpu" only
    /// when `navigator.gpu` gave an adapter whose storage-buffer limit holds the largest tensor.
    pub async fn load(weights: Vec<u8>, backend: String) -> Result<Classifier, JsError> {
        let engine = Engine::load(weights.clone(), backend == "webgpu").await.map_err(js_error)?;
        Ok(Classifier {
            engine,
            loaded: weights.clone(),
            weights,
            inside: None,
            examples: Examples::default(),
            photos: Neighbours::default(),
            live: None,
            loaded_generation: 0,
            uses_loaded_network: true,
        })
    }

    /// "WebGPU" or "CPU".
    pub fn backend(&self) -> String {
        self.engine.backend_name().to_string()
    }

    /// The model's description (config, labels, provenance) as JSON.
    #[wasm_bindgen(js_name = infoJson)]
    pub fn info_json(&self) -> String {
        serde_json::to_string(self.engine.info()).unwrap_or_default()
    }

    /// Classifies an encoded image (JPEG, PNG, GIF, WebP, BMP); returns JSON
    /// `{"top": [{"index", "label", "prob"}, ...], "out_of_classes": bool or null}`, most
    /// likely first; `out_of_classes` is null for a model not calibrated. Its fc7 features are
    /// kept under `photo`, if given (for `nearest`).
    #[wasm_bindgen(js_name = classifyFile)]
    pub async fn classify_file(
        &mut self,
        bytes: Vec<u8>,
        k: usize,
        photo: Option<u32>,
    ) -> Result<String, JsError> {
        let (answer, features) = self.engine.classify_file(&bytes, k).await.map_err(js_error)?;
        if let Some(photo) = photo {
            self.photos.keep(photo, features);
        }
        Ok(serde_json::to_string(&answer).unwrap_or_default())
    }

    /// The ids of at most `n` photos nearest photo `photo` by fc7 distance (the paper's Figure 4).
    pub fn nearest(&self, photo: u32, n: usize) -> Vec<u32> {
        self.photos.nearest(photo, n)
    }

    /// Classifies a canvas's RGBA pixels (`getImageData().data`); same result as `classifyFile`.
    #[wasm_bindgen(js_name = classifyRgba)]
    pub async fn classify_rgba(
        &self,
        rgba: Vec<u8>,
        width: u32,
        height: u32,
        k: usize,
    ) -> Result<String, JsError> {
        let norm = &self.engine.info().normalization;
        let input = alexnet::preprocess::preprocess_rgba(&rgba, width, height, norm)
            .map_err(|e| js_error(WebError::Image(e)))?;
        let (answer, _) = self.engine.classify_input(input, k).await.map_err(js_error)?;
        Ok(serde_json::to_string(&answer).unwrap_or_default())
    }

    /// Adds an example photo (an encoded image) of class `class` for teaching: its fc7 features
    /// are computed now, on this backend, and kept under `photo` too (for `nearest`). Returns how
    /// many examples there are.
    #[wasm_bindgen(js_name = addExample)]
    pub async fn add_example(&mut self, bytes: Vec<u8>, class: usize, photo: u32) -> Result<usize, JsError> {
        let features = self.engine.fc7_of_file(&bytes).await.map_err(js_error)?;
        self.examples.add(features.clone(), class).map_err(js_error)?;
        self.photos.keep(photo, features);
        Ok(self.examples.len())
    }

    /// Teaches the loaded model the classes `names` (example classes are indices into it) and
    /// uses the taught model from now on. Returns JSON `{classes, examples, loss, top1,
    /// held_out_top1}`; the model in use is unchanged when teaching fails.
    pub async fn teach(&mut self, names: Vec<String>, epochs: usize, seed: u64) -> Result<String, JsError> {
        let config = TeachConfig { epochs, seed, ..Default::default() };
        let (taught, lesson) = self.examples.teach(self.loaded.clone(), &names, &config).map_err(js_error)?;
        // A taught model is the loaded network with a new last layer.
        self.switch_to(taught, true).await?;
        Ok(serde_json::to_string(&lesson).unwrap_or_default())
    }

    /// Uses a weights file's bytes from now on, on this backend (a taught model the page kept);
    /// `useLoaded` still returns to the model as loaded. The model in use stays when the file
    /// fails to load.
    #[wasm_bindgen(js_name = useWeights)]
    pub async fn use_weights(&mut self, bytes: Vec<u8>) -> Result<(), JsError> {
        self.switch_to(bytes, false).await
    }

    /// Uses a weights file's bytes from now on as the loaded model (one the page kept from an
    /// earlier visit, or the bundled one again): teaching builds on it and "back to the loaded
    /// model" returns to it. The photos' features are forgotten, to be given again. The model in
    /// use stays when the file fails to load.
    #[wasm_bindgen(js_name = useAsLoaded)]
    pub async fn use_as_loaded(&mut self, bytes: Vec<u8>) -> Result<(), JsError> {
        self.switch_to(bytes.clone(), true).await?;
        self.loaded = bytes;
        self.loaded_generation += 1;
        self.forget_features();
        Ok(())
    }

    /// Back to the model as loaded. The photos' features are forgotten (the model in use may have
    /// been another network): the page gives the examples again.
    #[wasm_bindgen(js_name = useLoaded)]
    pub async fn use_loaded(&mut self) -> Result<(), JsError> {
        self.switch_to(self.loaded.clone(), true).await?;
        self.forget_features();
        Ok(())
    }

    /// The loaded model's count (see `useAsLoaded`): a split network cut from an older one is
    /// not to be used.
    #[wasm_bindgen(js_name = loadedGeneration)]
    pub fn loaded_generation(&self) -> u32 {
        self.loaded_generation
    }

    /// Whether the network in use, all but its last layer, is the loaded one (which the split
    /// network is cut from).
    #[wasm_bindgen(js_name = usesLoadedNetwork)]
    pub fn uses_loaded_network(&self) -> bool {
        self.uses_loaded_network
    }

    /// The weights file as loaded (for the helper worker to cut its part from).
    #[wasm_bindgen(js_name = loadedWeights)]
    pub fn loaded_weights(&self) -> Vec<u8> {
        self.loaded.clone()
    }

    /// Part `index` of `parts` of the loaded network, on the CPU (see `Part`). Refused on WebGPU,
    /// or while another network is in use.
    pub fn part(&self, index: usize, parts: usize) -> Result<Part, JsError> {
        match self.engine.cpu_model() {
            Some(saved) if self.uses_loaded_network => {
                Part::of(saved.model.clone(), saved.info.normalization, index, parts)
            }
            _ => Err(JsError::new("only the loaded network on the CPU is split")),
        }
    }

    /// The answer for a photo from its fc7 features (the split network's parts together), as
    /// `classifyFile` gives it; the features are kept under `photo`, if given.
    #[wasm_bindgen(js_name = classifyFc7)]
    pub fn classify_fc7(&mut self, fc7: Vec<f32>, k: usize, photo: Option<u32>) -> Result<String, JsError> {
        let answer = self.engine.classify_fc7(&fc7, k).map_err(js_error)?;
        if let Some(photo) = photo {
            self.photos.keep(photo, fc7);
        }
        Ok(serde_json::to_string(&answer).unwrap_or_default())
    }

    /// The model in use as the weights file it was loaded or made from, unchanged (for the page
    /// to keep: no second serialisation).
    #[wasm_bindgen(js_name = weightsInUse)]
    pub fn weights_in_use(&self) -> Vec<u8> {
        self.weights.clone()
    }

    /// The model in use as a weights file: f32, or int8 when `int8`.
    #[wasm_bindgen(js_name = exportWeights)]
    pub fn export_weights(&self, int8: bool) -> Result<Vec<u8>, JsError> {
        let saved = SavedModel::<Flex>::from_bytes(self.weights.clone(), &Default::default())
            .map_err(|e| js_error(WebError::Weights(e)))?;
        let precision = if int8 { Precision::Int8 } else { Precision::F32 };
        saved.to_bytes(precision).map_err(|e| js_error(WebError::Weights(e)))
    }

    /// Starts a live training run for the classes `names` on `photos` photos (refused when there
    /// are more than it keeps, before any is prepared): the loaded model fine-tuned with a new
    /// last layer, or (`from_scratch`) a new AlexNet at width 0.125; `epochs` passes, cosine.
    #[wasm_bindgen(js_name = liveStart)]
    pub fn live_start(
        &mut self,
        names: Vec<String>,
        photos: usize,
        from_scratch: bool,
        epochs: usize,
    ) -> Result<(), JsError> {
        live::check_photo_count(photos).map_err(live_error)?;
        let start = if from_scratch { Start::Scratch(0.125) } else { Start::FineTune(self.loaded.clone()) };
        self.live = Some(LiveRun::new(start, &names, epochs, &self.engine).map_err(live_error)?);
        Ok(())
    }

    /// Adds a photo of class `class` to the live run; returns how many it has.
    #[wasm_bindgen(js_name = liveAdd)]
    pub fn live_add(&mut self, bytes: Vec<u8>, class: usize) -> Result<usize, JsError> {
        self.live_run()?.add(&bytes, class).map_err(live_error)
    }

    /// One batch of the live run: JSON `{epoch, epochs, batch, batches, images, epoch_end: null or
    /// {loss, top1, held_out_top1, lr}}`, or `null` once it is done.
    #[wasm_bindgen(js_name = liveStep)]
    pub async fn live_step(&mut self) -> Result<String, JsError> {
        let progress = self.live_run()?.step().await.map_err(live_error)?;
        Ok(serde_json::to_string(&progress).unwrap_or_default())
    }

    /// The live run after its last complete epoch, for the page to keep: `{state, model, optim}`
    /// (a JSON string and two byte arrays), or `null` in the middle of an epoch.
    #[wasm_bindgen(js_name = liveCheckpoint)]
    pub async fn live_checkpoint(&mut self) -> Result<JsValue, JsError> {
        let Some(checkpoint) = self.live_run()?.checkpoint().await.map_err(live_error)? else {
            return Ok(JsValue::NULL);
        };
        let object = js_sys::Object::new();
        let set = |key: &str, value: JsValue| js_sys::Reflect::set(&object, &key.into(), &value);
        set("state", checkpoint.state.into())
            .and_then(|_| set("model", js_sys::Uint8Array::from(&checkpoint.model[..]).into()))
            .and_then(|_| set("optim", js_sys::Uint8Array::from(&checkpoint.optim[..]).into()))
            .map_err(|_| JsError::new("could not hand the checkpoint over"))?;
        Ok(object.into())
    }

    /// Goes on with the live run a checkpoint was taken of (its photos are then added again with
    /// `liveAdd`, in the same order).
    #[wasm_bindgen(js_name = liveResume)]
    pub fn live_resume(&mut self, state: String, model: Vec<u8>, optim: Vec<u8>) -> Result<(), JsError> {
        let checkpoint = Checkpoint { state, model, optim };
        self.live = Some(LiveRun::resume(checkpoint, &self.engine).map_err(live_error)?);
        Ok(())
    }

    /// conv1's filters of the live run's model, as they are now.
    #[wasm_bindgen(js_name = liveFilters)]
    pub async fn live_filters(&mut self) -> Result<JsValue, JsError> {
        let filters = self.live_run()?.filters().await.map_err(live_error)?;
        picture("conv1 filters", filters)
    }

    /// Ends the live run; with `keep`, its model is used, and is the loaded model, from now on (the
    /// examples must then be given again).
    #[wasm_bindgen(js_name = liveEnd)]
    pub async fn live_end(&mut self, keep: bool) -> Result<(), JsError> {
        let weights = match (&self.live, keep) {
            (Some(live), true) => Some(live.weights().await.map_err(live_error)?),
            _ => None,
        };
        self.live = None;
        match weights {
            Some(weights) => self.use_as_loaded(weights).await,
            None => Ok(()),
        }
    }

    /// conv1's learned filters as one picture (the paper's Figure 3).
    pub fn filters(&mut self) -> Result<JsValue, JsError> {
        let filters = self.inside()?.filters();
        picture("conv1 filters", filters)
    }

    /// For an encoded image: the pixels that drove `class`, then each conv layer's feature maps,
    /// as an array of pictures.
    pub fn explain(&mut self, bytes: Vec<u8>, class: usize) -> Result<js_sys::Array, JsError> {
        let pictures = self.inside()?.explain(&bytes, class).map_err(js_error)?;
        let array = js_sys::Array::new();
        for (name, p) in pictures {
            array.push(&picture(&name, p)?);
        }
        Ok(array)
    }
}

impl Classifier {
    fn live_run(&mut self) -> Result<&mut LiveRun, JsError> {
        self.live.as_mut().ok_or_else(|| JsError::new("no live training run: start one first"))
    }

    /// Forgets every photo's fc7 features (examples and classified ones): they came from a
    /// network no longer in use, and the page gives the examples again.
    fn forget_features(&mut self) {
        self.examples = Examples::default();
        self.photos = Neighbours::default();
    }

    /// Uses `weights` from now on, on the same backend; `loaded_network`: whether all but their
    /// last layer is the loaded model's (what the split network is cut from).
    async fn switch_to(&mut self, weights: Vec<u8>, loaded_network: bool) -> Result<(), JsError> {
        self.engine = self.engine.reload(weights.clone()).await.map_err(js_error)?;
        self.weights = weights;
        self.inside = None;
        self.uses_loaded_network = loaded_network;
        Ok(())
    }

    /// The CPU copy of the model behind the pictures, made on the first request.
    fn inside(&mut self) -> Result<&Inside, JsError> {
        if self.inside.is_none() {
            self.inside = Some(Inside::new(self.weights.clone()).map_err(js_error)?);
        }
        Ok(self.inside.as_ref().expect("just made"))
    }
}
