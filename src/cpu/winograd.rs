//! Stride-1 convolutions by Winograd's minimal filtering (Lavin and Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016). F(m x m, r x r) gets an m x m block of an r x r
//! kernel's outputs from one (m + r - 1)^2 tile of input with (m + r - 1)^2 multiplications
//! instead of m^2 r^2. Every input tile, and every pair of input and output channels, is
//! transformed once; the multiplications then become one matrix product
//! `[out x in] x [in x tiles]` per point of the transformed tile, and each block of outputs is
//! transformed back. On AlexNet's 13x13 maps F(4x4, 3x3) (conv3..conv5) does 2.6x fewer
//! multiplications than im2col, tiles padded to 16x16 included; on conv2's 27x27 F(2x2, 5x5) 2.6x.
//!
//! The transforms are small dense matrices applied to eight tiles (or channels) at once, so the
//! compiler vectorises them on any target (AVX2 natively, simd128 in wasm); the products go
//! through the same `gemm` call as the rest of our layers.

use std::mem::MaybeUninit;

use rayon::prelude::*;

// conv.rs and this file use each other: this is the convolution's second algorithm, on the
// same shapes and ReLU, and conv.rs chooses between the two per layer.
use super::conv::{relu, ConvShape};
use super::matrix::{matmul, matmul_into, Accumulate, Matrix};

/// One algorithm F(m x m, r x r), `A` = m + r - 1: `a_t` takes a transformed tile back to an
/// m x m block of outputs, `g` transforms a kernel, `b_t` an input tile. The weights' gradient
/// runs the kernel and output transforms backwards: `a` and `g_t`, their transposes.
pub struct Winograd<const M: usize, const R: usize, const A: usize> {
    a_t: [[f32; A]; M],
    a: [[f32; M]; A],
    g: [[f32; R]; A],
    g_t: [[f32; A]; R],
    b_t: [[f32; A]; A],
}

impl<const M: usize, const R: usize, const A: usize> Winograd<M, R, A> {
    const fn new(a_t: [[f32; A]; M], g: [[f32; R]; A], b_t: [[f32; A]; A]) -> Self {
        Self { a_t, a: transpose(a_t), g, g_t: transpose(g), b_t }
    }
}

const fn transpose<const ROWS: usize, const COLS: usize>(mat: [[f32; COLS]; ROWS]) -> [[f32; ROWS]; COLS] {
    let mut out = [[0.0; ROWS]; COLS];
    let mut i = 0;
    while i < ROWS {
        let mut j = 0;
        while j < COLS {
            out[j][i] = mat[i][j];
            j += 1;
        }
        i += 1;
    }
    out
}

