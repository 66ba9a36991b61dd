//! The GPU code path, on whatever wgpu adapter the machine has: in CI, Mesa's lavapipe (a Vulkan
//! GPU emulated on the CPU; `scripts/setup-test.sh` installs it). The same CubeCL kernels run on
//! WebGPU in the page and, through another compiler, on CUDA. Built with Burn's autotune and
//! fusion, as every GPU build is. When no adapter starts, these tests fail with the reason:
//! they never skip.
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{imagenette, max_relative_difference, photos};
use alexnet::labels;
use alexnet::preprocess;
use alexnet::train::{sgd, Compute, Meter, Stepper};
use alexnet::weights::{ModelInfo, Precision, SavedModel};
use alexnet::{AlexNet, AlexNetConfig, Initialization};
use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Autodiff, Flex, Wgpu};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use burn_store::ModuleSnapshot;
use trainer::backend::{BackendInUse, BackendKind};
use trainer::data::Batch;
use trainer::gpu;

/// Logits: max |wgpu - CPU| over the largest |logit| (the parity tests' tolerance).
const LOGIT_TOLERANCE: f32 = 1e-4;
/// Training: after 3 SGD steps, max |wgpu - CPU| of each parameter tensor over its largest |value|,
/// and the relative difference of each step's loss. Float sums in another order, amplified by
/// three steps of training; measured below 1e-5 on lavapipe.
const TRAINING_TOLERANCE: f32 = 1e-4;

/// The wgpu device, started once per test process (autotune at its `minimal` level: a software
/// GPU times each candidate kernel slowly).
fn gpu_device() -> (WgpuDevice, BackendInUse) {
    static STARTED: OnceLock<(WgpuDevice, BackendInUse)> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            if std::env::var_os("CUBECL_AUTOTUNE_LEVEL").is_none() {
                std::env::set_var("CUBECL_AUTOTUNE_LEVEL", "minimal");
            }
            gpu::configure();
            let started = gpu::start_wgpu().unwrap_or_else(|reason| {
                panic!("wgpu did not start: {reason} (on Linux, install mesa-vulkan-drivers)")
            });
            eprintln!("wgpu adapter: {}", started.adapter);
            let limit = gpu::max_tensor_bytes::<burn::backend::wgpu::WgpuRuntime>(&started.device);
            (started.device, BackendInUse { kind: BackendKind::Wgpu, max_tensor_bytes: Some(limit) })
        })
        .clone()
}

/// The same seeded weights on the CPU and on the GPU.
fn on_both<B: Backend>(config: AlexNetConfig, device: &B::Device) -> (SavedModel<Flex>, SavedModel<B>) {
    Flex::seed(&Default::default(), 7);
    let model = config.init::<Flex>(&Default::default());
    let names = labels::imagenet()[..config.num_classes].to_vec();
    let saved = SavedModel { model, info: ModelInfo::new(config, names) };
    let bytes = saved.to_bytes(Precision::F32).unwrap();
    (saved, SavedModel::from_bytes(bytes, device).unwrap())
}

fn logits<B: Backend>(model: &AlexNet<B>, inputs: &[Vec<f32>], device: &B::Device) -> Vec<f32> {
    model.forward(preprocess::batch(inputs, device)).into_data().to_vec().unwrap()
}

/// Our CPU layers (src/cpu) run on Flex only: here Burn's own layers run.
#[test]
fn the_gpu_runs_burns_layers() {
    assert!(!alexnet::cpu::runs_cpu_layers::<Wgpu>());
    assert!(!alexnet::cpu::runs_cpu_layers::<Autodiff<Wgpu>>());
}

#[test]
fn inference_matches_the_cpu_on_real_photos() {
    let (device, _) = gpu_device();
    // Half width: full-width fc6 (151 MB) is over lavapipe's 128 MiB binding (see below).
    let config = AlexNetConfig::torchvision(1000).with_width(0.5).with_initialization(Initialization::He);
    let (cpu, gpu) = on_both::<Wgpu>(config, &device);
    let inputs: Vec<Vec<f32>> = photos()
        .iter()
        .map(|p| preprocess::preprocess_bytes(&std::fs::read(p).unwrap(), &cpu.info.normalization).unwrap())
        .collect();
    assert_eq!(inputs.len(), 5);
    let expected = logits(&cpu.model, &inputs, &Default::default());
    let actual = logits(&gpu.model, &inputs, &device);
    let difference = max_relative_difference(&expected, &actual);
    println!("wgpu vs CPU logits: max difference {difference:.2e} of the largest");
    assert!(difference <= LOGIT_TOLERANCE, "{difference:.2e} > {LOGIT_TOLERANCE:.0e}");
}

/// The network both training tests run: the trainer test's `train` options below describe the
/// same one (paper preset, width 1/8, 2 classes, batch 4, no dropout), so the trainer starts with
/// the kernels the in-process steps tuned, as a user's second run would. Autotuning on a software
/// GPU takes most of these tests' time.
fn training_config() -> AlexNetConfig {
    AlexNetConfig::paper(2).with_width(0.125).with_dropout(0.0).with_initialization(Initialization::He)
}
const TRAINING_BATCH: usize = 4;

/// Three steps of the trainer's own SGD step on one batch of real photos.
fn three_steps<B: AutodiffBackend>(
    model: AlexNet<B>,
    batch: &Batch,
    device: &B::Device,
) -> (Vec<f32>, AlexNet<B::InnerBackend>) {
    let mut stepper = Stepper::new(sgd::<B>(0.9, 5e-4), Compute::F32, device);
    let mut model = model;
    let mut losses = Vec::new();
    for _ in 0..3 {
        let mut meter = Meter::default();
        let (images, targets) = stepper.batch(batch.inputs.clone(), &batch.labels);
        model = stepper.step(model, images, targets, 0.01, &mut meter);
        losses.push(meter.read().loss as f32);
    }
    (losses, model.valid())
}

