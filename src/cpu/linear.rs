//! Fully connected layers, `y = x W + b` with Burn's `[inputs, outputs]` weights, on plain `f32`
//! slices, and their gradients. Flex hands the forward product to `gemm`, whose kernel reads the
//! weights a few columns at a time down 16 KB strides, and at batch 1 on one thread only
//! (docs/benchmarks-history.md has the figures). Ours streams each weight row once, eight
//! rows at a time, each thread its own columns: the weights are read from memory once per batch.
//! The gradients are two `gemm` products with the operands laid out as `gemm` reads them well.

use rayon::prelude::*;

use super::gradients::Gradients;
use super::matrix::{product, Matrix};

/// One fully connected layer applied to `batch` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearShape {
    pub batch: usize,
    pub inputs: usize,
    pub outputs: usize,
}

/// Weight rows multiplied per pass over the outputs, and outputs per step: the sums of four input
/// rows for sixteen outputs are eight AVX2 registers, eight chains of multiply-adds in flight
/// (enough to keep both FMA units busy), and fit the sixteen registers with a weight row's
/// vectors and an input. Eight weight rows: rows lie 16 KB apart (4,096 outputs) and share a
/// cache set, which holds eight, so more rows would evict each other. In wasm sixteen outputs
/// are four 128-bit vectors: at batch 1 four chains rather than two (BENCHMARKS.md).
const ROWS: usize = 8;
const LANES: usize = 16;

/// `x [batch, inputs] · weight [inputs, outputs] + bias`, row-major.
pub fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, shape: &LinearShape) -> Vec<f32> {
    let LinearShape { batch, outputs, .. } = *shape;
    // Each thread takes its own columns of every weight row: one long sequential read per row.
    let threads = rayon::current_num_threads().max(1);
    let width = outputs.div_ceil(threads).next_multiple_of(LANES).max(LANES);
    let parts: Vec<(Columns, Vec<f32>)> = (0..outputs)
        .step_by(width)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|first| {
            let columns = Columns::new(first, width.min(outputs - first));
            let mut out = vec![0.0; batch * columns.pitch];
            for row in out.chunks_exact_mut(columns.pitch) {
                if let Some(bias) = bias {
                    row[..columns.width].copy_from_slice(&bias[columns.range()]);
                }
            }
            accumulate(x, weight, shape, &columns, &mut out);
            (columns, out)
        })
        .collect();
    let mut y = vec![0.0; batch * outputs];
    for (columns, part) in parts {
        for (row, part) in y.chunks_exact_mut(outputs).zip(part.chunks_exact(columns.pitch)) {
            row[columns.range()].copy_from_slice(&part[..columns.width]);
        }
    }
    y
}

/// One thread's outputs: `width` columns from `first`, kept `pitch` apart per input row.
struct Columns {
    first: usize,
    width: usize,
    pitch: usize,
}

impl Columns {
    fn new(first: usize, width: usize) -> Self {
        // Rows a power of two apart would share cache sets with each other and with the weight
        // rows (16 KB apart for 4,096 outputs); one cache line more keeps them apart.
        Self { first, width, pitch: width + 16 }
    }

    fn range(&self) -> std::ops::Range<usize> {
        self.first..self.first + self.width
    }
}