/// F(4x4, 3x3) at the points 0, 1, -1, 2, -2 (the paper's matrices).
#[rustfmt::skip]
const F4X3: Winograd<4, 3, 6> = Winograd::new(
    [
        [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
        [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
        [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
    ],
    [
        [1.0 / 4.0, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ],
    B_T_6,
);

/// F(2x2, 5x5) at the same points (derived as the paper describes; the same input transform).
#[rustfmt::skip]
const F2X5: Winograd<2, 5, 6> = Winograd::new(
    [
        [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 1.0, -1.0, 2.0, -2.0, 1.0],
    ],
    [
        [1.0 / 4.0, 0.0, 0.0, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0, 1.0 / 3.0, 2.0 / 3.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0, -1.0 / 3.0, 2.0 / 3.0],
        [0.0, 0.0, 0.0, 0.0, 1.0],
    ],
    B_T_6,
);

#[rustfmt::skip]
const B_T_6: [[f32; 6]; 6] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];

/// Tiles (or channels) transformed together: one AVX register, two simd128 ones.
const LANES: usize = 8;
type Lanes = [f32; LANES];

/// The algorithms we have, by kernel size.
#[derive(Clone, Copy)]
pub enum Algorithm {
    F4x3,
    F2x5,
}

impl Algorithm {
    /// The algorithm for `shape` when it has one and it is the faster: stride 1, a square 3x3 or
    /// 5x5 kernel, and at least [`MIN_IMAGES`] images.
    pub fn for_shape(shape: &ConvShape) -> Option<Self> {
        if shape.stride != [1, 1] || shape.batch < MIN_IMAGES {
            return None;
        }
        match shape.kernel {
            [3, 3] => Some(Self::F4x3),
            [5, 5] => Some(Self::F2x5),
            _ => None,
        }
    }
}

/// Natively, below this many images the transforms cost more than they save (each layer timed
/// alone at batches 1 to 8: docs/benchmarks-history.md). In wasm, whose products run on 128-bit
/// vectors, the multiplications saved pay for the transforms from one image on (BENCHMARKS.md).
const MIN_IMAGES: usize = if cfg!(target_arch = "wasm32") { 1 } else { 4 };

/// How the weights are read: as stored, `[out, in/groups, k, k]`; or as the convolution that
/// takes the gradient at a layer's output back to its input (`shape` is then that one's: in and
/// out swapped, the kernel turned by 180 degrees).
#[derive(Clone, Copy, PartialEq)]
pub enum Weights {
    AsStored,
    OfGradient,
}

/// What happens to each output: `relu(z + bias)`, or nothing.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    BiasRelu(&'a [f32]),
    Plain,
}

/// The tiling of one image: `[rows, columns]` of tiles, and the padded input they read.
struct Tiling {
    tiles: [usize; 2],
    padded: [usize; 2],
}

impl Tiling {
    fn of(shape: &ConvShape, m: usize, r: usize) -> Self {
        let tiles = shape.out_size().map(|side| side.div_ceil(m));
        Self { tiles, padded: tiles.map(|t| t * m + r - 1) }
    }

    fn count(&self) -> usize {
        self.tiles[0] * self.tiles[1]
    }

    /// Images transformed and multiplied together: at most [`CHUNK_TILES`] tiles' worth.
    fn images_per_chunk(&self, shape: &ConvShape) -> usize {
        (CHUNK_TILES / self.count()).clamp(1, shape.batch.max(1))
    }
}

/// Tiles per chunk of images. The transformed tiles take `(m + r - 1)^2 / m^2` times the memory
/// of the maps (9x for F(2x2, 5x5)): conv2 at training batch 128 would otherwise hold ~1 GB of
/// them at once. At 4,096, conv2 takes 21 images at a time, the 13x13 layers 256.
const CHUNK_TILES: usize = 4096;

/// `conv(x, weight)` of a stride-1 `shape`, NCHW in and out, then `epilogue`.
pub fn convolve(
    x: &[f32],
    weight: &[f32],
    weights: Weights,
    shape: &ConvShape,
    epilogue: Epilogue,
    algorithm: Algorithm,
) -> Vec<f32> {
    match algorithm {
        Algorithm::F4x3 => F4X3.convolve(x, weight, weights, shape, epilogue),
        Algorithm::F2x5 => F2X5.convolve(x, weight, weights, shape, epilogue),
    }
}

/// The gradient of [`convolve`]'s weights (`AsStored`, no epilogue) given the gradient at its
/// output, `[out, in/groups, k, k]`.
pub fn weight_gradient(x: &[f32], grad_output: &[f32], shape: &ConvShape, algorithm: Algorithm) -> Vec<f32> {
    match algorithm {
        Algorithm::F4x3 => F4X3.weight_gradient(x, grad_output, shape),
        Algorithm::F2x5 => F2X5.weight_gradient(x, grad_output, shape),
    }
}

impl<const M: usize, const R: usize, const A: usize> Winograd<M, R, A> {
    /// Points of a transformed tile.
    const POINTS: usize = A * A;

    /// One point's `[rows x width]` matrix, from row `first` on, of transformed values laid out
    /// `[row][point][width]` (tiles, kernels and output gradients alike).
    fn at_point(values: &[f32], point: usize, first: usize, rows: usize, width: usize) -> Matrix<'_> {
        Matrix::strided(
            &values[(first * Self::POINTS + point) * width..],
            rows,
            width,
            [Self::POINTS * width, 1],
        )
    }

    fn convolve(
        &self,
        x: &[f32],
        weight: &[f32],
        weights: Weights,
        shape: &ConvShape,
        epilogue: Epilogue,
    ) -> Vec<f32> {
        let tiling = Tiling::of(shape, M, R);
        let kernels = self.transform_weights(weight, weights, shape);
        let (in_len, out_len) = (shape.in_len(), shape.out_len());
        let images = tiling.images_per_chunk(shape);
        let len = shape.batch * out_len;
        let mut out = Vec::with_capacity(len);
        for (x, out) in
            x.chunks(images * in_len).zip(out.spare_capacity_mut()[..len].chunks_mut(images * out_len))
        {
            let shape = ConvShape { batch: x.len() / in_len, ..*shape };
            let products =
                self.products(&kernels, &self.transform_inputs(x, &shape, &tiling), &shape, &tiling);
            self.transform_outputs(&products, &shape, &tiling, epilogue, out);
        }
        // SAFETY: every chunk of images had all its outputs written.
        unsafe { out.set_len(len) };
        out
    }

    /// One product per point and group: [out/groups x in/groups] x [in/groups x tiles], as
    /// `[point][out][image * tiles + tile]`.
    fn products(&self, kernels: &[f32], inputs: &[f32], shape: &ConvShape, tiling: &Tiling) -> Vec<f32> {
        let columns = shape.batch * tiling.count();
        let groups = shape.groups;
        let (out_group, in_group) = (shape.out_channels / groups, shape.in_channels / groups);
        let len = Self::POINTS * shape.out_channels * columns;
        let mut products = Vec::with_capacity(len);
        let per_point = products.spare_capacity_mut()[..len].par_chunks_mut(shape.out_channels * columns);
        per_point.enumerate().for_each(|(point, products)| {
            for (group, products) in products.chunks_mut(out_group * columns).enumerate() {
                let (first_out, first_in) = (group * out_group, group * in_group);
                let kernels = Self::at_point(kernels, point, first_out, out_group, in_group);
                let inputs = Self::at_point(inputs, point, first_in, in_group, columns);
                matmul_into(products, kernels, inputs, gemm::Parallelism::None);
            }
        });
        // SAFETY: each point's product wrote its `out_channels * columns` values.
        unsafe { products.set_len(len) };
        products
    }

    /// A tile's outputs are `A^T (U . V) A` with `U = G g G^T`, so a kernel's gradient is
    /// `G^T dU G`, `dU` the sum over tiles of `V . (A dY A^T)`: one product per point and group,
    /// `[out/groups x tiles] x [tiles x in/groups]`, from the same input tiles as the forward's.
    fn weight_gradient(&self, x: &[f32], grad_output: &[f32], shape: &ConvShape) -> Vec<f32> {
        let tiling = Tiling::of(shape, M, R);
        let groups = shape.groups;
        let (out_group, in_group) = (shape.out_channels / groups, shape.in_channels / groups);
        let mut products = vec![0.0; Self::POINTS * shape.out_channels * in_group];
        let (in_len, out_len) = (shape.in_len(), shape.out_len());
        let images = tiling.images_per_chunk(shape);
        for (x, grad_output) in x.chunks(images * in_len).zip(grad_output.chunks(images * out_len)) {
            let shape = ConvShape { batch: x.len() / in_len, ..*shape };
            let columns = shape.batch * tiling.count();
            let inputs = self.transform_inputs(x, &shape, &tiling);
            let grads = self.transform_output_gradients(grad_output, &shape, &tiling);
            let per_point = products.par_chunks_mut(shape.out_channels * in_group);
            per_point.enumerate().for_each(|(point, products)| {
                for (group, products) in products.chunks_mut(out_group * in_group).enumerate() {
                    let (first_out, first_in) = (group * out_group, group * in_group);
                    let grads = Self::at_point(&grads, point, first_out, out_group, columns);
                    let inputs = Self::at_point(&inputs, point, first_in, in_group, columns).transposed();
                    matmul(products, Accumulate::Yes, grads, inputs, gemm::Parallelism::None);
                }
            });
        }
        let mut weight = vec![0.0; shape.out_channels * in_group * R * R];
        weight.par_chunks_mut(in_group * R * R).enumerate().for_each(|(out, weight)| {
            let mut tile = [[[0.0; LANES]; A]; A];
            for first in (0..in_group).step_by(LANES) {
                let lanes = LANES.min(in_group - first);
                for (point, values) in tile.as_flattened_mut().iter_mut().enumerate() {
                    load(values, &products[(point * shape.out_channels + out) * in_group + first..], lanes);
                }
                let kernel = transform(&self.g_t, &tile);
                for (lane, weight) in weight[first * R * R..].chunks_mut(R * R).take(lanes).enumerate() {
                    for (weight, values) in weight.iter_mut().zip(kernel.as_flattened()) {
                        *weight = values[lane];
                    }
                }
            }
        });
        weight
    }

    /// Every m x m block of the output's gradient `dY` as `A dY A^T` (zero past the map's
    /// edge): `[out][point][image * tiles + tile]`.
    fn transform_output_gradients(
        &self,
        grad_output: &[f32],
        shape: &ConvShape,
        tiling: &Tiling,
    ) -> Vec<f32> {
        let [out_h, out_w] = shape.out_size();
        let ([_, tiles_w], count) = (tiling.tiles, tiling.count());
        let (columns, pixels) = (shape.batch * count, out_h * out_w);
        let len = shape.out_channels * Self::POINTS * columns;
        let mut grads = Vec::with_capacity(len);
        let per_channel = grads.spare_capacity_mut()[..len].par_chunks_mut(Self::POINTS * columns);
        per_channel.enumerate().for_each(|(channel, grads)| {
            let mut block = [[[0.0; LANES]; M]; M];
            for image in 0..shape.batch {
                let plane = &grad_output[(image * shape.out_channels + channel) * pixels..][..pixels];
                for first in (0..count).step_by(LANES) {
                    let lanes = LANES.min(count - first);
                    for lane in 0..lanes {
                        let (ty, tx) = ((first + lane) / tiles_w, (first + lane) % tiles_w);
                        for (a, block_row) in block.iter_mut().enumerate() {
                            for (b, value) in block_row.iter_mut().enumerate() {
                                let (row, column) = (ty * M + a, tx * M + b);
                                value[lane] = if row < out_h && column < out_w {
                                    plane[row * out_w + column]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                    let transformed = transform(&self.a, &block);
                    for (point, values) in transformed.as_flattened().iter().enumerate() {
                        store(&mut grads[point * columns + image * count + first..], values, lanes);
                    }
                }
            }
        });
        // SAFETY: every (channel, point, image, tile) was stored above.
        unsafe { grads.set_len(len) };
        grads
    }

    /// Every kernel `g` as `G g G^T`: `[out][point][in/groups]`.
    fn transform_weights(&self, weight: &[f32], weights: Weights, shape: &ConvShape) -> Vec<f32> {
        let (out_group, in_group) = (shape.out_channels / shape.groups, shape.in_channels / shape.groups);
        let len = shape.out_channels * Self::POINTS * in_group;
        let mut kernels = Vec::with_capacity(len);
        let per_out = kernels.spare_capacity_mut()[..len].par_chunks_mut(Self::POINTS * in_group);
        per_out.enumerate().for_each(|(out, kernels)| {
            let (group, mut kernel) = (out / out_group, [[[0.0; LANES]; R]; R]);
            for first in (0..in_group).step_by(LANES) {
                let lanes = LANES.min(in_group - first);
                for lane in 0..lanes {
                    let stored = match weights {
                        Weights::AsStored => out * in_group + first + lane,
                        // Weight `[group * in_group + first + lane][out - group * out_group]`.
                        Weights::OfGradient => {
                            (group * in_group + first + lane) * out_group + out - group * out_group
                        }
                    };
                    let values = &weight[stored * R * R..][..R * R];
                    for (k, point) in kernel.as_flattened_mut().iter_mut().enumerate() {
                        // The gradient's kernel is turned by 180 degrees.
                        point[lane] = values[if weights == Weights::OfGradient { R * R - 1 - k } else { k }];
                    }
                }
                let transformed = transform(&self.g, &kernel);
                for (point, values) in transformed.as_flattened().iter().enumerate() {
                    store(&mut kernels[point * in_group + first..], values, lanes);
                }
            }
        });
        // SAFETY: every (out, point, in) was stored above.
        unsafe { kernels.set_len(len) };
        kernels
    }

    /// Every input tile `d` as `B^T d B`: `[in][point][image * tiles + tile]`.
    fn transform_inputs(&self, x: &[f32], shape: &ConvShape, tiling: &Tiling) -> Vec<f32> {
        let ([h, w], [ph, pw]) = (shape.in_size, shape.padding);
        let ([_, tiles_w], [padded_h, padded_w], count) = (tiling.tiles, tiling.padded, tiling.count());
        let columns = shape.batch * count;
        let len = shape.in_channels * Self::POINTS * columns;
        let mut inputs = Vec::with_capacity(len);
        let per_channel = inputs.spare_capacity_mut()[..len].par_chunks_mut(Self::POINTS * columns);
        per_channel.enumerate().for_each(|(channel, inputs)| {
            let (mut padded, mut tile) = (vec![0.0; padded_h * padded_w], [[[0.0; LANES]; A]; A]);
            for image in 0..shape.batch {
                let plane = &x[(image * shape.in_channels + channel) * h * w..][..h * w];
                // The plane inside its zero padding (the rows and columns past it stay zero).
                for (row, values) in plane.chunks(w).enumerate() {
                    padded[(row + ph) * padded_w + pw..][..w].copy_from_slice(values);
                }
                for first in (0..count).step_by(LANES) {
                    let lanes = LANES.min(count - first);
                    for lane in 0..lanes {
                        let (ty, tx) = ((first + lane) / tiles_w, (first + lane) % tiles_w);
                        for (i, tile_row) in tile.iter_mut().enumerate() {
                            let row = &padded[(ty * M + i) * padded_w + tx * M..][..A];
                            for (value, &input) in tile_row.iter_mut().zip(row) {
                                value[lane] = input;
                            }
                        }
                    }
                    let transformed = transform(&self.b_t, &tile);
                    for (point, values) in transformed.as_flattened().iter().enumerate() {
                        store(&mut inputs[point * columns + image * count + first..], values, lanes);
                    }
                }
            }
        });
        // SAFETY: every (channel, point, image, tile) was stored above.
        unsafe { inputs.set_len(len) };
        inputs
    }

    /// Every block of outputs as `A^T M A`, from the products `[point][out][image * tiles +
    /// tile]`, into NCHW through `epilogue`.
    fn transform_outputs(
        &self,
        products: &[f32],
        shape: &ConvShape,
        tiling: &Tiling,
        epilogue: Epilogue,
        out: &mut [MaybeUninit<f32>],
    ) {
        let [out_h, out_w] = shape.out_size();
        let ([_, tiles_w], count) = (tiling.tiles, tiling.count());
        let (columns, pixels) = (shape.batch * count, out_h * out_w);
        out.par_chunks_mut(pixels).enumerate().for_each(|(plane, out)| {
            let (image, channel) = (plane / shape.out_channels, plane % shape.out_channels);
            let bias = match epilogue {
                Epilogue::BiasRelu(bias) => bias[channel],
                Epilogue::Plain => 0.0,
            };
            let mut tile = [[[0.0; LANES]; A]; A];
            for first in (0..count).step_by(LANES) {
                let lanes = LANES.min(count - first);
                for (point, values) in tile.as_flattened_mut().iter_mut().enumerate() {
                    let from = (point * shape.out_channels + channel) * columns + image * count + first;
                    load(values, &products[from..], lanes);
                }
                let block = transform(&self.a_t, &tile);
                for lane in 0..lanes {
                    let (ty, tx) = ((first + lane) / tiles_w, (first + lane) % tiles_w);
                    for (a, block_row) in block.iter().enumerate().take(out_h - ty * M) {
                        let row = &mut out[(ty * M + a) * out_w + tx * M..];
                        for (out, values) in row.iter_mut().zip(block_row).take(out_w - tx * M) {
                            let z = values[lane] + bias;
                            out.write(match epilogue {
                                Epilogue::BiasRelu(_) => relu(z),
                                Epilogue::Plain => z,
                            });
                        }
                    }
                }
            }
        });
    }
}

/// `mat tile mat^T` for `LANES` tiles at once. Inlined with `mat` a constant, the zero
/// coefficients (most of them) drop out.
#[inline(always)]
fn transform<const ROWS: usize, const COLS: usize>(
    mat: &[[f32; COLS]; ROWS],
    tile: &[[Lanes; COLS]; COLS],
) -> [[Lanes; ROWS]; ROWS] {
    let mut half = [[[0.0; LANES]; COLS]; ROWS];
    for (half_row, coefficients) in half.iter_mut().zip(mat) {
        for (j, half) in half_row.iter_mut().enumerate() {
            *half = combine(coefficients.iter().zip(tile).map(|(&c, tile_row)| (c, &tile_row[j])));
        }
    }
    let mut out = [[[0.0; LANES]; ROWS]; ROWS];
    for (out_row, half_row) in out.iter_mut().zip(&half) {
        for (out, coefficients) in out_row.iter_mut().zip(mat) {
            *out = combine(coefficients.iter().zip(half_row).map(|(&c, v)| (c, v)));
        }
    }
    out
}

/// `sum of c * v` over the pairs whose `c` is not zero.
#[inline(always)]
fn combine<'a>(terms: impl Iterator<Item = (f32, &'a Lanes)>) -> Lanes {
    let mut sum = [0.0; LANES];
    for (c, values) in terms {
        if c != 0.0 {
            sum.iter_mut().zip(values).for_each(|(s, v)| *s += c * v);
        }
    }
    sum
}

/// The first `lanes` of `values` into `dst` (whole registers when all are used).
#[inline(always)]
fn store(dst: &mut [MaybeUninit<f32>], values: &Lanes, lanes: usize) {
    if lanes == LANES {
        let dst: &mut [MaybeUninit<f32>; LANES] = (&mut dst[..LANES]).try_into().expect("LANES values");
        *dst = values.map(MaybeUninit::new);
    } else {
        dst.iter_mut().zip(&values[..lanes]).for_each(|(d, &v)| *d = MaybeUninit::new(v));
    }
}

/// The first `lanes` of `src` into `values`.
#[inline(always)]
fn load(values: &mut Lanes, src: &[f32], lanes: usize) {
    if lanes == LANES {
        *values = src[..LANES].try_into().expect("LANES values");
    } else {
        values[..lanes].copy_from_slice(&src[..lanes]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page runs Winograd's algorithm on one image at a time (`MIN_IMAGES` in wasm), the tests
    /// against Burn (tests/cpu.rs) on batches: each image alone must give its part of the batch.
    #[test]
    fn one_image_alone_gives_its_part_of_a_batch() {
        let values = |len: usize, seed: usize| -> Vec<f32> {
            (0..len).map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0).collect()
        };
        for (algorithm, kernel, groups) in [(Algorithm::F4x3, 3, 1), (Algorithm::F2x5, 5, 2)] {
            let shape = ConvShape {
                batch: 4,
                in_channels: 6,
                in_size: [13, 11],
                out_channels: 8,
                kernel: [kernel; 2],
                stride: [1, 1],
                padding: [kernel / 2; 2],
                groups,
            };
            let (x, bias) = (values(4 * shape.in_len(), 1), values(8, 3));
            let weight = values(8 * 6 / groups * kernel * kernel, 2);
            let batch =
                convolve(&x, &weight, Weights::AsStored, &shape, Epilogue::BiasRelu(&bias), algorithm);
            let one = ConvShape { batch: 1, ..shape };
            for (image, want) in x.chunks(shape.in_len()).zip(batch.chunks(shape.out_len())) {
                let got =
                    convolve(image, &weight, Weights::AsStored, &one, Epilogue::BiasRelu(&bias), algorithm);
                let worst = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
                assert!(worst <= 1e-5, "{kernel}x{kernel}: one image differs from its batch by {worst}");
                assert!(want.iter().any(|v| *v > 0.0), "{kernel}x{kernel}: all cut by the ReLU");
            }
        }
    }
}
