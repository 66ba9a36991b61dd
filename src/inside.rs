//! What the network sees, as pictures: conv1's learned filters (the paper's Figure 3), each
//! convolution's feature maps for an image, and which pixels drove a class (the gradient of its
//! score with respect to the input, Simonyan et al. 2014). All from the same Burn model.

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::model::{AlexNet, INPUT_SIZE};
use crate::preprocess::Normalization;

/// An RGBA image, row-major, 8 bits per channel (what a canvas's `ImageData` holds).
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Picture {
    fn new(width: u32, height: u32) -> Self {
        // White background: the gaps between tiles.
        Self { width, height, rgba: vec![255; (width * height * 4) as usize] }
    }

    fn put(&mut self, x: u32, y: u32, rgb: [u8; 3]) {
        let i = ((y * self.width + x) * 4) as usize;
        self.rgba[i..i + 4].copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
    }
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 values")
}

/// Scales `v` from [lo, hi] to 0..=255.
fn byte(v: f32, lo: f32, hi: f32) -> u8 {
    if hi > lo {
        (((v - lo) / (hi - lo)) * 255.0).round().clamp(0.0, 255.0) as u8
    } else {
        128
    }
}

/// conv1's filters as colour tiles, each scaled to its own range, one pixel apart. With the
/// paper's two groups, each group (each of the paper's GPUs) fills its own rows, as in Figure 3.
pub fn filters<B: Backend>(model: &AlexNet<B>) -> Picture {
    let weights = model.conv1_filters();
    let dims = weights.dims();
    filters_of(dims, &values(weights))
}

/// [`filters`] from conv1's weights `w` (read from the model by the caller), of shape `dims`.
pub fn filters_of([count, channels, k, _]: [usize; 4], w: &[f32]) -> Picture {
    let columns = if count % 2 == 0 && count >= 16 { (count / 2).clamp(8, 48) } else { count.min(16) };
    let rows = count.div_ceil(columns);
    let step = k as u32 + 1;
    let mut picture = Picture::new(columns as u32 * step + 1, rows as u32 * step + 1);
    for f in 0..count {
        let filter = &w[f * channels * k * k..][..channels * k * k];
        let (lo, hi) = filter.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let (x0, y0) = ((f % columns) as u32 * step + 1, (f / columns) as u32 * step + 1);
        for y in 0..k {
            for x in 0..k {
                let at = |c: usize| byte(filter[(c.min(channels - 1) * k + y) * k + x], lo, hi);
                picture.put(x0 + x as u32, y0 + y as u32, [at(0), at(1), at(2)]);
            }
        }
    }
    picture
}

/// How noise-like conv1's filters are, the median over filters: 1 for white noise, near 0 for
/// the smooth edges and colour blobs of the paper's Figure 3 (see [`roughness`]).
pub fn filter_roughness<B: Backend>(model: &AlexNet<B>) -> f32 {
    let weights = model.conv1_filters();
    let [count, channels, k, _] = weights.dims();
    let w = values(weights);
    let mut each: Vec<f32> = w.chunks_exact(channels * k * k).map(|f| roughness(f, k)).collect();
    each.sort_by(f32::total_cmp);
    each.get(count / 2).copied().unwrap_or(0.0)
}

/// The mean squared difference between neighbouring weights of a filter (`[channels, k, k]`,
/// across and down within each colour) over twice their variance: neighbours of white noise
/// differ by twice its variance on average, neighbours in a smooth pattern by almost nothing.
fn roughness(filter: &[f32], k: usize) -> f32 {
    let n = filter.len() as f32;
    let mean = filter.iter().sum::<f32>() / n;
    let variance = filter.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let (mut sum, mut pairs) = (0f32, 0usize);
    for plane in filter.chunks_exact(k * k) {
        for y in 0..k {
            for x in 0..k {
                let v = plane[y * k + x];
                let right = (x + 1 < k).then(|| plane[y * k + x + 1]);
                let below = (y + 1 < k).then(|| plane[(y + 1) * k + x]);
                for neighbour in [right, below].into_iter().flatten() {
                    sum += (neighbour - v) * (neighbour - v);
                    pairs += 1;
                }
            }
        }
    }
    if variance > 0.0 && pairs > 0 {
        sum / pairs as f32 / (2.0 * variance)
    } else {
        0.0
    }
}

