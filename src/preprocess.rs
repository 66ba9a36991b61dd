//! Image preprocessing shared by the trainer's evaluation and the browser.
//!
//! The evaluation transform is torchvision's `Resize(256)`, `CenterCrop(224)`, `ToTensor()`,
//! `Normalize(mean, std)` applied to a PIL image, reproduced exactly: [`resize_shorter_side`]
//! is PIL's bilinear resampling (antialiased when shrinking, 8-bit fixed-point arithmetic,
//! horizontal pass then vertical), and the crop offsets round as Python does.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use image::{ImageDecoder, ImageReader, Limits, RgbImage};
use serde::{Deserialize, Serialize};
use std::io::Cursor;

use crate::model::INPUT_SIZE;

/// The shorter side is resized to this before the 224x224 crop.
pub const RESIZE_SIZE: u32 = 256;

/// Largest image we agree to decode: 64 megapixels (8192x8192). Anything bigger is refused
/// before its pixels are allocated, which stops decompression bombs.
pub const MAX_PIXELS: u64 = 8192 * 8192;

/// Per-channel normalisation applied after scaling pixels to [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// ImageNet's statistics, as torchvision uses them.
    pub const IMAGENET: Normalization =
        Normalization { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
}

impl Default for Normalization {
    fn default() -> Self {
        Self::IMAGENET
    }
}

/// Why an image could not be turned into a network input.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImageError {
    #[error("the file is empty")]
    Empty,
    #[error("not an image in a supported format (JPEG, PNG, GIF, WebP, BMP)")]
    UnknownFormat,
    #[error("the image is {width}x{height} pixels; images over 64 megapixels (8192x8192) are refused")]
    TooLarge { width: u64, height: u64 },
    #[error("the image is {width}x{height} pixels: too elongated to classify (with its shorter side at 256 pixels it would take {megapixels} megapixels; at most 64 are allowed)")]
    TooElongated { width: u32, height: u32, megapixels: u64 },
    #[error("the JPEG file is truncated (it ends before its image data does)")]
    Truncated,
    #[error("the image has no pixels ({width}x{height})")]
    NoPixels { width: u32, height: u32 },
    #[error("the image could not be decoded: {0}")]
    Corrupt(String),
    #[error("an RGBA buffer of {width}x{height} needs {expected} bytes, got {actual}")]
    BufferSize { width: u32, height: u32, expected: u64, actual: usize },
}

/// Refuses, from the dimensions alone, an image too large to decode or too elongated to resize:
/// the resize to a 256-pixel shorter side is bounded like the decode (a 259-byte PNG of 60000x1
/// pixels would otherwise ask for 12 GB).
fn check_size(width: u32, height: u32) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::NoPixels { width, height });
    }
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(ImageError::TooLarge { width: width as u64, height: height as u64 });
    }
    let (w, h) = shorter_side_size(width, height, RESIZE_SIZE);
    let resized = w as u64 * h as u64;
    if resized > MAX_PIXELS {
        return Err(ImageError::TooElongated { width, height, megapixels: resized.div_ceil(1 << 20) });
    }
    Ok(())
}

/// A JPEG's last scan must be followed by its end-of-image marker: decoders fill a truncated
/// file's missing rows with grey and report success.
fn check_jpeg_complete(bytes: &[u8]) -> Result<(), ImageError> {
    let last_scan = bytes.windows(2).rposition(|m| m == [0xFF, 0xDA]);
    let ends = |from: usize| bytes[from..].windows(2).any(|m| m == [0xFF, 0xD9]);
    match last_scan {
        Some(scan) if ends(scan) => Ok(()),
        _ => Err(ImageError::Truncated),
    }
}

/// Decodes an encoded image (JPEG, PNG, GIF, WebP, BMP) to 8-bit RGB. Greyscale is replicated to
/// three channels, alpha is dropped, 16-bit is scaled to 8-bit, CMYK JPEGs are converted (the same
/// as PIL's `convert("RGB")`), and an EXIF orientation is applied (PIL leaves that to the caller).
/// Oversized or truncated images are refused before decoding.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(ImageError::UnknownFormat);
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        check_jpeg_complete(bytes)?;
    }
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    // A second guard for what the header does not tell (e.g. animation frames).
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 8);
    decoder.set_limits(limits).map_err(decode_error)?;
    // A phone photo's pixels are often stored sideways, with an EXIF tag saying how to turn them.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = image::DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    Ok(image.to_rgb8())
}

fn decode_error(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Unsupported(_) => ImageError::UnknownFormat,
        image::ImageError::Limits(_) => ImageError::Corrupt(format!("too large to decode: {e}")),
        other => ImageError::Corrupt(other.to_string()),
    }
}

/// Takes a straight (non-premultiplied) RGBA buffer, as a canvas's `getImageData` gives, and drops
/// its alpha.
pub fn from_rgba(rgba: &[u8], width: u32, height: u32) -> Result<RgbImage, ImageError> {
    check_size(width, height)?;
    let expected = width as u64 * height as u64 * 4;
    if rgba.len() as u64 != expected {
        return Err(ImageError::BufferSize { width, height, expected, actual: rgba.len() });
    }
    let rgb = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    Ok(RgbImage::from_raw(width, height, rgb).expect("length checked above"))
}

