//! The browser's classifier: the `alexnet` crate's model and preprocessing, on Burn's WebGPU
//! backend when the browser has an adapter able to hold the model, else on Burn's CPU backend.
//!
//! The page decides the backend (it can ask `navigator.gpu` without risking a panic) and passes
//! it to [`Classifier::load`].

use alexnet::labels::{top_k, Prediction};
use alexnet::preprocess::{self, ImageError};
use alexnet::weights::{ModelInfo, SavedModel, WeightsError};
use burn::backend::wgpu::{graphics, init_setup_async, RuntimeOptions, WgpuDevice};
use burn::backend::{Flex, WebGpu};
use burn::tensor::backend::Backend;

/// A loaded model on one backend.
pub enum Engine {
    Gpu(SavedModel<WebGpu>, WgpuDevice),
    Cpu(SavedModel<Flex>),
}

/// Why classifying failed, in words for the page.
#[derive(Debug)]
pub enum WebError {
    Image(ImageError),
    Weights(WeightsError),
    Other(String),
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebError::Image(e) => write!(f, "This image cannot be classified: {e}."),
            WebError::Weights(e) => write!(f, "The model file is not usable: {e}."),
            WebError::Other(e) => f.write_str(e),
        }
    }
}

impl Engine {
    /// Loads weights on WebGPU (`gpu = true`) or the CPU.
    pub async fn load(bytes: Vec<u8>, gpu: bool) -> Result<Self, WebError> {
        if gpu {
            let device = WgpuDevice::default();
            // Requests the adapter's own limits: fc6's f32 weight (151 MB) is over WebGPU's
            // default 128 MiB storage binding.
            init_setup_async::<graphics::WebGpu>(&device, RuntimeOptions::default()).await;
            let saved = SavedModel::from_bytes(bytes, &device).map_err(WebError::Weights)?;
            Ok(Engine::Gpu(saved, device))
        } else {
            let saved = SavedModel::from_bytes(bytes, &Default::default()).map_err(WebError::Weights)?;
            Ok(Engine::Cpu(saved))
        }
    }

    pub fn info(&self) -> &ModelInfo {
        match self {
            Engine::Gpu(s, _) => &s.info,
            Engine::Cpu(s) => &s.info,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Engine::Gpu(..) => "WebGPU",
            Engine::Cpu(_) => "CPU",
        }
    }

    /// The top `k` classes for a normalised `[3, 224, 224]` input.
    pub async fn classify_input(&self, input: Vec<f32>, k: usize) -> Result<Vec<Prediction>, WebError> {
        match self {
            Engine::Gpu(s, device) => rank(s, input, k, device).await,
            Engine::Cpu(s) => rank(s, input, k, &Default::default()).await,
        }
    }

    /// Decodes an image file's bytes (refusing oversized ones) and classifies it.
    pub async fn classify_file(&self, bytes: &[u8], k: usize) -> Result<Vec<Prediction>, WebError> {
        let input = preprocess::preprocess_bytes(bytes, &self.info().normalization).map_err(WebError::Image)?;
        self.classify_input(input, k).await
    }
}

async fn rank<B: Backend>(
    saved: &SavedModel<B>,
    input: Vec<f32>,
    k: usize,
    device: &B::Device,
) -> Result<Vec<Prediction>, WebError> {
    let probs = saved.model.probabilities(preprocess::batch(&[input], device));
    // WebGPU reads back asynchronously; the browser's thread must not block.
    let data = probs.into_data_async().await.map_err(|e| WebError::Other(format!("{e:?}")))?;
    let probs = data.to_vec::<f32>().map_err(|e| WebError::Other(format!("{e:?}")))?;
    Ok(top_k(&probs, &saved.info.labels, k))
}

#[cfg(target_arch = "wasm32")]
mod bindings;
