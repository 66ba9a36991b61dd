//! Convolution + bias + ReLU on plain `f32` slices, and its gradients: per group, the input
//! patches are laid out as columns (im2col) and multiplied by the weights in one matrix product
//! (the `gemm` crate, the same one Burn's Flex backend uses) per task: a block of an image's
//! output rows (large maps, or one image shared by several threads), or a run of images side by
//! side (13x13 maps).
//!
//! What this saves over Flex's general convolution (burn-flex 0.21, `conv3d_impl`): the weights
//! are used as stored (`[out, in/groups * kh * kw]` is already the matrix), the input is read in
//! place (NCHW, no copy to NHWC), one patch buffer per thread instead of one per 512-pixel tile,
//! bias and ReLU are one pass over the product as it goes to the output, and the gradient
//! is two matrix products (weights; input, then col2im) per block of images side by side,
//! threads sharing out the images, instead of a general transposed convolution with a serial
//! col2im.
//!
//! Stride-1 3x3 and 5x5 layers at batch 4 and up (conv2..conv5 in training and batched
//! inference) go to `winograd.rs` instead, forward and backward.

use rayon::prelude::*;

use super::gradients::Gradients;
use super::matrix::{matmul, matmul_into, Accumulate, Matrix};
use super::winograd::{self, Algorithm, Epilogue, Weights};

/// The sizes of one convolution: NCHW input, square-or-not kernel, symmetric padding, groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub in_size: [usize; 2],
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub groups: usize,
}

impl ConvShape {
    /// Output height and width.
    pub fn out_size(&self) -> [usize; 2] {
        [0, 1].map(|d| (self.in_size[d] + 2 * self.padding[d] - self.kernel[d]) / self.stride[d] + 1)
    }

    pub fn in_len(&self) -> usize {
        self.in_channels * self.in_size[0] * self.in_size[1]
    }

    fn pixels_out(&self) -> usize {
        let [h, w] = self.out_size();
        h * w
    }

    pub fn out_len(&self) -> usize {
        self.out_channels * self.pixels_out()
    }

    /// Inputs one output value sees: the rows of the patch matrix.
    fn patch_len(&self) -> usize {
        self.in_channels / self.groups * self.kernel[0] * self.kernel[1]
    }

    fn out_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    /// The convolution that takes the gradient at this one's output back to its input, for
    /// stride 1 and padding narrower than the kernel: in and out swapped, the padding `k - 1 - p`.
    fn of_gradient(&self) -> Option<Self> {
        let fits = self.stride == [1, 1] && (0..2).all(|d| self.padding[d] < self.kernel[d]);
        fits.then(|| Self {
            in_channels: self.out_channels,
            in_size: self.out_size(),
            out_channels: self.in_channels,
            padding: [0, 1].map(|d| self.kernel[d] - 1 - self.padding[d]),
            ..*self
        })
    }

    /// One group's weights as a `[out/groups, patch_len]` matrix.
    fn group_weights<'a>(&self, weight: &'a [f32], group: usize) -> Matrix<'a> {
        let (rows, cols) = (self.out_per_group(), self.patch_len());
        Matrix::row_major(&weight[group * rows * cols..][..rows * cols], rows, cols)
    }
}