/// The output size of torchvision's `Resize(size)`: the shorter side becomes `size`, the longer
/// keeps the aspect ratio, truncated as `int()` does.
pub fn shorter_side_size(width: u32, height: u32, size: u32) -> (u32, u32) {
    if width <= height {
        let long = (size as u64 * height as u64 / width as u64) as u32;
        (size, long.max(1))
    } else {
        let long = (size as u64 * width as u64 / height as u64) as u32;
        (long.max(1), size)
    }
}

/// Resizes so the shorter side is `size`, with PIL's bilinear filter.
pub fn resize_shorter_side(image: &RgbImage, size: u32) -> RgbImage {
    let (width, height) = shorter_side_size(image.width(), image.height(), size);
    resize_bilinear(image, width, height)
}

/// The top-left corner of a centred `size` crop, rounded half to even like torchvision's
/// `CenterCrop` (`int(round((h - size) / 2.0))`).
pub fn center_crop_origin(width: u32, height: u32, size: u32) -> (u32, u32) {
    let offset = |full: u32| ((full.saturating_sub(size)) as f64 / 2.0).round_ties_even() as u32;
    (offset(width), offset(height))
}

/// Copies the `size` x `size` window whose top-left corner is (`left`, `top`).
pub fn crop(image: &RgbImage, left: u32, top: u32, size: u32) -> RgbImage {
    image::imageops::crop_imm(image, left, top, size, size).to_image()
}

/// Scales to [0, 1], normalises, and lays the pixels out channel-first: `[3, h, w]` values.
pub fn to_chw(image: &RgbImage, norm: &Normalization) -> Vec<f32> {
    to_chw_shifted(image, norm, [0.0; 3])
}

/// [`to_chw`], adding `shift` to every pixel's RGB in [0, 1] units before normalising (the
/// trainer's PCA lighting augmentation; zero for evaluation).
pub fn to_chw_shifted(image: &RgbImage, norm: &Normalization, shift: [f32; 3]) -> Vec<f32> {
    let plane = (image.width() * image.height()) as usize;
    let mut chw = vec![0.0f32; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            // Same operation order as torchvision: x / 255, then (x - mean) / std.
            chw[c * plane + i] = (pixel[c] as f32 / 255.0 + shift[c] - norm.mean[c]) / norm.std[c];
        }
    }
    chw
}

/// The pixels of torchvision's evaluation transform: shorter side to 256, centre 224 crop.
pub fn eval_crop(image: &RgbImage) -> RgbImage {
    let size = INPUT_SIZE as u32;
    let resized = resize_shorter_side(image, RESIZE_SIZE);
    let (left, top) = center_crop_origin(resized.width(), resized.height(), size);
    crop(&resized, left, top, size)
}

/// torchvision's evaluation transform: [`eval_crop`], then normalised `[3, 224, 224]` values
/// (channel-first, row-major).
pub fn eval_transform(image: &RgbImage, norm: &Normalization) -> Vec<f32> {
    to_chw(&eval_crop(image), norm)
}

/// Stacks `[3, 224, 224]` inputs (from [`eval_transform`]) into a `[n, 3, 224, 224]` batch.
pub fn batch<B: Backend>(inputs: &[Vec<f32>], device: &B::Device) -> Tensor<B, 4> {
    batch_from_flat(inputs.concat(), device)
}

/// [`batch`] from inputs already laid end to end (what the trainer's loader produces): the
/// values move into the tensor without a copy.
pub fn batch_from_flat<B: Backend>(inputs: Vec<f32>, device: &B::Device) -> Tensor<B, 4> {
    let size = INPUT_SIZE;
    let per_input = 3 * size * size;
    assert_eq!(inputs.len() % per_input, 0, "inputs must be [3, 224, 224] each");
    let n = inputs.len() / per_input;
    Tensor::from_data(TensorData::new(inputs, [n, 3, size, size]), device)
}

/// Decodes an image file's bytes and applies [`eval_transform`].
pub fn preprocess_bytes(bytes: &[u8], norm: &Normalization) -> Result<Vec<f32>, ImageError> {
    Ok(eval_transform(&decode(bytes)?, norm))
}

/// A canvas's RGBA pixels ([`from_rgba`]) through [`eval_transform`].
pub fn preprocess_rgba(
    rgba: &[u8],
    width: u32,
    height: u32,
    norm: &Normalization,
) -> Result<Vec<f32>, ImageError> {
    Ok(eval_transform(&from_rgba(rgba, width, height)?, norm))
}

/// Resizes with PIL's `Image.resize(size, BILINEAR)` algorithm (Pillow's `Resample.c`): a
/// triangle filter whose support widens by the scale factor when shrinking (antialiasing),
/// coefficients in 22-bit fixed point, rounding to 8 bits after each pass.
pub fn resize_bilinear(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let resized = (width != image.width()).then(|| resize_horizontally(image, width));
    let current = resized.as_ref().unwrap_or(image);
    if height != current.height() {
        resize_vertically(current, height)
    } else {
        resized.unwrap_or_else(|| image.clone())
    }
}

