//! Throughput on synthetic input: training steps (forward, backward, SGD update) and inference.

use std::time::Instant;

use alexnet::train::{sgd, Compute, Meter, Stepper};
use alexnet::{AlexNet, AlexNetConfig, Normalization, Preset};
use anyhow::{bail, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use serde::Serialize;

use crate::backend::BackendInUse;
use crate::data::{ImageFolder, Loader, Transform};

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub backend: String,
    /// The CPU's matrix kernels (`"AVX2+FMA"`, `"AVX-512"`, or Zen 4's mix), on the CPU backend.
    pub cpu_kernels: Option<&'static str>,
    pub preset: Preset,
    pub width: f64,
    pub precision: Compute,
    pub train_batch_size: usize,
    pub train_images_per_sec: f64,
    pub infer_batch_size: usize,
    pub infer_images_per_sec: f64,
}

fn images<B: Backend>(batch: usize, device: &B::Device) -> Tensor<B, 4> {
    Tensor::random([batch, 3, 224, 224], Distribution::Normal(0.0, 1.0), device)
}

/// Times `steps` training steps and `steps` inference batches after one warm-up each.
pub fn bench<B: AutodiffBackend>(
    config: AlexNetConfig,
    train_batch: usize,
    infer_batch: usize,
    steps: usize,
    precision: Compute,
    device: &B::Device,
    backend: BackendInUse,
) -> Result<BenchReport> {
    if train_batch == 0 || infer_batch == 0 || steps == 0 {
        bail!("--batch-size, --infer-batch-size and --steps must be at least 1");
    }
    config.validate().map_err(anyhow::Error::msg)?;
    let mut model: AlexNet<B> = config.init(device);
    backend.check_fits(&model)?;
    let mut stepper = Stepper::new(sgd::<B>(0.9, 5e-4), precision, device);
    let x = images::<B>(train_batch, device);
    let classes = config.num_classes as i64;
    let y = Tensor::<B, 1, Int>::from_data(
        TensorData::new((0..train_batch as i64).map(|i| i % classes).collect::<Vec<_>>(), [train_batch]),
        device,
    );
    let mut train_step = |model: AlexNet<B>| -> AlexNet<B> {
        let mut meter = Meter::default();
        let model = stepper.step(model, x.clone(), y.clone(), 0.01, &mut meter);
        // Reading the loss waits for the device: work queues in order, so steps cannot pile up.
        meter.read();
        model
    };
    model = train_step(model);
    let start = Instant::now();
    for _ in 0..steps {
        model = train_step(model);
    }
    let train_rate = (steps * train_batch) as f64 / start.elapsed().as_secs_f64();

    let model = model.valid();
    let x = images::<B::InnerBackend>(infer_batch, device);
    let _ = model.forward(x.clone()).into_data();
    let start = Instant::now();
    for _ in 0..steps {
        let _ = model.forward(x.clone()).into_data();
    }
    let infer_rate = (steps * infer_batch) as f64 / start.elapsed().as_secs_f64();
    Ok(BenchReport {
        backend: backend.kind.to_string(),
        cpu_kernels: alexnet::cpu::runs_cpu_layers::<B>().then(|| alexnet::cpu::chosen_kernels().name()),
        preset: config.preset,
        width: config.width,
        precision,
        train_batch_size: train_batch,
        train_images_per_sec: train_rate,
        infer_batch_size: infer_batch,
        infer_images_per_sec: infer_rate,
    })
}

/// Input-pipeline throughput: the training transform (decode, resize, crop, flip, lighting,
/// normalise) on real images, first decoding them, then from the in-memory cache.
#[derive(Debug, Serialize)]
pub struct DataBenchReport {
    pub images: usize,
    pub workers: usize,
    pub decode_images_per_sec: f64,
    pub cached_images_per_sec: f64,
}

/// Runs `images` of `folder` (evenly spread over it) through a training loader twice: decoding,
/// then cached.
pub fn bench_data(folder: ImageFolder, images: usize, workers: usize) -> Result<DataBenchReport> {
    let every = (folder.len() / images.max(1)).max(1);
    let samples = folder.samples.iter().step_by(every).take(images).cloned().collect();
    let folder = ImageFolder { samples, ..folder };
    let n = folder.len();
    let transform = Transform::Train { seed: 0, epoch: 1, min_crop_area: None };
    let loader = Loader::new(folder, workers, Normalization::IMAGENET)?.cached(transform, None)?;
    let rate = || {
        let start = Instant::now();
        let seen: usize = loader.batches((0..n).collect(), 64, transform).iter().map(|b| b.len()).sum();
        seen as f64 / start.elapsed().as_secs_f64()
    };
    let decode_images_per_sec = rate();
    let cached_images_per_sec = rate();
    Ok(DataBenchReport { images: n, workers, decode_images_per_sec, cached_images_per_sec })
}
