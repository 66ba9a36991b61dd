//! The page's CPU path on two workers: the paper's two-GPU split ([`alexnet::split`]). Each
//! worker holds one [`Part`]; the page's worker.js runs the steps and exchanges the shares.

use alexnet::preprocess;
use alexnet::split;
use alexnet::Normalization;
use burn::backend::Flex;
use wasm_bindgen::prelude::*;

use crate::{AlexNet, WebError};

/// This worker's part of the network.
#[wasm_bindgen]
pub struct Part {
    part: split::Part<Flex>,
    norm: Normalization,
}

fn image_error(e: preprocess::ImageError) -> JsError {
    JsError::new(&WebError::Image(e).to_string())
}

impl Part {
    pub fn of(
        model: AlexNet<Flex>,
        norm: Normalization,
        index: usize,
        parts: usize,
    ) -> Result<Part, JsError> {
        let part = split::Part::of(model, index, parts).map_err(|e| JsError::new(&e))?;
        Ok(Part { part, norm })
    }
}

#[wasm_bindgen]
impl Part {
    /// Part `index` of `parts` of a weights file's network (the helper worker's).
    #[wasm_bindgen(js_name = fromWeights)]
    pub fn from_weights(bytes: Vec<u8>, index: usize, parts: usize) -> Result<Part, JsError> {
        let saved = alexnet::SavedModel::<Flex>::from_bytes(bytes, &Default::default())
            .map_err(|e| JsError::new(&WebError::Weights(e).to_string()))?;
        Part::of(saved.model, saved.info.normalization, index, parts)
    }

    /// How many steps one image takes (conv1 to conv5, fc6, fc7).
    pub fn steps() -> usize {
        split::STEPS
    }

    /// Whether step `step` takes every part's output of the step before, or only this part's.
    #[wasm_bindgen(js_name = takesWhole)]
    pub fn takes_whole(&self, step: usize) -> bool {
        self.part.takes_whole(step)
    }

    /// The normalised input of an encoded image (as `classifyFile` prepares it).
    #[wasm_bindgen(js_name = prepareFile)]
    pub fn prepare_file(&self, bytes: &[u8]) -> Result<Vec<f32>, JsError> {
        preprocess::preprocess_bytes(bytes, &self.norm).map_err(image_error)
    }

    /// The normalised input of a canvas's RGBA pixels (as `classifyRgba` prepares it).
    #[wasm_bindgen(js_name = prepareRgba)]
    pub fn prepare_rgba(&self, rgba: &[u8], width: u32, height: u32) -> Result<Vec<f32>, JsError> {
        preprocess::preprocess_rgba(rgba, width, height, &self.norm).map_err(image_error)
    }

    /// This part's share of step `step`'s output (see [`split::Part::step`]).
    pub fn step(&mut self, step: usize, input: Vec<f32>) -> Result<Vec<f32>, JsError> {
        self.part.step(step, input).map_err(|e| JsError::new(&e))
    }
}