/// The first `max_channels` feature maps of one image's activations `[1, C, H, W]`, each scaled
/// to its own range, as grey tiles in rows of eight.
pub fn feature_maps<B: Backend>(activations: Tensor<B, 4>, max_channels: usize) -> Picture {
    let [_, channels, h, w] = activations.dims();
    let shown = channels.min(max_channels);
    let v = values(activations);
    let columns = shown.min(8);
    let rows = shown.div_ceil(columns.max(1));
    let (sx, sy) = (w as u32 + 2, h as u32 + 2);
    let mut picture = Picture::new(columns as u32 * sx, rows as u32 * sy);
    for c in 0..shown {
        let map = &v[c * h * w..][..h * w];
        let hi = map.iter().fold(0f32, |m, &x| m.max(x));
        let (x0, y0) = ((c % columns) as u32 * sx + 1, (c / columns) as u32 * sy + 1);
        for y in 0..h {
            for x in 0..w {
                let g = byte(map[y * w + x], 0.0, hi);
                picture.put(x0 + x as u32, y0 + y as u32, [g, g, g]);
            }
        }
    }
    picture
}

/// |d score(class) / d pixel|, the largest over the colour channels: `[224, 224]`.
pub fn saliency<B: AutodiffBackend>(
    model: &AlexNet<B>,
    input: Tensor<B, 4>,
    class: usize,
) -> Tensor<B::InnerBackend, 2> {
    let input = input.require_grad();
    let score = model.forward(input.clone()).slice([0..1, class..class + 1]).sum();
    let grads = score.backward();
    let gradient = input.grad(&grads).expect("the input requires a gradient");
    gradient.abs().max_dim(1).reshape([INPUT_SIZE, INPUT_SIZE])
}

/// The network's view of the image (the normalised input `[3, 224, 224]` turned back into
/// colours) with `heat` (`[224, 224]`, larger is hotter) laid over it in red.
pub fn overlay<B: Backend>(input: &[f32], norm: &Normalization, heat: Tensor<B, 2>) -> Picture {
    let size = INPUT_SIZE;
    let heat = values(heat);
    let hi = heat.iter().fold(0f32, |m, &x| m.max(x));
    let mut picture = Picture::new(size as u32, size as u32);
    for y in 0..size {
        for x in 0..size {
            let i = y * size + x;
            let pixel = |c: usize| {
                ((input[c * size * size + i] * norm.std[c] + norm.mean[c]) * 255.0).clamp(0.0, 255.0)
            };
            // Dimmed photo, red where the gradient is large.
            let h = if hi > 0.0 { (heat[i] / hi).sqrt() } else { 0.0 };
            let mix = |v: f32, hot: f32| (v * 0.5 * (1.0 - h) + hot * h).round() as u8;
            picture.put(x as u32, y as u32, [mix(pixel(0), 255.0), mix(pixel(1), 40.0), mix(pixel(2), 20.0)]);
        }
    }
    picture
}

#[cfg(test)]
mod tests {
    use super::roughness;

    #[test]
    fn roughness_is_near_one_for_noise_and_near_zero_for_a_smooth_edge() {
        let k = 11;
        // A fixed pseudo-random filter (xorshift), three colours.
        let mut state = 0x2545_f491_u32;
        let noise: Vec<f32> = (0..3 * k * k)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as f32 / u32::MAX as f32 - 0.5
            })
            .collect();
        let r = roughness(&noise, k);
        assert!((0.8..1.2).contains(&r), "noise: {r}");
        // A soft vertical edge, the same in every colour.
        let edge: Vec<f32> = (0..3 * k * k).map(|i| ((i % k) as f32 - 5.0).tanh()).collect();
        let r = roughness(&edge, k);
        assert!(r < 0.1, "edge: {r}");
        assert_eq!(roughness(&[0.5; 3 * 121], k), 0.0, "a constant filter has no variance");
    }
}
