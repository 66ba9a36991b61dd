//! `trainer filters`: a weights file's conv1 filters as a PNG picture (the paper's Figure 3, the
//! page's "Inside the network" panel), and how noise-like they are.

use std::path::Path;

use alexnet::inside;
use alexnet::AlexNet;
use anyhow::{Context, Result};
use burn::tensor::backend::Backend;
use image::imageops::FilterType;

/// Writes conv1's filters to `out` as a PNG, each weight `scale` pixels wide, and returns
/// their roughness ([`inside::filter_roughness`]: 1 for noise, near 0 for smooth filters).
pub fn write_png<B: Backend>(model: &AlexNet<B>, out: &Path, scale: u32) -> Result<f32> {
    let picture = inside::filters(model);
    let (width, height) = (picture.width, picture.height);
    let tiles =
        image::RgbaImage::from_raw(width, height, picture.rgba).context("a picture of the wrong size")?;
    let scale = scale.clamp(1, 32);
    let scaled = image::imageops::resize(&tiles, width * scale, height * scale, FilterType::Nearest);
    scaled
        .save_with_format(out, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(inside::filter_roughness(model))
}
