//! The browser's classifier: the `alexnet` crate's model and preprocessing, on Burn's WebGPU
//! backend when the browser has an adapter able to hold the model, else on Burn's CPU backend.
//!
//! The page decides the backend (it can ask `navigator.gpu` without risking a panic) and passes
//! it to [`Classifier::load`].

use alexnet::inside::{self, Picture};
use alexnet::preprocess::{self, ImageError};
use alexnet::train::live::LiveError;
use alexnet::weights::{ModelInfo, SavedModel, WeightsError};
use alexnet::Classification;
use alexnet::{AlexNet, Normalization};
use burn::backend::wgpu::{graphics, init_setup_async, RuntimeOptions, WgpuDevice};
use burn::backend::Autodiff;
use burn::backend::{Flex, WebGpu};
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// A loaded model on one backend.
pub enum Engine {
    // Boxed: a model is kilobytes of handles, and the two kinds differ in size.
    Gpu(Box<SavedModel<WebGpu>>, WgpuDevice),
    Cpu(Box<SavedModel<Flex>>),
}

/// Why classifying failed, in words for the page.
#[derive(Debug)]
pub enum WebError {
    Image(ImageError),
    Weights(WeightsError),
    Live(LiveError),
    Other(String),
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebError::Image(e) => write!(f, "This image cannot be classified: {e}."),
            WebError::Weights(e) => write!(f, "The model file is not usable: {e}."),
            WebError::Live(e) => write!(f, "{e}"),
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
            #[cfg(feature = "fast-webgpu")]
            settle(&saved, &device).await?;
            Ok(Engine::Gpu(Box::new(saved), device))
        } else {
            let saved = SavedModel::from_bytes(bytes, &Default::default()).map_err(WebError::Weights)?;
            // One forward pass on a blank image while the page still shows "loading": the first
            // pass grows the wasm memory and is slower than later ones
            // (docs/benchmarks-history.md); the person's first photo should not pay for that.
            answer(&saved, blank_input(), 1, &Default::default()).await?;
            Ok(Engine::Cpu(Box::new(saved)))
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

    /// The top `k` classes for a normalised `[3, 224, 224]` input, whether it shows any, and its
    /// fc7 features.
    pub async fn classify_input(
        &self,
        input: Vec<f32>,
        k: usize,
    ) -> Result<(Classification, Vec<f32>), WebError> {
        match self {
            Engine::Gpu(s, device) => answer(s, input, k, device).await,
            Engine::Cpu(s) => answer(s, input, k, &Default::default()).await,
        }
    }

    /// The CPU's model, which the page's two workers split ([`alexnet::split`]); none on WebGPU.
    pub fn cpu_model(&self) -> Option<&SavedModel<Flex>> {
        match self {
            Engine::Gpu(..) => None,
            Engine::Cpu(s) => Some(s),
        }
    }

    /// The top `k` classes from fc7's features (what the split network's parts give together):
    /// the model in use's last layer. The CPU's only.
    pub fn classify_fc7(&self, fc7: &[f32], k: usize) -> Result<Classification, WebError> {
        let saved =
            self.cpu_model().ok_or_else(|| WebError::Other("the split network runs on the CPU".into()))?;
        let width = saved.model.fc7_width();
        if fc7.len() != width {
            return Err(WebError::Other(format!("fc7 has {width} features, not {}", fc7.len())));
        }
        let features = Tensor::<Flex, 2>::from_data(
            burn::tensor::TensorData::new(fc7.to_vec(), [1, width]),
            &Default::default(),
        );
        let logits = saved
            .model
            .last_layer(features)
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| WebError::Other(format!("{e:?}")))?;
        Ok(Classification::from_logits(&logits, &saved.info, k))
    }

    /// The same backend with other weights (a taught model, or the loaded one back).
    pub async fn reload(&self, bytes: Vec<u8>) -> Result<Self, WebError> {
        match self {
            Engine::Gpu(_, device) => {
                let saved = SavedModel::from_bytes(bytes, device).map_err(WebError::Weights)?;
                Ok(Engine::Gpu(Box::new(saved), device.clone()))
            }
            Engine::Cpu(_) => Engine::load(bytes, false).await,
        }
    }

    /// fc7's features (dropout off) of an image file's bytes: what teaching learns from.
    pub async fn fc7_of_file(&self, bytes: &[u8]) -> Result<Vec<f32>, WebError> {
        let input =
            preprocess::preprocess_bytes(bytes, &self.info().normalization).map_err(WebError::Image)?;
        match self {
            Engine::Gpu(s, device) => fc7(s, input, device).await,
            Engine::Cpu(s) => fc7(s, input, &Default::default()).await,
        }
    }

    /// Decodes an image file's bytes (refusing oversized ones) and classifies it.
    pub async fn classify_file(
        &self,
        bytes: &[u8],
        k: usize,
    ) -> Result<(Classification, Vec<f32>), WebError> {
        let input =
            preprocess::preprocess_bytes(bytes, &self.info().normalization).map_err(WebError::Image)?;
        self.classify_input(input, k).await
    }
}