/// `relu(conv(x, weight) + bias)`, NCHW in and out.
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], shape: &ConvShape) -> Vec<f32> {
    if let Some(w) = Algorithm::for_shape(shape) {
        return winograd::convolve(x, weight, Weights::AsStored, shape, Epilogue::BiasRelu(bias), w);
    }
    let ([out_h, out_w], patch, pixels) = (shape.out_size(), shape.patch_len(), shape.pixels_out());
    let (run, rows) = forward_tasks(shape);
    let len = shape.batch * shape.out_len();
    let mut out = Vec::with_capacity(len);
    // Tasks: runs of images side by side, or blocks of output rows of one image, each task its
    // own patch matrix and product.
    let runs = out.spare_capacity_mut()[..len].par_chunks_mut(run * shape.out_len());
    runs.zip(x.par_chunks(run * shape.in_len())).for_each(|(outs, images)| {
        let count = images.len() / shape.in_len();
        let blocks: Vec<(std::ops::Range<usize>, Vec<f32>)> = (0..out_h)
            .step_by(rows)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map_init(
                || vec![0.0; patch * run * rows * out_w],
                |columns, first| {
                    let block = first..out_h.min(first + rows);
                    let (block_len, width) = (block.len() * out_w, count * block.len() * out_w);
                    let columns = &mut columns[..patch * width];
                    let len = shape.out_channels * width;
                    let mut products = Vec::with_capacity(len);
                    let groups = products.spare_capacity_mut()[..len].chunks_mut(len / shape.groups);
                    for (group, products) in groups.enumerate() {
                        for (i, image) in images.chunks(shape.in_len()).enumerate() {
                            im2col(image, group, shape, columns, (width, i * block_len), block.clone());
                        }
                        let weights = shape.group_weights(weight, group);
                        let columns = Matrix::row_major(columns, patch, width);
                        matmul_into(products, weights, columns, gemm::Parallelism::None);
                    }
                    // SAFETY: each group's product wrote its share of the `len` values.
                    unsafe { products.set_len(len) };
                    (block, products)
                },
            )
            .collect();
        for (block, products) in blocks {
            let (pixel_range, width) =
                (block.start * out_w..block.end * out_w, products.len() / shape.out_channels);
            for (i, out) in outs.chunks_mut(shape.out_len()).enumerate() {
                let outs = out.chunks_mut(pixels).map(|channel| &mut channel[pixel_range.clone()]);
                for (c, (out, &b)) in outs.zip(bias).enumerate() {
                    let products = &products[c * width + i * pixel_range.len()..][..pixel_range.len()];
                    for (out, &product) in out.iter_mut().zip(products) {
                        out.write(relu(product + b));
                    }
                }
            }
        }
    });
    // SAFETY: the blocks of each run cover all its output rows, each for every image and channel.
    unsafe { out.set_len(len) };
    out
}

/// How the forward pass shares out its work: `(images, rows)`, runs of `images` side by side
/// in one product, each cut into blocks of `rows` output rows. Products narrower than
/// [`MIN_PRODUCT_WIDTH`] pixels run slower: a 13x13 map alone gives only 169, so such images go
/// in runs. Larger maps go one image at a time, cut into blocks small enough that a block's
/// patch matrix stays in a core's cache (written by im2col, read at once by the product: conv1
/// gains) but at least that wide, and for fewer images than threads, enough blocks per image
/// for every thread.
fn forward_tasks(shape: &ConvShape) -> (usize, usize) {
    let ([out_h, out_w], threads) = (shape.out_size(), rayon::current_num_threads());
    let images = MIN_PRODUCT_WIDTH.div_ceil(shape.pixels_out()).min(shape.batch.div_ceil(threads)).max(1);
    if images > 1 {
        return (images, out_h);
    }
    let fits = (PATCH_BLOCK_FLOATS / (shape.patch_len() * out_w)).max(MIN_PRODUCT_WIDTH.div_ceil(out_w));
    let blocks_per_image = threads.div_ceil(shape.batch.max(1));
    let blocks = out_h.div_ceil(fits.max(1)).next_multiple_of(blocks_per_image);
    (1, out_h.div_ceil(blocks).max(1))
}

const MIN_PRODUCT_WIDTH: usize = 256;
const PATCH_BLOCK_FLOATS: usize = 128 * 1024;

