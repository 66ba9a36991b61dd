//! The wasm-bindgen API the page calls.

use wasm_bindgen::prelude::*;

use crate::{Engine, WebError};

fn js_error(e: WebError) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// An AlexNet ready to classify images.
#[wasm_bindgen]
pub struct Classifier {
    engine: Engine,
}

#[wasm_bindgen]
impl Classifier {
    /// Loads a weights file's bytes. `backend` is "webgpu" or "cpu"; the page picks "webgpu" only
    /// when `navigator.gpu` gave an adapter whose storage-buffer limit holds the largest tensor.
    pub async fn load(weights: Vec<u8>, backend: String) -> Result<Classifier, JsError> {
        let engine = Engine::load(weights, backend == "webgpu").await.map_err(js_error)?;
        Ok(Classifier { engine })
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
    /// `[{"index", "label", "prob"}, ...]`, most likely first.
    #[wasm_bindgen(js_name = classifyFile)]
    pub async fn classify_file(&self, bytes: Vec<u8>, k: usize) -> Result<String, JsError> {
        let top = self.engine.classify_file(&bytes, k).await.map_err(js_error)?;
        Ok(serde_json::to_string(&top).unwrap_or_default())
    }

    /// Classifies a canvas's RGBA pixels (`getImageData().data`); same result as `classifyFile`.
    #[wasm_bindgen(js_name = classifyRgba)]
    pub async fn classify_rgba(&self, rgba: Vec<u8>, width: u32, height: u32, k: usize) -> Result<String, JsError> {
        let image = alexnet::preprocess::from_rgba(&rgba, width, height).map_err(|e| js_error(WebError::Image(e)))?;
        let input = alexnet::preprocess::eval_transform(&image, &self.engine.info().normalization);
        let top = self.engine.classify_input(input, k).await.map_err(js_error)?;
        Ok(serde_json::to_string(&top).unwrap_or_default())
    }
}
