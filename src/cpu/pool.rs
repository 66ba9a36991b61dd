//! Max pooling (no padding) on plain `f32` slices, and its gradient, one `[height, width]` plane
//! per task. Flex's max pooling is scalar and keeps an index per output even at inference (its
//! speed against ours: docs/benchmarks-history.md); this one takes the maximum
//! down whole rows first (vectorised), and for the gradient finds each window's maximum again
//! instead of storing its index.

use rayon::prelude::*;

/// One max pooling: `planes` (batch x channels) planes of `in_size`, no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    pub planes: usize,
    pub in_size: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
}

impl PoolShape {
    pub fn out_size(&self) -> [usize; 2] {
        [0, 1].map(|d| (self.in_size[d] - self.kernel[d]) / self.stride[d] + 1)
    }

    fn in_len(&self) -> usize {
        self.in_size[0] * self.in_size[1]
    }

    fn out_len(&self) -> usize {
        let [h, w] = self.out_size();
        h * w
    }

    /// The position in the plane of the largest value of output `(oh, ow)`'s window: the first
    /// in row-major order among equals, a NaN wins (as in PyTorch).
    fn argmax(&self, plane: &[f32], oh: usize, ow: usize) -> usize {
        let ([kh, kw], [sh, sw], width) = (self.kernel, self.stride, self.in_size[1]);
        let mut best = (oh * sh) * width + ow * sw;
        for row in oh * sh..oh * sh + kh {
            for index in row * width + ow * sw..row * width + ow * sw + kw {
                let value = plane[index];
                if value > plane[best] || (value.is_nan() && !plane[best].is_nan()) {
                    best = index;
                }
            }
        }
        best
    }
}

pub fn forward(x: &[f32], shape: &PoolShape) -> Vec<f32> {
    let ([_, out_w], [kh, kw], [sh, sw], width) =
        (shape.out_size(), shape.kernel, shape.stride, shape.in_size[1]);
    let mut out = vec![0.0; shape.planes * shape.out_len()];
    out.par_chunks_mut(shape.out_len()).zip(x.par_chunks(shape.in_len())).for_each_init(
        || vec![0.0; width],
        |column_max, (out, plane)| {
            // Down the window's rows first (whole rows at a time, which vectorises), then across.
            for (oh, out) in out.chunks_mut(out_w).enumerate() {
                let mut rows = plane[oh * sh * width..].chunks(width).take(kh);
                column_max.copy_from_slice(rows.next().expect("kernel height >= 1"));
                for row in rows {
                    column_max.iter_mut().zip(row).for_each(|(m, &v)| *m = max(*m, v));
                }
                for (ow, out) in out.iter_mut().enumerate() {
                    let window = &column_max[ow * sw..][..kw];
                    *out = window.iter().fold(window[0], |m, &v| max(m, v));
                }
            }
        },
    );
    out
}

/// The larger of two values, NaN if either is (as PyTorch's pooling).
fn max(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() {
        b
    } else {
        a
    }
}

/// The input's gradient: each output's gradient goes to its window's largest input.
pub fn backward(x: &[f32], grad_output: &[f32], shape: &PoolShape) -> Vec<f32> {
    let [out_h, out_w] = shape.out_size();
    let mut grad = vec![0.0; x.len()];
    grad.par_chunks_mut(shape.in_len())
        .zip(x.par_chunks(shape.in_len()))
        .zip(grad_output.par_chunks(shape.out_len()))
        .for_each(|((grad, plane), grad_output)| {
            for oh in 0..out_h {
                for ow in 0..out_w {
                    grad[shape.argmax(plane, oh, ow)] += grad_output[oh * out_w + ow];
                }
            }
        });
    grad
}
