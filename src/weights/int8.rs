//! Int8 storage for weights files: a quarter of f32's size, loaded back to f32.
//!
//! Each weight tensor (rank 2 or more) is stored as symmetric int8 with one f32 scale per output
//! channel, in a tensor named `NAME.scale`; biases stay f32 (they are tiny). Loading multiplies
//! back, so every backend runs the same f32 network and only the stored precision changes.
//!
//! Why not Burn's quantized tensors: burn-store 0.21 writes those to burnpack only, and the
//! project keeps one format that Python can open; per-channel scales are what Burn's and
//! PyTorch's int8 schemes use for weights too.

use safetensors::tensor::TensorView;
use safetensors::Dtype;

use super::{parse, write, WeightsError};

/// The suffix of the tensor holding a quantized tensor's per-channel scales.
pub const SCALE_SUFFIX: &str = ".scale";

/// The axis along which scales vary: output channels. Conv weights are `[out, in, kh, kw]`;
/// Burn's linear weights are `[in, out]`.
fn channel_axis(shape: &[usize]) -> usize {
    if shape.len() == 2 {
        1
    } else {
        0
    }
}

/// (number of channels, the channel of flat element `i`).
fn channel_of(shape: &[usize]) -> (usize, impl Fn(usize) -> usize) {
    let axis = channel_axis(shape);
    let channels = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    (channels, move |i: usize| (i / inner) % channels)
}

fn f32_values(view: &TensorView) -> Vec<f32> {
    view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Symmetric per-channel int8: `q = round(w / s)` with `s = max|w| / 127` over the channel.
pub fn quantize(values: &[f32], shape: &[usize]) -> (Vec<i8>, Vec<f32>) {
    let (channels, channel) = channel_of(shape);
    let mut max_abs = vec![0.0f32; channels];
    for (i, v) in values.iter().enumerate() {
        let c = channel(i);
        max_abs[c] = max_abs[c].max(v.abs());
    }
    let scales: Vec<f32> = max_abs.iter().map(|m| if *m > 0.0 { m / 127.0 } else { 1.0 }).collect();
    let q = values
        .iter()
        .enumerate()
        .map(|(i, v)| (v / scales[channel(i)]).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scales)
}

pub fn dequantize(q: &[i8], scales: &[f32], shape: &[usize]) -> Vec<f32> {
    let (_, channel) = channel_of(shape);
    q.iter().enumerate().map(|(i, &v)| v as f32 * scales[channel(i)]).collect()
}

/// An f32 weights file's bytes to the int8 file's bytes (same metadata).
pub fn quantize_file(f32_file: &[u8]) -> Result<Vec<u8>, WeightsError> {
    let (file, metadata) = parse(f32_file)?;
    let mut out = Vec::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(WeightsError::UnsupportedDtype(format!("{:?} in `{name}`", view.dtype())));
        }
        let shape = view.shape().to_vec();
        if shape.len() < 2 {
            out.push((name, Dtype::F32, shape, view.data().to_vec()));
            continue;
        }
        let (q, scales) = quantize(&f32_values(&view), &shape);
        let channels = scales.len();
        out.push((format!("{name}{SCALE_SUFFIX}"), Dtype::F32, vec![channels], f32_bytes(&scales)));
        out.push((name, Dtype::I8, shape, q.into_iter().map(|v| v as u8).collect()));
    }
    write(out, metadata)
}

/// An int8 file's bytes back to an f32 file's bytes, checking that every int8 tensor has its
/// scales.
pub fn dequantize_file(int8_file: &[u8]) -> Result<Vec<u8>, WeightsError> {
    let (file, metadata) = parse(int8_file)?;
    let mut out = Vec::new();
    for (name, view) in file.tensors() {
        if name.ends_with(SCALE_SUFFIX) {
            continue;
        }
        let shape = view.shape().to_vec();
        match view.dtype() {
            Dtype::F32 => out.push((name, Dtype::F32, shape, view.data().to_vec())),
            Dtype::I8 => {
                let scale_name = format!("{name}{SCALE_SUFFIX}");
                let scales = file.tensor(&scale_name).map_err(|_| {
                    WeightsError::Mismatch(format!("`{name}` is int8 but `{scale_name}` is missing"))
                })?;
                let (channels, _) = channel_of(&shape);
                if scales.dtype() != Dtype::F32 || scales.shape() != [channels] {
                    return Err(WeightsError::Mismatch(format!(
                        "`{scale_name}` should be {channels} f32 values"
                    )));
                }
                let q: Vec<i8> = view.data().iter().map(|&b| b as i8).collect();
                let values = dequantize(&q, &f32_values(&scales), &shape);
                out.push((name, Dtype::F32, shape, f32_bytes(&values)));
            }
            other => {
                return Err(WeightsError::UnsupportedDtype(format!("{other:?} in `{name}`")));
            }
        }
    }
    write(out, metadata)
}