/// Gradients of [`forward`]: `output` is its result and `grad_output` the gradient there. The
/// input's gradient only when `input_gradient` (conv1's input, the images, needs none).
pub fn backward(
    x: &[f32],
    weight: &[f32],
    output: &[f32],
    grad_output: &[f32],
    shape: &ConvShape,
    input_gradient: bool,
) -> Gradients {
    let gradient_shape = shape.of_gradient().filter(|_| input_gradient);
    if let Some(algorithm) =
        Algorithm::for_shape(shape).filter(|_| gradient_shape.is_some() || !input_gradient)
    {
        return backward_by_winograd(x, weight, output, grad_output, shape, gradient_shape, algorithm);
    }
    let pixels = shape.pixels_out();
    // Each worker takes a run of images and sums its own weight and bias gradients; the runs
    // are added at the end. The input gradient of each image is its own slice: no sharing.
    let split = Split::of(shape.batch);
    let run = split.images_per_run(shape.batch);
    // Within a run, blocks of images side by side in one patch matrix: one matrix product per
    // block, with ~1,500 columns, instead of one per image (13x13 maps have only 169).
    let block = (1536 / pixels).clamp(1, run);
    let mut grad_input = vec![0.0; if input_gradient { shape.batch * shape.in_len() } else { 0 }];
    let mut grad_input_runs: Vec<Option<&mut [f32]>> = if input_gradient {
        grad_input.chunks_mut(run * shape.in_len()).map(Some).collect()
    } else {
        (0..shape.batch.div_ceil(run)).map(|_| None).collect()
    };
    let image_runs = x.par_chunks(run * shape.in_len());
    let output_runs =
        output.par_chunks(run * shape.out_len()).zip(grad_output.par_chunks(run * shape.out_len()));
    let (weight_grad, bias) = image_runs
        .zip(output_runs)
        .zip(grad_input_runs.par_iter_mut())
        .map(|((images, (outputs, grad_outputs)), grad_inputs)| {
            let images = ImageRun { images, outputs, grad_outputs, grad_inputs: grad_inputs.as_deref_mut() };
            backward_run(images, weight, shape, block, split.inside)
        })
        .reduce(
            || (vec![0.0; weight.len()], vec![0.0; shape.out_channels]),
            |a, b| (add(a.0, b.0), add(a.1, b.1)),
        );
    Gradients { input: input_gradient.then_some(grad_input), weight: weight_grad, bias }
}

/// One worker's run of images in [`backward`]: their inputs, outputs and output gradients, and
/// where their input gradients go (when asked for).
struct ImageRun<'a> {
    images: &'a [f32],
    outputs: &'a [f32],
    grad_outputs: &'a [f32],
    grad_inputs: Option<&'a mut [f32]>,
}

/// A run's weight and bias gradients (and its input gradients, into the run), `block` images at
/// a time side by side in one patch matrix.
fn backward_run(
    run: ImageRun,
    weight: &[f32],
    shape: &ConvShape,
    block: usize,
    inside: gemm::Parallelism,
) -> (Vec<f32>, Vec<f32>) {
    let ImageRun { images, outputs, grad_outputs, mut grad_inputs } = run;
    let (pixels, patch, out_per_group) = (shape.pixels_out(), shape.patch_len(), shape.out_per_group());
    let (mut weight_grad, mut bias) = (vec![0.0; weight.len()], vec![0.0; shape.out_channels]);
    let mut columns = vec![0.0; patch * block * pixels];
    let mut grads = vec![0.0; out_per_group * block * pixels];
    for (index, images) in images.chunks(block * shape.in_len()).enumerate() {
        let count = images.len() / shape.in_len();
        let width = count * pixels;
        let out_block = index * block * shape.out_len()..(index * block + count) * shape.out_len();
        let (outputs, grad_outputs) = (&outputs[out_block.clone()], &grad_outputs[out_block]);
        for group in 0..shape.groups {
            for (i, image) in images.chunks(shape.in_len()).enumerate() {
                im2col(image, group, shape, &mut columns, (width, i * pixels), 0..shape.out_size()[0]);
                // Through the ReLU into row c, columns of image i, of the block's gradient matrix.
                for c in 0..out_per_group {
                    let channel = group * out_per_group + c;
                    let from = (i * shape.out_channels + channel) * pixels..;
                    let into = &mut grads[c * width + i * pixels..][..pixels];
                    let pairs = outputs[from.clone()].iter().zip(&grad_outputs[from]);
                    for (g, (&y, &dy)) in into.iter_mut().zip(pairs) {
                        *g = through_relu(y, dy);
                    }
                    bias[channel] += into.iter().sum::<f32>();
                }
            }
            let grads = Matrix::row_major(&grads, out_per_group, width);
            // dW_g += dY [out/g, columns] x patches^T [columns, patch]
            let weights = out_per_group * patch;
            let patches = Matrix::row_major(&columns, patch, width).transposed();
            matmul(&mut weight_grad[group * weights..][..weights], Accumulate::Yes, grads, patches, inside);
            if let Some(grad_inputs) = grad_inputs.as_deref_mut() {
                // d patches = W_g^T [patch, out/g] x dY [out/g, columns], back to pixels.
                let weights = shape.group_weights(weight, group).transposed();
                matmul(&mut columns[..patch * width], Accumulate::No, weights, grads, inside);
                let first = index * block * shape.in_len();
                for (i, grad_input) in
                    grad_inputs[first..][..images.len()].chunks_mut(shape.in_len()).enumerate()
                {
                    col2im(&columns, group, shape, grad_input, width, i * pixels);
                }
            }
        }
    }
    (weight_grad, bias)
}

