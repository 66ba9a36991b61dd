//! `trainer calibrate`: chooses a model's "none of my classes" threshold on data (its in-class
//! validation photos against photos of other classes) and writes it into the weights file.

use std::path::{Path, PathBuf};

use alexnet::out_of_classes::OutOfClasses;
use alexnet::weights::{self, SavedModel};
use anyhow::{Context, Result};
use burn::tensor::backend::Backend;

use crate::data::{ImageFolder, Loader};
use crate::eval::{match_classes, scores};

#[derive(clap::Args, Debug, Clone)]
pub struct CalibrateOptions {
    /// The weights file: its threshold is written into it (or into --out).
    #[arg(long)]
    pub weights: PathBuf,
    /// In-class photos: a folder of class folders, or a dataset folder holding val/.
    #[arg(long)]
    pub data: PathBuf,
    /// A folder of photos that show none of the model's classes.
    #[arg(long)]
    pub out_of_class: PathBuf,
    /// The share of in-class photos the threshold may flag.
    #[arg(long, default_value_t = 0.05)]
    pub in_class_share: f64,
    /// Write the calibrated file here instead of over --weights.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = crate::options::default_workers())]
    pub workers: usize,
}

/// Scores both folders with `saved`'s model, chooses the threshold and writes the file.
pub fn calibrate<B: Backend>(
    options: &CalibrateOptions,
    saved: &SavedModel<B>,
    device: &B::Device,
) -> Result<OutOfClasses> {
    let data = &options.data;
    let dir = if data.join("val").is_dir() { data.join("val") } else { data.clone() };
    let in_class = ImageFolder::scan(&dir)?;
    // Only folders of the model's own classes count as in-class.
    match_classes(&in_class.classes, &saved.info.labels)?;
    let norm = saved.info.normalization;
    let score = |folder: ImageFolder| -> Result<Vec<f32>> {
        let loader = Loader::new(folder, options.workers, norm)?;
        let scores = scores(&saved.model, &loader, options.batch_size, device)?;
        for warning in loader.skipped.take_new() {
            eprintln!("{warning}");
        }
        Ok(scores)
    };
    let in_class = score(in_class)?;
    let out_of_class = score(ImageFolder::images(&options.out_of_class)?)?;
    let chosen =
        OutOfClasses::choose(&in_class, &out_of_class, options.in_class_share).map_err(anyhow::Error::msg)?;
    let out = options.out.as_ref().unwrap_or(&options.weights);
    write_threshold(&options.weights, out, chosen)?;
    println!(
        "threshold {:.3}: flags {:.1}% of {} in-class photos, {:.1}% of {} out-of-class photos -> {}",
        chosen.threshold,
        chosen.in_class_flagged * 100.0,
        in_class.len(),
        chosen.out_of_class_flagged * 100.0,
        out_of_class.len(),
        out.display()
    );
    Ok(chosen)
}

/// Copies the weights file `from` to `to` with the threshold in its description, atomically, its
/// tensors unchanged.
fn write_threshold(from: &Path, to: &Path, chosen: OutOfClasses) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    let mut info = weights::read_info(&bytes)?;
    info.out_of_classes = Some(chosen);
    Ok(weights::write_atomically(to, &weights::with_info(&bytes, &info)?)?)
}