/// `out [batch, columns] += x · weight[.., columns]`, with FMA where the CPU has it.
fn accumulate(x: &[f32], weight: &[f32], shape: &LinearShape, columns: &Columns, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { accumulate_avx2_fma(x, weight, shape, columns, out) };
    }
    accumulate_with::<false>(x, weight, shape, columns, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn accumulate_avx2_fma(x: &[f32], weight: &[f32], shape: &LinearShape, columns: &Columns, out: &mut [f32]) {
    accumulate_with::<true>(x, weight, shape, columns, out)
}

#[inline(always)]
fn multiply_add<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The kernel: for each block of `ROWS` weight rows, and each `LANES` outputs of them held in
/// registers, every input row's accumulator takes `ROWS` multiply-adds. The outputs (`batch` x
/// `width`) stay in cache; the weights pass once.
#[inline(always)]
fn accumulate_with<const FMA: bool>(
    x: &[f32],
    weight: &[f32],
    shape: &LinearShape,
    columns: &Columns,
    out: &mut [f32],
) {
    let LinearShape { inputs, outputs, .. } = *shape;
    let &Columns { first, width, pitch } = columns;
    let vectors = width / LANES * LANES;
    let row = |input: usize| &weight[input * outputs + first..][..width];
    // Four input rows at a time: four independent chains of multiply-adds in flight.
    let fours = x.len() / (4 * inputs) * 4;
    let (out4, out1) = out.split_at_mut(fours * pitch);
    let blocks = inputs / ROWS * ROWS;
    // This block's inputs of every row, side by side: input rows lie a power of two apart
    // (9,216 floats for fc6) and would evict each other from the cache.
    let mut block_x = vec![[0.0; ROWS]; x.len() / inputs];
    for start in (0..blocks).step_by(ROWS) {
        let rows: [&[f32]; ROWS] = std::array::from_fn(|r| row(start + r));
        for (block_x, x) in block_x.iter_mut().zip(x.chunks_exact(inputs)) {
            block_x.copy_from_slice(&x[start..start + ROWS]);
        }
        let (x4, x1) = block_x.split_at(fours);
        for column in (0..vectors).step_by(LANES) {
            let w: [&[f32; LANES]; ROWS] =
                std::array::from_fn(|r| rows[r][column..column + LANES].try_into().expect("LANES values"));
            for (x, out) in x4.chunks_exact(4).zip(out4.chunks_exact_mut(4 * pitch)) {
                multiply_rows::<4, FMA>(x.try_into().expect("4 rows"), &w, out, pitch, column);
            }
            for (x, out) in x1.iter().zip(out1.chunks_exact_mut(pitch)) {
                multiply_rows::<1, FMA>(&[*x], &w, out, pitch, column);
            }
        }
        for column in vectors..width {
            let out = out4.chunks_exact_mut(pitch).chain(out1.chunks_exact_mut(pitch));
            for (x, out) in x.chunks_exact(inputs).zip(out) {
                for r in 0..ROWS {
                    out[column] = multiply_add::<FMA>(x[start + r], rows[r][column], out[column]);
                }
            }
        }
    }
    for input in blocks..inputs {
        let w = row(input);
        let out = out4.chunks_exact_mut(pitch).chain(out1.chunks_exact_mut(pitch));
        for (x, out) in x.chunks_exact(inputs).zip(out) {
            for (out, &w) in out.iter_mut().zip(w) {
                *out = multiply_add::<FMA>(x[input], w, *out);
            }
        }
    }
}

/// `N` consecutive rows of `out[.., column..column + LANES] += x · w`.
#[inline(always)]
fn multiply_rows<const N: usize, const FMA: bool>(
    x: &[[f32; ROWS]; N],
    w: &[&[f32; LANES]; ROWS],
    out: &mut [f32],
    pitch: usize,
    column: usize,
) {
    let mut sums: [[f32; LANES]; N] =
        std::array::from_fn(|n| out[n * pitch + column..][..LANES].try_into().expect("LANES values"));
    for r in 0..ROWS {
        for (n, sum) in sums.iter_mut().enumerate() {
            let x = x[n][r];
            for lane in 0..LANES {
                sum[lane] = multiply_add::<FMA>(x, w[r][lane], sum[lane]);
            }
        }
    }
    for (n, sum) in sums.iter().enumerate() {
        out[n * pitch + column..][..LANES].copy_from_slice(sum);
    }
}

/// Gradients of a fully connected layer given its output's gradient `grad [batch, outputs]`.
pub fn backward(x: &[f32], weight: &[f32], grad: &[f32], shape: &LinearShape, input_grad: bool) -> Gradients {
    let LinearShape { batch, inputs, outputs } = *shape;
    let bias = column_sums(grad, outputs);
    let [x, weight, grad] = [(x, batch, inputs), (weight, inputs, outputs), (grad, batch, outputs)]
        .map(|(values, rows, cols)| Matrix::row_major(values, rows, cols));
    let parallel = gemm::Parallelism::Rayon(0);
    let input = input_grad.then(|| product(grad, weight.transposed(), parallel));
    let weight_grad = product(x.transposed(), grad, parallel);
    Gradients { input, weight: weight_grad, bias }
}

fn column_sums(matrix: &[f32], cols: usize) -> Vec<f32> {
    let mut sums = vec![0.0; cols];
    for row in matrix.chunks_exact(cols) {
        sums.iter_mut().zip(row).for_each(|(sum, value)| *sum += value);
    }
    sums
}