/// [`backward`] by Winograd's algorithm: the input's gradient as the convolution `gradient_shape`
/// of the output's gradient (when asked for), the weights' from the same tiles as the forward's.
fn backward_by_winograd(
    x: &[f32],
    weight: &[f32],
    output: &[f32],
    grad_output: &[f32],
    shape: &ConvShape,
    gradient_shape: Option<ConvShape>,
    algorithm: Algorithm,
) -> Gradients {
    let grad_z: Vec<f32> = output.par_iter().zip(grad_output).map(|(&y, &dy)| through_relu(y, dy)).collect();
    let mut bias = vec![0.0; shape.out_channels];
    for (plane, values) in grad_z.chunks(shape.pixels_out()).enumerate() {
        bias[plane % shape.out_channels] += values.iter().sum::<f32>();
    }
    let input = gradient_shape.map(|gradient_shape| {
        let plain = Epilogue::Plain;
        winograd::convolve(&grad_z, weight, Weights::OfGradient, &gradient_shape, plain, algorithm)
    });
    let weight = winograd::weight_gradient(x, &grad_z, shape, algorithm);
    Gradients { input, weight, bias }
}

/// ReLU, but a NaN stays NaN (not `max`), so a diverged network still shows a NaN loss.
pub(super) fn relu(z: f32) -> f32 {
    if z < 0.0 {
        0.0
    } else {
        z
    }
}

/// The gradient `dy` at a ReLU's output `y`, taken to its input: it flows where `y` is positive.
fn through_relu(y: f32, dy: f32) -> f32 {
    if y > 0.0 {
        dy
    } else {
        0.0
    }
}

fn add(mut a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
    a
}

/// How the work is shared among threads: across images when there are enough of them (one run
/// of images per thread, each with its own buffers), else inside each matrix product (batch 1
/// at inference).
#[derive(Clone, Copy)]
struct Split {
    runs: usize,
    inside: gemm::Parallelism,
}

impl Split {
    fn images_per_run(&self, batch: usize) -> usize {
        batch.div_ceil(self.runs).max(1)
    }

    fn of(batch: usize) -> Self {
        let threads = rayon::current_num_threads();
        if batch >= threads || threads == 1 {
            Self { runs: threads.min(batch).max(1), inside: gemm::Parallelism::None }
        } else {
            Self { runs: 1, inside: gemm::Parallelism::Rayon(threads) }
        }
    }
}

/// For each output pixel `o` of a row and kernel offset `k`, the input pixel is
/// `o * stride + k - padding`: the outputs whose input lies inside `0..len`, and the first input.
fn valid_outputs(
    out_len: usize,
    len: usize,
    stride: usize,
    k: usize,
    padding: usize,
) -> std::ops::Range<usize> {
    let first = padding.saturating_sub(k).div_ceil(stride);
    let end = (len + padding).saturating_sub(k).div_ceil(stride).min(out_len);
    first..end.max(first)
}