async fn answer<B: Backend>(
    saved: &SavedModel<B>,
    input: Vec<f32>,
    k: usize,
    device: &B::Device,
) -> Result<(Classification, Vec<f32>), WebError> {
    let fc7 = saved.model.fc7_features(preprocess::batch(&[input], device));
    let logits = read(saved.model.last_layer(fc7.clone())).await?;
    Ok((Classification::from_logits(&logits, &saved.info, k), read(fc7).await?))
}

/// An all-zero `[3, 224, 224]` input: the passes at load, before the person's first photo.
fn blank_input() -> Vec<f32> {
    vec![0.0; 3 * alexnet::INPUT_SIZE * alexnet::INPUT_SIZE]
}

/// With Burn's autotune (the `fast-webgpu` build), on wasm a kernel whose candidates are still
/// being measured can return wrong values (docs/benchmarks-history.md): passes on a blank image
/// run until two in a row agree, so that the page's first photo (and its check image) meets tuned
/// kernels. Other batch sizes (teaching, live training) are tuned when first used.
#[cfg(feature = "fast-webgpu")]
async fn settle(saved: &SavedModel<WebGpu>, device: &WgpuDevice) -> Result<(), WebError> {
    const PASSES: usize = 6;
    let blank = blank_input();
    let mut last: Option<Vec<f32>> = None;
    for _ in 0..PASSES {
        let logits =
            read(saved.model.forward(preprocess::batch(std::slice::from_ref(&blank), device))).await?;
        let agrees = |before: &Vec<f32>| {
            before.iter().zip(&logits).all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + a.abs()))
        };
        if last.as_ref().is_some_and(agrees) {
            return Ok(());
        }
        last = Some(logits);
    }
    Err(WebError::Other(format!("WebGPU's answers on a blank image still differed after {PASSES} passes")))
}

/// A tensor's values. WebGPU reads back asynchronously; the browser's thread must not block.
async fn read<B: Backend>(tensor: Tensor<B, 2>) -> Result<Vec<f32>, WebError> {
    alexnet::train::readback::read_f32(tensor).await.map_err(WebError::Other)
}

async fn fc7<B: Backend>(
    saved: &SavedModel<B>,
    input: Vec<f32>,
    device: &B::Device,
) -> Result<Vec<f32>, WebError> {
    read(saved.model.fc7_features(preprocess::batch(&[input], device))).await
}

/// What the network sees, drawn from a CPU copy of the model with autodiff (the classifier itself
/// may be on WebGPU): conv1's filters, the feature maps, and the pixels that drove a class.
pub struct Inside {
    model: AlexNet<Autodiff<Flex>>,
    norm: Normalization,
    classes: usize,
}

impl Inside {
    pub fn new(weights: Vec<u8>) -> Result<Self, WebError> {
        let saved = SavedModel::<Autodiff<Flex>>::from_bytes(weights, &Default::default())
            .map_err(WebError::Weights)?;
        let classes = saved.info.labels.len();
        Ok(Self { model: saved.model.without_dropout(), norm: saved.info.normalization, classes })
    }

    pub fn filters(&self) -> Picture {
        inside::filters(&self.model)
    }

    /// For one image: the network's view with the pixels that drove `class` in red, then the
    /// first 16 feature maps of conv1 to conv5.
    pub fn explain(&self, bytes: &[u8], class: usize) -> Result<Vec<(String, Picture)>, WebError> {
        let input = preprocess::preprocess_bytes(bytes, &self.norm).map_err(WebError::Image)?;
        if class >= self.classes {
            return Err(WebError::Other(format!("class {class} is not one of the model's {}", self.classes)));
        }
        let images = preprocess::batch::<Autodiff<Flex>>(std::slice::from_ref(&input), &Default::default());
        let heat = inside::saliency(&self.model, images.clone(), class);
        let mut pictures =
            vec![("pixels that drove the top class".to_string(), inside::overlay(&input, &self.norm, heat))];
        for (name, maps) in self.model.clone().valid().conv_outputs(images.inner()) {
            pictures.push((name.to_string(), inside::feature_maps(maps, 16)));
        }
        Ok(pictures)
    }
}

pub mod live;
pub mod teach;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod parts;
