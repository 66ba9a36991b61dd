//! Every Burn CPU backend that builds offline here, on torchvision's AlexNet (61 M parameters):
//! training steps (forward, backward, SGD with momentum) at batch 32 and inference at batch 16
//! and 1, images per second, one warm-up each. Flex and NdArray always; NdArray with OpenBLAS,
//! Candle and LibTorch behind features:
//!
//!     cargo run --release --features openblas,candle -- [flex] [ndarray] [candle] [tch]
//!     PATH=/venv-with-torch-2.9.0/bin:$PATH LIBTORCH_USE_PYTORCH=1 cargo build --release --features tch
//!     LD_LIBRARY_PATH=/venv-with-torch-2.9.0/lib/python3.11/site-packages/torch/lib target/release/cpu-backends tch
//!
//! `INIT=he` draws He-initialised weights instead of the paper's (the speed is the same).

use std::time::Instant;

use alexnet::{AlexNet, AlexNetConfig};
use burn::backend::{Autodiff, Flex, NdArray};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};

const STEPS: usize = 3;

/// torchvision's AlexNet; `INIT=he` for He initialisation instead of the paper's N(0, 0.01).
fn config() -> AlexNetConfig {
    let config = AlexNetConfig::torchvision(1000);
    match std::env::var("INIT").as_deref() {
        Ok("he") => config.with_initialization(alexnet::Initialization::He),
        _ => config,
    }
}

fn train_rate<B: AutodiffBackend>(batch: usize, device: &B::Device) -> f64 {
    let mut model: AlexNet<B> = config().init(device);
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0)))
        .init::<B, AlexNet<B>>();
    let loss = CrossEntropyLossConfig::new().init(device);
    let x = Tensor::<B, 4>::random([batch, 3, 224, 224], Distribution::Normal(0.0, 1.0), device);
    let targets: Vec<i64> = (0..batch as i64).collect();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(targets, [batch]), device);
    let mut step = |model: AlexNet<B>| {
        let l = loss.forward(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(l.backward(), &model);
        let model = optim.step(0.01, model, grads);
        let _ = l.into_data(); // waits for the step
        model
    };
    model = step(model);
    let start = Instant::now();
    for _ in 0..STEPS {
        model = step(model);
    }
    (STEPS * batch) as f64 / start.elapsed().as_secs_f64()
}

fn infer_rate<B: Backend>(batch: usize, device: &B::Device) -> f64 {
    let model: AlexNet<B> = config().init(device);
    let x = Tensor::<B, 4>::random([batch, 3, 224, 224], Distribution::Normal(0.0, 1.0), device);
    let _ = model.forward(x.clone()).into_data();
    let runs = if batch == 1 { 10 } else { STEPS };
    let start = Instant::now();
    for _ in 0..runs {
        let _ = model.forward(x.clone()).into_data();
    }
    (runs * batch) as f64 / start.elapsed().as_secs_f64()
}

/// One table row; `train`: whether to time training too.
fn row<B: AutodiffBackend>(name: &str, device: B::Device, train: bool) {
    let train = if train { format!("{:.1}", train_rate::<B>(32, &device)) } else { "-".into() };
    let infer16 = infer_rate::<B::InnerBackend>(16, &device);
    let infer1 = infer_rate::<B::InnerBackend>(1, &device);
    println!("| {name} | {train} | {infer16:.1} | {infer1:.1} |");
}

/// The backends named on the command line (all by default): flex, ndarray, candle, tch.
fn main() {
    let named: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| named.is_empty() || named.iter().any(|n| n == name);
    println!("| backend | training b32 | inference b16 | inference b1 |");
    println!("| --- | ---: | ---: | ---: |");
    if wanted("flex") {
        row::<Autodiff<Flex>>("Flex (ours today)", Default::default(), true);
    }
    if wanted("ndarray") {
        let name = if cfg!(feature = "openblas") { "NdArray + OpenBLAS" } else { "NdArray" };
        row::<Autodiff<NdArray>>(name, Default::default(), true);
    }
    // Deprecated in Burn 0.21, tried all the same: it lacks ops AlexNet needs (the panic says which).
    #[cfg(feature = "candle")]
    #[allow(deprecated)]
    if wanted("candle") {
        let tried = std::panic::catch_unwind(|| {
            row::<Autodiff<burn::backend::Candle>>("Candle (CPU)", Default::default(), false)
        });
        if tried.is_err() {
            println!("| Candle (CPU) | cannot run it | | |");
        }
    }
    #[cfg(feature = "tch")]
    if wanted("tch") {
        row::<Autodiff<burn::backend::LibTorch>>(
            "LibTorch (tch)",
            burn::backend::libtorch::LibTorchDevice::Cpu,
            true,
        );
    }
}
