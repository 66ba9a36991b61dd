//! Local response normalisation (the paper's section 3.3) on plain `f32` slices, and its
//! gradient, one image per task. Burn's `LocalResponseNorm` moves the channels last and pools
//! them as rows of five, which made it the larger part of the paper preset's forward pass on the
//! CPU; here each channel's window sum is a handful of whole-plane additions (vectorised), and
//! `s^-0.75` is two square roots rather than a power.

use burn::nn::{LocalResponseNorm, LocalResponseNormConfig};
use rayon::prelude::*;

/// `b_c = a_c / (k + alpha * sum of a_c'^2 over the `size` channels centred on c)^beta`, with
/// the paper's alpha (PyTorch's and Burn's `alpha / size`); `size` odd, as the paper's 5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lrn {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

/// `images` images of `channels` planes of `pixels` values each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LrnShape {
    pub images: usize,
    pub channels: usize,
    pub pixels: usize,
}

impl Lrn {
    /// Burn's module for these parameters (what runs off the CPU): it divides alpha by the size.
    pub fn burn_module(&self) -> LocalResponseNorm {
        LocalResponseNormConfig::new(self.size)
            .with_alpha(self.alpha as f64 * self.size as f64)
            .with_beta(self.beta as f64)
            .with_k(self.k as f64)
            .init()
    }

    /// The channels in channel `c`'s window (those of `channels` that exist).
    fn window(&self, c: usize, channels: usize) -> std::ops::Range<usize> {
        let before = (self.size - 1) / 2;
        c.saturating_sub(before)..(c + self.size - before).min(channels)
    }

    /// `s^-beta` of every scale: by square roots for the paper's 0.75. The choice is made once,
    /// outside the loops: inside them, the vectorised loop computed both branches for every
    /// value and kept one, so the slow power ran everywhere.
    fn inverse_powers(&self, mut scales: Vec<f32>) -> Vec<f32> {
        if self.beta == 0.75 {
            scales.iter_mut().for_each(|s| {
                let root = s.sqrt();
                *s = 1.0 / (root * root.sqrt());
            });
        } else {
            scales.iter_mut().for_each(|s| *s = s.powf(-self.beta));
        }
        scales
    }

    /// `k + alpha * window sum of v^2` for every channel of one image (`[channels, pixels]`).
    fn scales(&self, image: &[f32], shape: &LrnShape) -> Vec<f32> {
        let squares: Vec<f32> = image.iter().map(|v| v * v).collect();
        window_sums(self, &squares, shape, |sum| self.k + self.alpha * sum)
    }
}

/// For each channel, `finish(sum of `values` over its window)`, pixel by pixel.
fn window_sums(lrn: &Lrn, values: &[f32], shape: &LrnShape, finish: impl Fn(f32) -> f32) -> Vec<f32> {
    let p = shape.pixels;
    let mut out = vec![0.0; values.len()];
    for (c, out) in out.chunks_mut(p).enumerate() {
        for neighbour in lrn.window(c, shape.channels) {
            for (o, v) in out.iter_mut().zip(&values[neighbour * p..(neighbour + 1) * p]) {
                *o += v;
            }
        }
        out.iter_mut().for_each(|o| *o = finish(*o));
    }
    out
}

pub fn forward(x: &[f32], lrn: &Lrn, shape: &LrnShape) -> Vec<f32> {
    let image_len = shape.channels * shape.pixels;
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(image_len).zip(x.par_chunks(image_len)).for_each(|(out, image)| {
        let powers = lrn.inverse_powers(lrn.scales(image, shape));
        for ((o, v), p) in out.iter_mut().zip(image).zip(&powers) {
            *o = v * p;
        }
    });
    out
}

/// The gradient with respect to the input: with `s_c` the scale and `b_c` the output of channel
/// c, `g_j s_j^-beta - 2 alpha beta a_j * sum over the windows holding j of g_c b_c / s_c`.
pub fn backward(x: &[f32], grad_output: &[f32], lrn: &Lrn, shape: &LrnShape) -> Vec<f32> {
    let image_len = shape.channels * shape.pixels;
    let mut grad = vec![0.0; x.len()];
    let factor = 2.0 * lrn.alpha * lrn.beta;
    grad.par_chunks_mut(image_len)
        .zip(x.par_chunks(image_len))
        .zip(grad_output.par_chunks(image_len))
        .for_each(|((grad, image), g)| {
            let scales = lrn.scales(image, shape);
            let powers = lrn.inverse_powers(scales.clone());
            let spread: Vec<f32> = image
                .iter()
                .zip(g)
                .zip(scales.iter().zip(&powers))
                .map(|((a, g), (s, p))| g * a * p / s)
                .collect();
            // The window is symmetric, so the windows holding j are j's own window.
            let sums = window_sums(lrn, &spread, shape, |sum| sum);
            for (((out, a), g), (p, sum)) in grad.iter_mut().zip(image).zip(g).zip(powers.iter().zip(&sums)) {
                *out = g * p - factor * a * sum;
            }
        });
    grad
}
