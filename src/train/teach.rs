//! Teaching a trained AlexNet new classes, as DeCAF (fc7 features of an ImageNet AlexNet serve
//! other tasks) and Teachable Machine (a small head on a frozen network) do: the fc7 features of a
//! few photos of each class, then a new last layer for those classes trained on them with the
//! same step as the whole network. The layer starts from each class's mean direction, so it
//! answers (by the nearest mean) before the first step. The trainer's `teach` and the page share
//! this code.

use burn::module::{AutodiffModule, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::meter::{Means, Meter};
use super::precision::Compute;
use super::sgd::sgd_for;
use super::step::Stepper;
use crate::labels::Label;
use crate::weights::SavedModel;

/// How a new last layer is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeachConfig {
    /// Passes over the examples.
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Seeds the order of the examples in each pass.
    pub seed: u64,
}

impl Default for TeachConfig {
    fn default() -> Self {
        Self { epochs: 30, batch_size: 32, lr: 0.01, momentum: 0.9, weight_decay: 5e-4, seed: 0 }
    }
}

/// The first layer's scores: its cosine with each class's mean, times this (confident enough to
/// be useful before any step, far from saturating the softmax).
pub const MEAN_LAYER_SCALE: f32 = 10.0;

/// Below this many examples in some class, no share is held out to score the taught layer.
pub const HELD_OUT_FROM: usize = 5;

/// A taught last layer.
pub struct Taught<B: Backend> {
    pub layer: Linear<B>,
    /// The last pass's loss and accuracy on the examples.
    pub last: Means,
    /// Top-1 on every fifth example of each class, of a layer taught on the others; `None` when
    /// some class has fewer than [`HELD_OUT_FROM`] examples.
    pub held_out_top1: Option<f64>,
}

/// A new last layer for `classes` classes from their examples' features (`[examples, inputs]`,
/// `labels[i]` the class of row `i`): the class means' layer, then `config`'s passes of the
/// library's step. First, where every class has enough examples, the same on four fifths of them,
/// scored on the fifth held out.
pub fn teach_layer<B: AutodiffBackend>(
    features: Tensor<B::InnerBackend, 2>,
    labels: &[usize],
    classes: usize,
    config: &TeachConfig,
) -> Result<Taught<B::InnerBackend>, TeachError> {
    let rows = features.dims()[0];
    if rows != labels.len() {
        return Err(TeachError::Mismatch { features: rows, labels: labels.len() });
    }
    if let Some(&label) = labels.iter().find(|&&label| label >= classes) {
        return Err(TeachError::UnknownClass { label, classes });
    }
    let held_out_top1 = match held_out_split(labels, classes) {
        Some((fit, held)) => {
            let rows = |rows: &[usize]| select_rows(&features, rows);
            let pick = |rows: &[usize]| rows.iter().map(|&i| labels[i]).collect::<Vec<_>>();
            let (layer, _) = fit_layer::<B>(rows(&fit), &pick(&fit), classes, config)?;
            Some(top1(&layer, rows(&held), &pick(&held)))
        }
        None => None,
    };
    let (layer, last) = fit_layer::<B>(features, labels, classes, config)?;
    Ok(Taught { layer, last, held_out_top1 })
}

fn fit_layer<B: AutodiffBackend>(
    features: Tensor<B::InnerBackend, 2>,
    labels: &[usize],
    classes: usize,
    config: &TeachConfig,
) -> Result<(Linear<B::InnerBackend>, Means), TeachError> {
    let first =
        layer_from_means(&Tensor::<B, 2>::from_inner(features.clone()), labels, classes, MEAN_LAYER_SCALE);
    train_layer::<B>(first, features, labels, config)
}

/// Every fifth example of each class held out (by its place among its class's examples), when
/// every class has at least [`HELD_OUT_FROM`]: (the rest, the held out).
pub fn held_out_split(labels: &[usize], classes: usize) -> Option<(Vec<usize>, Vec<usize>)> {
    let mut seen = vec![0usize; classes];
    let (mut fit, mut held) = (Vec::new(), Vec::new());
    for (row, &class) in labels.iter().enumerate() {
        seen[class] += 1;
        if seen[class].is_multiple_of(5) {
            held.push(row)
        } else {
            fit.push(row)
        }
    }
    seen.iter().all(|&n| n >= HELD_OUT_FROM).then_some((fit, held))
}

