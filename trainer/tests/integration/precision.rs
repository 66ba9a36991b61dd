//! `--precision bf16` on the CPU: the same steps as f32 within bf16's rounding, master weights kept
//! in f32.

use crate::common::photos;
use alexnet::preprocess;
use alexnet::train::{sgd, Compute, Meter, Stepper};
use alexnet::{AlexNet, AlexNetConfig, Initialization};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::DType;
use burn_store::ModuleSnapshot;
use trainer::data::Batch;

type B = Autodiff<Flex>;

/// fc8's weight, as f32 values.
fn fc8(model: &AlexNet<B>) -> Vec<f32> {
    let params = model.collect(None, None, false);
    let fc8 = params.iter().find(|p| p.full_path() == "fc8.weight").expect("fc8.weight");
    fc8.to_data().unwrap().convert::<f32>().to_vec().unwrap()
}

/// Losses of three steps, fc8's weight before them, and the model after them.
fn three_steps(precision: Compute) -> (Vec<f64>, Vec<f32>, AlexNet<B>) {
    let device = Default::default();
    B::seed(&device, 11);
    let config =
        AlexNetConfig::paper(10).with_width(0.25).with_dropout(0.0).with_initialization(Initialization::He);
    let mut model: AlexNet<B> = config.init(&device);
    let before = fc8(&model);
    let mut batch = Batch { inputs: Vec::new(), labels: Vec::new() };
    for (i, photo) in photos().iter().enumerate() {
        let bytes = std::fs::read(photo).unwrap();
        batch.inputs.extend(preprocess::preprocess_bytes(&bytes, &Default::default()).unwrap());
        batch.labels.push(i);
    }
    let mut stepper = Stepper::new(sgd::<B>(0.9, 5e-4), precision, &device);
    let mut losses = Vec::new();
    for _ in 0..3 {
        let mut meter = Meter::default();
        let (images, targets) = stepper.batch(batch.inputs.clone(), &batch.labels);
        model = stepper.step(model, images, targets, 0.01, &mut meter);
        losses.push(meter.read().loss);
    }
    (losses, before, model)
}

#[test]
fn bf16_steps_follow_f32_and_keep_f32_weights() {
    let (f32_losses, before, f32_model) = three_steps(Compute::F32);
    let (bf16_losses, bf16_before, bf16_model) = three_steps(Compute::Bf16);
    assert_eq!(before, bf16_before, "both runs start from the same weights");
    println!("losses: f32 {f32_losses:?}, bf16 {bf16_losses:?}");
    // bf16 keeps 8 bits of mantissa: about 0.4 % per rounding.
    for (a, b) in f32_losses.iter().zip(&bf16_losses) {
        assert!((a - b).abs() <= 0.03 * a, "{a} vs {b}");
    }
    assert!(bf16_losses[2] < bf16_losses[0], "bf16 steps do not learn: {bf16_losses:?}");
    for p in bf16_model.collect(None, None, false) {
        assert_eq!(p.to_data().unwrap().dtype, DType::F32, "{} is not kept in f32", p.full_path());
    }
    // The gradients reached the f32 weights through the casts: fc8 moved as in f32.
    let moved = |after: &[f32]| after.iter().zip(&before).map(|(a, b)| (a - b) as f64).collect::<Vec<_>>();
    let (x, y) = (moved(&fc8(&f32_model)), moved(&fc8(&bf16_model)));
    let dot: f64 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let cosine = dot / (norm(&x) * norm(&y));
    assert!(norm(&y) > 0.0 && cosine > 0.95, "fc8's update: cosine {cosine} with f32's");
}