/// Writes one image's `group` patches into `columns`, `[patch_len, row_len]`, from column
/// `first` on: row `(channel, i, j)` holds input pixel `(o_h * stride + i - pad, o_w * stride + j -
/// pad)` for every output pixel, zero in the padding.
fn im2col(
    image: &[f32],
    group: usize,
    shape: &ConvShape,
    columns: &mut [f32],
    (row_len, first): (usize, usize),
    out_rows: std::ops::Range<usize>,
) {
    // With a stride (conv1's 4), each input row is first split into its `stride` phases
    // (elements 0, 4, 8...; 1, 5, 9...): the kernel columns that read it then copy runs of one
    // phase instead of each gathering every fourth element.
    let phase_len = shape.in_size[1].div_ceil(shape.stride[1]);
    let (mut phases, mut phased) = (Vec::new(), None);
    walk_patches(group, shape, row_len, first, out_rows, |input_row, columns_row, ow, iw0, stride| {
        let row = &mut columns[columns_row];
        row[..ow.start].fill(0.0);
        row[ow.end..].fill(0.0);
        let input = &image[input_row.clone()];
        match (input_row.is_empty(), stride) {
            (true, _) => row.fill(0.0),
            (false, 1) => row[ow.clone()].copy_from_slice(&input[iw0..][..ow.len()]),
            (false, s) => {
                if phased != Some(input_row.start) {
                    phases.resize(s * phase_len, 0.0);
                    for (start, phase) in phases.chunks_mut(phase_len).enumerate() {
                        phase.iter_mut().zip(input[start..].iter().step_by(s)).for_each(|(p, &v)| *p = v);
                    }
                    phased = Some(input_row.start);
                }
                row[ow.clone()].copy_from_slice(&phases[(iw0 % s) * phase_len + iw0 / s..][..ow.len()]);
            }
        }
    });
}

/// The reverse of [`im2col`]: adds each column entry back onto its input pixel.
fn col2im(columns: &[f32], group: usize, shape: &ConvShape, image: &mut [f32], row_len: usize, first: usize) {
    let out_rows = 0..shape.out_size()[0];
    walk_patches(group, shape, row_len, first, out_rows, |input_row, columns_row, ow, iw0, stride| {
        if input_row.is_empty() {
            return;
        }
        let (row, input) = (&columns[columns_row][ow.clone()], &mut image[input_row]);
        match stride {
            // Contiguous runs (conv2..conv5): vectorised.
            1 => input[iw0..][..row.len()].iter_mut().zip(row).for_each(|(x, v)| *x += v),
            _ => row.iter().enumerate().for_each(|(n, v)| input[iw0 + n * stride] += v),
        }
    });
}

/// Calls `visit(input row, patch-matrix row segment, valid outputs, first input column, stride)`
/// for every (channel, kernel row, kernel column, output row) of one group; the input row range is
/// empty where the kernel row falls into the padding.
fn walk_patches(
    group: usize,
    shape: &ConvShape,
    row_len: usize,
    first: usize,
    out_rows: std::ops::Range<usize>,
    mut visit: impl FnMut(std::ops::Range<usize>, std::ops::Range<usize>, std::ops::Range<usize>, usize, usize),
) {
    let ([h, w], [kh, kw], [sh, sw], [ph, pw]) = (shape.in_size, shape.kernel, shape.stride, shape.padding);
    let out_w = shape.out_size()[1];
    let channels = shape.in_channels / shape.groups;
    // Per kernel column: the output columns whose input lies inside the row, and their first input.
    let spans: Vec<_> = (0..kw)
        .map(|j| {
            let ow = valid_outputs(out_w, w, sw, j, pw);
            let iw0 = (ow.start * sw + j).saturating_sub(pw);
            (ow, iw0)
        })
        .collect();
    // Kernel columns innermost: they read the same input row one after the other.
    for (c, channel) in (group * channels..(group + 1) * channels).enumerate() {
        for i in 0..kh {
            for oh in out_rows.clone() {
                let ih = (oh * sh + i).checked_sub(ph).filter(|&ih| ih < h);
                let input_row = match ih {
                    Some(ih) => (channel * h + ih) * w..(channel * h + ih + 1) * w,
                    None => 0..0,
                };
                for (j, (ow, iw0)) in spans.iter().enumerate() {
                    let row = (c * kh + i) * kw + j;
                    let columns_row = row * row_len + first + (oh - out_rows.start) * out_w;
                    visit(input_row.clone(), columns_row..columns_row + out_w, ow.clone(), *iw0, sw);
                }
            }
        }
    }
}
