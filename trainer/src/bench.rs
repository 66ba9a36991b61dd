//! Throughput on synthetic input: training steps (forward, backward, SGD update) and inference.

use std::time::Instant;

use alexnet::{AlexNet, AlexNetConfig, Preset};
use anyhow::Result;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub backend: String,
    pub preset: Preset,
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
    preset: Preset,
    width: f64,
    train_batch: usize,
    infer_batch: usize,
    steps: usize,
    device: &B::Device,
    backend: &str,
) -> Result<BenchReport> {
    let steps = steps.max(1);
    let mut model: AlexNet<B> = AlexNetConfig::new(preset).with_width(width).init(device);
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
        .init::<B, AlexNet<B>>();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let x = images::<B>(train_batch, device);
    let y = Tensor::<B, 1, Int>::from_data(
        TensorData::new((0..train_batch as i64).map(|i| i % 1000).collect::<Vec<_>>(), [train_batch]),
        device,
    );
    let mut train_step = |model: AlexNet<B>| {
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        // Reading the loss waits for the device: work queues in order, so steps cannot pile up.
        let _ = loss.into_data();
        optim.step(0.01, model, grads)
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
        backend: backend.to_string(),
        preset,
        train_batch_size: train_batch,
        train_images_per_sec: train_rate,
        infer_batch_size: infer_batch,
        infer_images_per_sec: infer_rate,
    })
}