fn select_rows<B: Backend>(features: &Tensor<B, 2>, rows: &[usize]) -> Tensor<B, 2> {
    let index: Vec<i64> = rows.iter().map(|&i| i as i64).collect();
    let device = features.device();
    features.clone().select(0, Tensor::from_data(TensorData::new(index, [rows.len()]), &device))
}

/// The share of rows whose highest score is their label.
fn top1<B: Backend>(layer: &Linear<B>, features: Tensor<B, 2>, labels: &[usize]) -> f64 {
    let predicted: Vec<i64> = layer.forward(features).argmax(1).into_data().iter::<i64>().collect();
    let hits = predicted.iter().zip(labels).filter(|(p, &l)| **p as usize == l).count();
    hits as f64 / labels.len().max(1) as f64
}

/// Why a set of examples cannot be taught.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TeachError {
    #[error("teaching needs at least two classes (got {0})")]
    TooFewClasses(usize),
    #[error("class {0:?} has no example photos")]
    EmptyClass(String),
    #[error("a class needs a name (class {0} has none)")]
    UnnamedClass(usize),
    #[error("two classes are named {0:?}")]
    DuplicateName(String),
    #[error("an example of class {label}, but there are {classes} classes")]
    UnknownClass { label: usize, classes: usize },
    #[error("{features} feature rows for {labels} labels")]
    Mismatch { features: usize, labels: usize },
}

/// Checks the classes' names and that each has examples (`labels[i]` is the class of row `i`).
pub fn check_examples(names: &[String], labels: &[usize]) -> Result<(), TeachError> {
    if names.len() < 2 {
        return Err(TeachError::TooFewClasses(names.len()));
    }
    for (class, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(TeachError::UnnamedClass(class));
        }
        if names[..class].iter().any(|other| other.trim() == name.trim()) {
            return Err(TeachError::DuplicateName(name.trim().to_string()));
        }
        if !labels.contains(&class) {
            return Err(TeachError::EmptyClass(name.clone()));
        }
    }
    Ok(())
}

/// A last layer whose scores are each feature row's cosine with each class's mean direction,
/// times `scale` (at the rows' mean length): the nearest class mean wins. `features`:
/// `[examples, inputs]`; `labels[i]`: the class of row `i`, below `classes`.
pub fn layer_from_means<B: Backend>(
    features: &Tensor<B, 2>,
    labels: &[usize],
    classes: usize,
    scale: f32,
) -> Linear<B> {
    let [rows, inputs] = features.dims();
    let values: Vec<f32> = features.to_data().iter::<f32>().collect();
    let length = |row: &[f32]| row.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    let mean_length = values.chunks(inputs).map(length).sum::<f32>() / rows.max(1) as f32;
    // Burn's linear weights are `[inputs, outputs]`: column c is class c's direction.
    let mut weight = vec![0f32; inputs * classes];
    let mut sums = vec![vec![0f32; inputs]; classes];
    for (row, &class) in values.chunks(inputs).zip(labels) {
        let norm = length(row);
        sums[class].iter_mut().zip(row).for_each(|(sum, v)| *sum += v / norm);
    }
    for (class, sum) in sums.iter().enumerate() {
        let norm = length(sum);
        for (i, v) in sum.iter().enumerate() {
            weight[i * classes + class] = v / norm * scale / mean_length.max(f32::MIN_POSITIVE);
        }
    }
    let device = features.device();
    let mut layer = LinearConfig::new(inputs, classes).init(&device);
    layer.weight = Param::from_tensor(Tensor::from_data(TensorData::new(weight, [inputs, classes]), &device));
    layer.bias = Some(Param::from_tensor(Tensor::zeros([classes], &device)));
    layer
}

