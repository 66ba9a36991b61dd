//! The matrix product every CPU layer ends in: `gemm` (the crate Flex uses) behind a checked,
//! safe view of row- or column-major operands, with the kernels `kernels.rs` chose.

use std::mem::MaybeUninit;

use super::kernels;

/// A read-only matrix view: element `(r, c)` at `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix {rows}x{cols} over {} values", data.len());
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// Element `(r, c)` at `data[r * row_stride + c * col_stride]`.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, [row_stride, col_stride]: [usize; 2]) -> Self {
        Self { data, rows, cols, row_stride, col_stride }
    }

    pub fn transposed(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Accumulate {
    Yes,
    No,
}

/// `dst = lhs x rhs` (or `dst += ...`), `dst` row-major `[lhs.rows, rhs.cols]`.
pub fn matmul(
    dst: &mut [f32],
    accumulate: Accumulate,
    lhs: Matrix,
    rhs: Matrix,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: `dst` is initialised, so reading it (when accumulating) is sound.
    unsafe { multiply(dst.as_mut_ptr(), dst.len(), accumulate, lhs, rhs, parallelism) }
}

/// `dst = lhs x rhs` into memory not written yet (the product writes every element, reads none).
pub fn matmul_into(dst: &mut [MaybeUninit<f32>], lhs: Matrix, rhs: Matrix, parallelism: gemm::Parallelism) {
    if lhs.cols == 0 {
        // No terms: every element is zero (gemm would leave them unwritten).
        dst.fill(MaybeUninit::new(0.0));
        return;
    }
    // SAFETY: without accumulating, gemm only writes `dst`.
    unsafe { multiply(dst.as_mut_ptr().cast(), dst.len(), Accumulate::No, lhs, rhs, parallelism) }
}

/// `lhs x rhs` as a new row-major matrix, written once by the product (not zeroed first).
pub fn product(lhs: Matrix, rhs: Matrix, parallelism: gemm::Parallelism) -> Vec<f32> {
    let len = lhs.rows * rhs.cols;
    let mut dst = Vec::with_capacity(len);
    matmul_into(&mut dst.spare_capacity_mut()[..len], lhs, rhs, parallelism);
    // SAFETY: `matmul_into` wrote all `len` elements.
    unsafe { dst.set_len(len) };
    dst
}

/// # Safety
/// `dst` points to `len` writable floats that overlap neither operand, initialised if
/// `accumulate` is `Yes`.
unsafe fn multiply(
    dst: *mut f32,
    len: usize,
    accumulate: Accumulate,
    lhs: Matrix,
    rhs: Matrix,
    parallelism: gemm::Parallelism,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(k, rhs.rows, "inner sizes differ");
    assert_eq!(len, m * n, "destination is not {m}x{n}");
    for a in [lhs, rhs] {
        if a.rows > 0 && a.cols > 0 {
            assert!((a.rows - 1) * a.row_stride + (a.cols - 1) * a.col_stride < a.data.len());
        }
    }
    // SAFETY: the asserts above keep every element gemm reads inside its slice; the caller
    // vouches for `dst`.
    unsafe {
        kernels::gemm(
            [m, n, k],
            dst,
            [1, n as isize],
            accumulate == Accumulate::Yes,
            lhs.data.as_ptr(),
            [lhs.col_stride as isize, lhs.row_stride as isize],
            rhs.data.as_ptr(),
            [rhs.col_stride as isize, rhs.row_stride as isize],
            parallelism,
        )
    }
}