/// The same three steps on the CPU and on wgpu, from the same weights.
struct Steps {
    cpu_losses: Vec<f32>,
    gpu_losses: Vec<f32>,
    /// Each parameter after the steps: name, CPU values, wgpu values.
    params: Vec<(String, Vec<f32>, Vec<f32>)>,
}

/// Run once per process: the trainer test waits for it.
fn steps_on_both() -> &'static Steps {
    static STEPS: OnceLock<Steps> = OnceLock::new();
    STEPS.get_or_init(|| {
        let (device, _) = gpu_device();
        let (cpu, gpu) = on_both::<Autodiff<Wgpu>>(training_config(), &device);
        let cpu_model: AlexNet<Autodiff<Flex>> =
            SavedModel::from_bytes(cpu.to_bytes(Precision::F32).unwrap(), &Default::default()).unwrap().model;
        let norm = cpu.info.normalization;
        let mut batch = Batch { inputs: Vec::new(), labels: Vec::new() };
        for (i, photo) in photos().iter().take(TRAINING_BATCH).enumerate() {
            batch.inputs.extend(preprocess::preprocess_bytes(&std::fs::read(photo).unwrap(), &norm).unwrap());
            batch.labels.push(i % 2);
        }
        let (cpu_losses, cpu_after) = three_steps(cpu_model, &batch, &Default::default());
        let (gpu_losses, gpu_after) = three_steps(gpu.model, &batch, &device);
        let values = |p: &burn_store::TensorSnapshot| p.to_data().unwrap().to_vec::<f32>().unwrap();
        let params = cpu_after
            .collect(None, None, false)
            .iter()
            .zip(&gpu_after.collect(None, None, false))
            .map(|(a, b)| {
                assert_eq!(a.full_path(), b.full_path());
                (a.full_path(), values(a), values(b))
            })
            .collect();
        Steps { cpu_losses, gpu_losses, params }
    })
}

#[test]
fn training_steps_match_the_cpu() {
    let Steps { cpu_losses, gpu_losses, params } = steps_on_both();
    println!("losses: CPU {cpu_losses:?}, wgpu {gpu_losses:?}");
    assert!(cpu_losses[2] < cpu_losses[0], "the steps do not learn: {cpu_losses:?}");
    assert!(max_relative_difference(cpu_losses, gpu_losses) <= TRAINING_TOLERANCE);
    assert_eq!(params.len(), 16, "conv1-5 and fc6-8, weights and biases");
    for (name, cpu, gpu) in params {
        let difference = max_relative_difference(cpu, gpu);
        assert!(difference <= TRAINING_TOLERANCE, "{name}: {difference:.2e}");
    }
}

#[test]
fn a_model_over_the_binding_limit_is_refused_before_it_runs() {
    let (device, chosen) = gpu_device();
    let full = AlexNetConfig::torchvision(1000).init::<Wgpu>(&device);
    let limit = chosen.max_tensor_bytes.unwrap();
    if limit >= 151_000_000 {
        return println!("this adapter binds {limit} bytes: full-width fc6 fits");
    }
    let err = chosen.check_fits(&full).unwrap_err().to_string();
    assert!(err.contains("fc6.weight (151.0 MB as f32)") && err.contains("--backend cpu"), "{err}");

    // Through the CLI: exit status 1, the reason, and no top-5 printed.
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("full.safetensors");
    let config = AlexNetConfig::torchvision(1000);
    let saved = SavedModel {
        model: config.init::<Flex>(&Default::default()),
        info: ModelInfo::new(config, labels::imagenet()),
    };
    saved.save(&weights, Precision::F16).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["--backend", "wgpu", "predict", "--weights"])
        .arg(&weights)
        .arg(&photos()[0])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fc6.weight") && !stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "printed a result: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn the_trainer_trains_and_resumes_on_wgpu() {
    steps_on_both();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let data = imagenette();
    let train = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_trainer"))
            .env("CUBECL_AUTOTUNE_LEVEL", "minimal")
            .args(["--backend", "wgpu", "train", "--no-tui", "--preset", "paper", "--width", "0.125"])
            .args([
                "--init",
                "he",
                "--dropout",
                "0",
                "--lr",
                "0.001",
                "--batch-size",
                "4",
                "--max-classes",
                "2",
            ])
            .args(["--train-per-class", "6", "--val-per-class", "2", "--seed", "3", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.contains("wgpu adapter:") && stderr.contains("on wgpu"), "{stderr}");
        stderr
    };
    train(&["--epochs", "1"]);
    let stderr = train(&["--epochs", "2", "--resume"]);
    assert!(stderr.contains("resuming after epoch 1"), "{stderr}");

    let history = trainer::metrics::read(&out.join("metrics.json")).unwrap();
    assert_eq!(history.iter().map(|m| m.epoch).collect::<Vec<_>>(), [1, 2]);
    for m in &history {
        assert!(m.train_loss.is_finite() && m.val_loss.is_finite(), "{m:?}");
        assert!((0.0..=1.0).contains(&m.val_top1), "{m:?}");
    }
    let saved = SavedModel::<Flex>::load(&out.join("model.safetensors"), &Default::default()).unwrap();
    assert_eq!(saved.info.config.num_classes, 2);
    assert_eq!(saved.info.provenance["backend"], "wgpu");
    let probs: Vec<f32> = saved
        .model
        .probabilities(Tensor::zeros([1, 3, 224, 224], &Default::default()))
        .into_data()
        .to_vec()
        .unwrap();
    assert!(probs.iter().all(|p| p.is_finite()) && (probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
}
