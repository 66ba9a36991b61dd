//! Accuracy on a labelled image folder (centre crop or the paper's 10 crops), and prediction.

use alexnet::classify::{softmax, Classification};
use alexnet::labels::{top_indices, Label};
use alexnet::out_of_classes::{self, OutOfClasses};
use alexnet::preprocess;
use alexnet::{AlexNet, ModelInfo};
use anyhow::{bail, Result};
use burn::tensor::backend::Backend;
use serde::Serialize;

use crate::data::{Loader, Transform};

/// Accuracy of one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassAccuracy {
    pub label: String,
    pub correct: usize,
    pub total: usize,
    pub top1: f64,
}

/// What an evaluation measured. Accuracies are fractions in [0, 1].
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub images: usize,
    pub top1: f64,
    pub top5: f64,
    pub top1_error: f64,
    pub top5_error: f64,
    /// Mean cross-entropy of the (crop-averaged) probabilities.
    pub loss: f64,
    pub ten_crop: bool,
    pub skipped: usize,
    /// Share of the photos flagged as none of the model's classes (`null` for a model without
    /// a threshold); with ten crops, from the crops' mean logits.
    pub out_of_classes_share: Option<f64>,
    /// Wall-clock time of the evaluation.
    pub seconds: f64,
    pub per_class: Vec<ClassAccuracy>,
}

/// The model's logits for a batch of preprocessed inputs, one row of `outputs` per input.
fn logits<B: Backend>(model: &AlexNet<B>, inputs: Vec<f32>, device: &B::Device) -> Result<(Vec<f32>, usize)> {
    let logits = model.forward(preprocess::batch_from_flat(inputs, device));
    let outputs = logits.dims()[1];
    let logits = logits.into_data().to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok((logits, outputs))
}

/// Evaluates `model` on every image of the loader's folder. `output_of_class[c]` is the model
/// output that folder class `c` corresponds to.
pub fn evaluate<B: Backend>(
    model: &AlexNet<B>,
    loader: &Loader,
    output_of_class: &[usize],
    threshold: Option<OutOfClasses>,
    ten_crop: bool,
    batch_size: usize,
    device: &B::Device,
) -> Result<EvalReport> {
    let started = std::time::Instant::now();
    let transform = if ten_crop { Transform::TenCrop } else { Transform::Center };
    let crops = transform.crops_per_image();
    let folder = loader.folder();
    let order: Vec<usize> = (0..folder.len()).collect();
    let (mut correct1, mut correct5, mut images, mut loss) = (0usize, 0usize, 0usize, 0.0f64);
    let mut flagged = 0usize;
    let mut per_class = vec![(0usize, 0usize); folder.classes.len()];
    for batch in loader.batches(order, (batch_size / crops).max(1), transform) {
        if batch.is_empty() {
            continue;
        }
        let (logits, num_outputs) = logits(model, batch.inputs, device)?;
        for (i, &class) in batch.labels.iter().enumerate() {
            // The paper's test procedure: average the softmax over the crops.
            let (mut mean, mut mean_logits) = (vec![0f32; num_outputs], vec![0f32; num_outputs]);
            for crop in 0..crops {
                let row = &logits[(i * crops + crop) * num_outputs..][..num_outputs];
                mean.iter_mut().zip(softmax(row)).for_each(|(m, p)| *m += p / crops as f32);
                mean_logits.iter_mut().zip(row).for_each(|(m, l)| *m += l / crops as f32);
            }
            flagged += threshold.is_some_and(|t| t.flags(&mean_logits)) as usize;
            let target = output_of_class[class];
            let top = top_indices(&mean, 5);
            let hit1 = top[0] == target;
            correct1 += hit1 as usize;
            correct5 += top.contains(&target) as usize;
            loss -= (mean[target].max(1e-12) as f64).ln();
            per_class[class].0 += hit1 as usize;
            per_class[class].1 += 1;
            images += 1;
        }
    }
    if images == 0 {
        bail!("no readable images in {}", folder.root.display());
    }
    let top1 = correct1 as f64 / images as f64;
    let top5 = correct5 as f64 / images as f64;
    Ok(EvalReport {
        images,
        top1,
        top5,
        top1_error: 1.0 - top1,
        top5_error: 1.0 - top5,
        loss: loss / images as f64,
        ten_crop,
        skipped: loader.skipped.count(),
        out_of_classes_share: threshold.map(|_| flagged as f64 / images as f64),
        seconds: started.elapsed().as_secs_f64(),
        per_class: per_class
            .iter()
            .zip(&folder.classes)
            .map(|(&(correct, total), class)| ClassAccuracy {
                label: alexnet::labels::from_folder_name(class).name,
                correct,
                total,
                top1: if total == 0 { 0.0 } else { correct as f64 / total as f64 },
            })
            .collect(),
    })
}

/// Maps each dataset class folder to the model output it names: by WordNet id, else by label
/// name. A folder the model has no output for is an error.
pub fn match_classes(folders: &[String], labels: &[Label]) -> Result<Vec<usize>> {
    folders
        .iter()
        .map(|folder| {
            labels
                .iter()
                .position(|l| l.wnid.as_deref() == Some(folder.as_str()))
                .or_else(|| labels.iter().position(|l| &l.name == folder))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "dataset class `{folder}` is not one of the model's {} classes (matched by \
                         WordNet id or label name)",
                        labels.len()
                    )
                })
        })
        .collect()
}

/// The out-of-class score ([`out_of_classes::score`]) of every readable image of the loader's
/// folder, centre crop: what `trainer predict` and the page judge a photo by.
pub fn scores<B: Backend>(
    model: &AlexNet<B>,
    loader: &Loader,
    batch_size: usize,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let order: Vec<usize> = (0..loader.folder().len()).collect();
    let mut scores = Vec::with_capacity(order.len());
    for batch in loader.batches(order, batch_size, Transform::Center) {
        if batch.is_empty() {
            continue;
        }
        let (logits, outputs) = logits(model, batch.inputs, device)?;
        scores.extend(logits.chunks_exact(outputs).map(out_of_classes::score));
    }
    Ok(scores)
}

/// The top 5 for one image file, and whether it shows none of the model's classes.
pub fn predict_file<B: Backend>(
    model: &AlexNet<B>,
    info: &ModelInfo,
    path: &std::path::Path,
    device: &B::Device,
) -> Result<Classification> {
    let bytes = std::fs::read(path)?;
    let input = preprocess::preprocess_bytes(&bytes, &info.normalization)?;
    let (logits, _) = logits(model, input, device)?;
    Ok(Classification::from_logits(&logits, info, 5))
}