/// Trains `layer` on the examples (`features` `[examples, inputs]`, their classes `labels`):
/// `config.epochs` passes in a seeded order, our SGD, the library's step. Returns the layer and
/// the last pass's loss and accuracy.
pub fn train_layer<B: AutodiffBackend>(
    layer: Linear<B>,
    features: Tensor<B::InnerBackend, 2>,
    labels: &[usize],
    config: &TeachConfig,
) -> Result<(Linear<B::InnerBackend>, Means), TeachError> {
    let rows = features.dims()[0];
    if rows != labels.len() {
        return Err(TeachError::Mismatch { features: rows, labels: labels.len() });
    }
    let device = features.device();
    let features = Tensor::<B, 2>::from_inner(features);
    let optim = sgd_for::<Linear<B>, B>(config.momentum, config.weight_decay);
    let mut stepper = Stepper::new(optim, Compute::F32, &device);
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..rows).collect();
    let (mut layer, mut last) = (layer, Means::default());
    for _ in 0..config.epochs {
        order.shuffle(&mut rng);
        let mut meter = Meter::default();
        for batch in order.chunks(config.batch_size.max(1)) {
            let input = select_rows(&features, batch);
            let classes: Vec<usize> = batch.iter().map(|&i| labels[i]).collect();
            let targets = stepper.targets(&classes);
            layer = stepper.step(layer, input, targets, config.lr, &mut meter);
        }
        last = meter.read();
    }
    Ok((layer.valid(), last))
}

/// `base`'s network with `layer` as its last layer: a model of the classes `labels`, described
/// as taught from `base`.
pub fn taught_model<B: Backend>(base: SavedModel<B>, layer: Linear<B>, labels: Vec<Label>) -> SavedModel<B> {
    let config = base.info.config.clone().with_num_classes(labels.len());
    let base_labels: Vec<&str> = base.info.labels.iter().map(|l| l.name.as_str()).collect();
    let mut info = crate::ModelInfo::new(config, labels).with_provenance(
        "taught_from",
        serde_json::json!({ "classes": base_labels, "provenance": base.info.provenance }),
    );
    info.normalization = base.info.normalization;
    SavedModel { model: base.model.with_last_layer(layer), info }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type B = Autodiff<Flex>;

    /// Three classes in 8-d feature space, each around its own direction.
    fn examples() -> (Tensor<Flex, 2>, Vec<usize>) {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for class in 0..3 {
            for i in 0..6 {
                let mut row = vec![0.1 * i as f32; 8];
                row[class * 2] += 3.0;
                row[class * 2 + 1] += 1.0 + 0.2 * i as f32;
                rows.extend(row);
                labels.push(class);
            }
        }
        (Tensor::from_data(TensorData::new(rows, [18, 8]), &Default::default()), labels)
    }

    #[test]
    fn the_mean_layer_answers_before_any_step_and_training_lowers_the_loss() {
        let (features, labels) = examples();
        // Scale 1: right before any step, but unsure (scores within 1 of each other).
        let layer = layer_from_means(&features, &labels, 3, 1.0);
        assert_eq!(top1(&layer, features.clone(), &labels), 1.0);
        let start = || layer_from_means::<B>(&Tensor::from_inner(features.clone()), &labels, 3, 1.0);
        let config = TeachConfig { epochs: 1, ..Default::default() };
        let (_, first) = train_layer::<B>(start(), features.clone(), &labels, &config).unwrap();
        let config = TeachConfig { epochs: 20, ..config };
        let (trained, last) = train_layer::<B>(start(), features.clone(), &labels, &config).unwrap();
        assert!(last.loss < first.loss * 0.5, "{} -> {}", first.loss, last.loss);
        assert_eq!(top1(&trained, features.clone(), &labels), 1.0);
        // Six examples per class: one of each held out and scored.
        let taught = teach_layer::<B>(features, &labels, 3, &config).unwrap();
        assert_eq!(taught.held_out_top1, Some(1.0));
        assert_eq!(held_out_split(&labels[..12], 3), None, "the third class has no examples there");
    }

    #[test]
    fn bad_examples_are_refused_by_name() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(check_examples(&names(&["cat"]), &[0]), Err(TeachError::TooFewClasses(1)));
        assert_eq!(
            check_examples(&names(&["cat", "dog"]), &[0, 0]),
            Err(TeachError::EmptyClass("dog".into()))
        );
        assert_eq!(check_examples(&names(&["cat", " "]), &[0, 1]), Err(TeachError::UnnamedClass(1)));
        assert_eq!(
            check_examples(&names(&["cat", "cat "]), &[0, 1]),
            Err(TeachError::DuplicateName("cat".into()))
        );
        assert_eq!(check_examples(&names(&["cat", "dog"]), &[1, 0]), Ok(()));
    }
}
