//! Teaching the loaded model new classes in the page: each example's fc7 features on the page's
//! backend (as it classifies), then a new last layer trained on the CPU with the library's
//! teaching (`alexnet::train::teach`), the same code as `trainer teach`.

use alexnet::labels::Label;
use alexnet::train::teach::{check_examples, taught_model, teach_layer, TeachConfig};
use alexnet::weights::{Precision, SavedModel};
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

use crate::WebError;

/// The examples given so far: one fc7 feature row each, and its class.
#[derive(Default)]
pub struct Examples {
    rows: Vec<f32>,
    width: usize,
    classes: Vec<usize>,
}

/// How teaching went, for the page.
#[derive(Serialize)]
pub struct Lesson {
    pub classes: usize,
    pub examples: usize,
    /// The last pass over the examples.
    pub loss: f64,
    pub top1: f64,
    /// Top-1 on every fifth example of each class, taught on the rest (enough examples only).
    pub held_out_top1: Option<f64>,
}

impl Examples {
    /// Adds one example's features (all of one model: the same width).
    pub fn add(&mut self, features: Vec<f32>, class: usize) -> Result<(), WebError> {
        if self.width != 0 && features.len() != self.width {
            return Err(WebError::Other(format!(
                "this example's features have {} values, the others {}",
                features.len(),
                self.width
            )));
        }
        self.width = features.len();
        self.rows.extend(features);
        self.classes.push(class);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// `base` (a weights file's bytes) with a last layer for the classes `names`, taught on the
    /// examples: the taught model's f32 weights file, and how it went.
    pub fn teach(
        &self,
        base: Vec<u8>,
        names: &[String],
        config: &TeachConfig,
    ) -> Result<(Vec<u8>, Lesson), WebError> {
        check_examples(names, &self.classes).map_err(|e| WebError::Other(format!("Cannot teach: {e}.")))?;
        let device = Default::default();
        let shape = [self.classes.len(), self.width];
        let features = Tensor::<Flex, 2>::from_data(TensorData::new(self.rows.clone(), shape), &device);
        let base = SavedModel::<Flex>::from_bytes(base, &device).map_err(WebError::Weights)?;
        if base.model.fc7_width() != self.width {
            return Err(WebError::Other(format!(
                "Cannot teach: the photos' features ({} values) come from another network than the \
                 loaded one ({}): go back to the loaded model, or load a weights file, first.",
                self.width,
                base.model.fc7_width()
            )));
        }
        let taught = teach_layer::<Autodiff<Flex>>(features, &self.classes, names.len(), config)
            .map_err(|e| WebError::Other(format!("Cannot teach: {e}.")))?;
        let labels = names.iter().map(|name| Label { name: name.trim().to_string(), wnid: None }).collect();
        let bytes =
            taught_model(base, taught.layer, labels).to_bytes(Precision::F32).map_err(WebError::Weights)?;
        let lesson = Lesson {
            classes: names.len(),
            examples: self.len(),
            loss: taught.last.loss,
            top1: taught.last.top1,
            held_out_top1: taught.held_out_top1,
        };
        Ok((bytes, lesson))
    }
}
