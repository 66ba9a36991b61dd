//! AlexNet, end to end, in Burn: the model, its preprocessing, its labels, its weights format and
//! its training step, shared by the native `trainer` and the browser crate.

pub mod classify;
pub mod cpu;
pub mod inside;
pub mod labels;
pub mod model;
pub mod neighbours;
pub mod out_of_classes;
pub mod preprocess;
pub mod split;
pub mod train;
pub mod weights;

#[cfg(not(target_arch = "wasm32"))]
pub mod import;

pub use classify::Classification;
pub use labels::{Label, Prediction};
pub use model::{AlexNet, AlexNetConfig, Initialization, Preset, INPUT_SIZE};
pub use preprocess::{ImageError, Normalization};
pub use weights::{ModelInfo, Precision, SavedModel, WeightsError};
