//! The wasm-bindgen API the page calls.

use wasm_bindgen::prelude::*;

use alexnet::inside::Picture;

use crate::{Engine, Inside, WebError};

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
    /// The weights, for [`Inside`], made on the first request.
    weights: Vec<u8>,
    inside: Option<Inside>,
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
        Ok(Classifier { engine, weights, inside: None })
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
    /// likely first; `out_of_classes` is null for a model not calibrated.
    #[wasm_bindgen(js_name = classifyFile)]
    pub async fn classify_file(&self, bytes: Vec<u8>, k: usize) -> Result<String, JsError> {
        let answer = self.engine.classify_file(&bytes, k).await.map_err(js_error)?;
        Ok(serde_json::to_string(&answer).unwrap_or_default())
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
        let image =
            alexnet::preprocess::from_rgba(&rgba, width, height).map_err(|e| js_error(WebError::Image(e)))?;
        let input = alexnet::preprocess::eval_transform(&image, &self.engine.info().normalization);
        let answer = self.engine.classify_input(input, k).await.map_err(js_error)?;
        Ok(serde_json::to_string(&answer).unwrap_or_default())
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
    /// The CPU copy of the model behind the pictures, made on the first request.
    fn inside(&mut self) -> Result<&Inside, JsError> {
        if self.inside.is_none() {
            self.inside = Some(Inside::new(self.weights.clone()).map_err(js_error)?);
        }
        Ok(self.inside.as_ref().expect("just made"))
    }
}
