//! `trainer teach`: a weights file taught new classes from folders of example photos, with the
//! library's teaching (`alexnet::train::teach`), the same as the page's.

use std::path::PathBuf;
use std::time::Instant;

use alexnet::labels::{self, Label};
use alexnet::train::teach::{check_examples, taught_model, teach_layer, TeachConfig};
use alexnet::weights::{Precision, SavedModel};
use alexnet::{preprocess, AlexNet};
use anyhow::{bail, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::data::{ImageFolder, Loader, Transform};
use crate::eval::{evaluate, match_classes, EvalReport};
use crate::options::default_workers;

#[derive(clap::Args, Debug, Clone)]
pub struct TeachOptions {
    /// The weights to teach: their network up to fc7 is kept, their last layer replaced.
    #[arg(long)]
    pub weights: PathBuf,
    /// One folder of example photos per class, or a dataset folder holding train/ (and val/,
    /// scored afterwards).
    #[arg(long)]
    pub data: PathBuf,
    /// Where the taught model goes.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Passes over the examples.
    #[arg(long, default_value_t = TeachConfig::default().epochs)]
    pub epochs: usize,
    #[arg(long, default_value_t = TeachConfig::default().lr)]
    pub lr: f64,
    /// Seeds the order of the examples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Photos per forward pass while computing their features.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = default_workers())]
    pub workers: usize,
}

/// What teaching did.
pub struct TeachReport {
    pub classes: usize,
    pub examples: usize,
    pub feature_seconds: f64,
    pub train_seconds: f64,
    /// The last pass's loss and accuracy on the examples.
    pub last_loss: f64,
    pub last_top1: f64,
    /// Top-1 on a fifth of the examples held out (see `teach_layer`), when there are enough.
    pub held_out_top1: Option<f64>,
    /// The taught model on val/, when the dataset has one.
    pub val: Option<EvalReport>,
}

/// Teaches `base` the classes of `options.data`, saves the result to `options.out`.
pub fn teach<B: AutodiffBackend>(
    options: &TeachOptions,
    base: SavedModel<B::InnerBackend>,
    device: &B::Device,
) -> Result<TeachReport> {
    let data = &options.data;
    let (train_dir, val_dir) = match data.join("train") {
        train if train.is_dir() => (train, Some(data.join("val")).filter(|val| val.is_dir())),
        _ => (data.clone(), None),
    };
    let folder = ImageFolder::scan(&train_dir)?;
    let class_labels: Vec<Label> = folder.classes.iter().map(|c| labels::from_folder_name(c)).collect();
    let names: Vec<String> = class_labels.iter().map(|l| l.name.clone()).collect();
    // Checked before the features are computed, and after (a class whose photos are all
    // unreadable has none left).
    check_examples(&names, &folder.samples.iter().map(|&(_, class)| class).collect::<Vec<_>>())?;
    let loader = Loader::new(folder, options.workers, base.info.normalization)?;

    let started = Instant::now();
    let (features, examples) = fc7_features(&base.model, &loader, options.batch_size, device)?;
    check_examples(&names, &examples)?;
    let feature_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let config =
        TeachConfig { epochs: options.epochs, lr: options.lr, seed: options.seed, ..Default::default() };
    let layer = teach_layer::<B>(features, &examples, names.len(), &config)?;
    let train_seconds = started.elapsed().as_secs_f64();

    let mut taught = taught_model(base, layer.layer, class_labels);
    taught.info = taught.info.with_provenance("teach", serde_json::json!({ "data": data, "config": config }));
    taught.save(&options.out, options.precision)?;
    let val = match val_dir {
        Some(dir) => {
            let folder = ImageFolder::scan(&dir)?;
            let outputs = match_classes(&folder.classes, &taught.info.labels)?;
            let loader = Loader::new(folder, options.workers, taught.info.normalization)?;
            Some(evaluate(&taught.model, &loader, &outputs, None, false, options.batch_size, device)?)
        }
        None => None,
    };
    Ok(TeachReport {
        classes: names.len(),
        examples: examples.len(),
        feature_seconds,
        train_seconds,
        last_loss: layer.last.loss,
        last_top1: layer.last.top1,
        held_out_top1: layer.held_out_top1,
        val,
    })
}

/// fc7's features of every readable photo of the loader's folder (centre crop), and their classes.
fn fc7_features<B: Backend>(
    model: &AlexNet<B>,
    loader: &Loader,
    batch_size: usize,
    device: &B::Device,
) -> Result<(Tensor<B, 2>, Vec<usize>)> {
    let order: Vec<usize> = (0..loader.folder().len()).collect();
    let (mut parts, mut classes) = (Vec::new(), Vec::new());
    for batch in loader.batches(order, batch_size.max(1), Transform::Center) {
        if batch.is_empty() {
            continue;
        }
        classes.extend(&batch.labels);
        parts.push(model.fc7_features(preprocess::batch_from_flat(batch.inputs, device)));
    }
    for warning in loader.skipped.take_new() {
        eprintln!("{warning}");
    }
    if parts.is_empty() {
        bail!("no readable photos in {}", loader.folder().root.display());
    }
    Ok((Tensor::cat(parts, 0), classes))
}