/// Each row's pixels filtered to `width`.
fn resize_horizontally(image: &RgbImage, width: u32) -> RgbImage {
    let coeffs = Coefficients::new(image.width(), width);
    let mut out = vec![0u8; width as usize * image.height() as usize * 3];
    let rows_in = image.as_raw().chunks_exact(image.width() as usize * 3);
    for (row_in, row_out) in rows_in.zip(out.chunks_exact_mut(width as usize * 3)) {
        for (x, pixel) in row_out.chunks_exact_mut(3).enumerate() {
            let (start, weights) = coeffs.for_output(x);
            let mut acc = [ROUNDING; 3];
            for (tap, w) in row_in[start * 3..].chunks_exact(3).zip(weights) {
                for c in 0..3 {
                    acc[c] += tap[c] as i32 * w;
                }
            }
            pixel.copy_from_slice(&acc.map(clip8));
        }
    }
    RgbImage::from_raw(width, image.height(), out).expect("sized for width x height")
}

/// Each output row a weighted sum of whole input rows (a loop the compiler vectorises).
fn resize_vertically(image: &RgbImage, height: u32) -> RgbImage {
    let coeffs = Coefficients::new(image.height(), height);
    let row_len = image.width() as usize * 3;
    let mut out = vec![0u8; row_len * height as usize];
    let mut acc = vec![0i32; row_len];
    for (y, row_out) in out.chunks_exact_mut(row_len).enumerate() {
        let (start, weights) = coeffs.for_output(y);
        acc.fill(ROUNDING);
        for (row_in, w) in image.as_raw()[start * row_len..].chunks_exact(row_len).zip(weights) {
            for (a, p) in acc.iter_mut().zip(row_in) {
                *a += *p as i32 * w;
            }
        }
        for (o, a) in row_out.iter_mut().zip(&acc) {
            *o = clip8(*a);
        }
    }
    RgbImage::from_raw(image.width(), height, out).expect("sized for width x height")
}

// Pillow's fixed point for 8-bit images: weights summing to 2^22, so that 255 times their sum
// (plus rounding) stays within an i32, as in its `ImagingResampleHorizontal_8bpc`.
const PRECISION_BITS: u32 = 32 - 8 - 2;
const ROUNDING: i32 = 1 << (PRECISION_BITS - 1);

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Per-output-pixel filter windows for one axis, as Pillow's `precompute_coeffs`.
struct Coefficients {
    /// (first input pixel, number of taps) per output pixel.
    bounds: Vec<(u32, usize)>,
    /// `ksize` fixed-point weights per output pixel.
    weights: Vec<i32>,
    ksize: usize,
}

impl Coefficients {
    fn new(in_size: u32, out_size: u32) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // the bilinear filter's support is 1
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size as usize);
        let mut weights = vec![0i32; out_size as usize * ksize];
        let mut k = vec![0f64; ksize];
        for xx in 0..out_size as usize {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C's (int) cast truncates toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
            let taps = xmax.max(0) as usize;
            let mut total = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(taps) {
                let t = ((x as i64 + xmin) as f64 - center + 0.5) * ss;
                *kx = (1.0 - t.abs()).max(0.0);
                total += *kx;
            }
            for x in 0..taps {
                let w = if total != 0.0 { k[x] / total } else { k[x] };
                let fixed = w * (1i64 << PRECISION_BITS) as f64;
                weights[xx * ksize + x] = if w < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
            }
            bounds.push((xmin as u32, taps));
        }
        Self { bounds, weights, ksize }
    }

    fn for_output(&self, i: usize) -> (usize, &[i32]) {
        let (start, taps) = self.bounds[i];
        let offset = i * self.ksize;
        (start as usize, &self.weights[offset..offset + taps])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_truncates_like_torchvision() {
        assert_eq!(shorter_side_size(451, 300, 256), (384, 256));
        assert_eq!(shorter_side_size(300, 451, 256), (256, 384));
        assert_eq!(shorter_side_size(224, 224, 256), (256, 256));
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        // (257 - 224) / 2 = 16.5 rounds to 16; (259 - 224) / 2 = 17.5 rounds to 18.
        assert_eq!(center_crop_origin(257, 259, 224), (16, 18));
        assert_eq!(center_crop_origin(384, 256, 224), (80, 16));
    }

    #[test]
    fn constant_image_stays_constant_through_resize() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([200, 10, 99]));
        let out = resize_bilinear(&img, 256, 159);
        assert!(out.pixels().all(|p| p.0 == [200, 10, 99]));
    }

    #[test]
    fn refuses_bad_buffers() {
        assert_eq!(decode(&[]), Err(ImageError::Empty));
        assert_eq!(decode(b"hello, this is text"), Err(ImageError::UnknownFormat));
        assert!(matches!(from_rgba(&[0; 12], 2, 2), Err(ImageError::BufferSize { .. })));
        assert!(matches!(from_rgba(&[], 100_000, 100_000), Err(ImageError::TooLarge { .. })));
    }
}
