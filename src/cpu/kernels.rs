//! Which of gemm's f32 micro-kernels run our products on x86-64: AVX-512 where the cores run
//! 512-bit instructions at full width (Intel's server cores, AMD from Zen 5 on), AVX2+FMA where
//! the CPU has no AVX-512. AMD's Zen 4 splits each 512-bit instruction into two 256-bit halves;
//! there gemm's AVX-512 kernels win most of AlexNet's products but take twice AVX2's time on the
//! narrow, long ones of the fc layers in training (batch-wide, over thousands of inputs, split
//! across threads), so Zen 4 mixes the two by shape (BENCHMARKS.md has the figures of each kind).
//! gemm itself takes AVX-512 wherever the CPU has it once its `x86-v4` feature is on, so on
//! x86-64 we call its kernels through `gemm_basic_generic` ourselves.
//! `ALEXNET_CPU_KERNELS=avx2|avx512|mixed` overrides the choice (to compare them on one machine).
//! Other targets (wasm32, aarch64) go through `gemm::gemm`, which picks their kernels.

use std::sync::OnceLock;

/// The micro-kernels chosen for this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// gemm's own choice (targets other than x86-64).
    Gemm,
    Avx2Fma,
    Avx512,
    /// AVX-512 but for [`narrow`] products, which take AVX2+FMA (Zen 4).
    Mixed,
}

#[cfg(target_arch = "x86_64")]
/// A product at most 32 columns wide over at least 256 inputs (its destination laid out
/// column-major): fc layers' products at a training batch of 32 or less.
pub fn narrow([_, n, k]: [usize; 3]) -> bool {
    n <= 32 && k >= 256
}

impl Kernels {
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Gemm => "gemm's default",
            Kernels::Avx2Fma => "AVX2+FMA",
            Kernels::Avx512 => "AVX-512",
            Kernels::Mixed => "AVX-512 (AVX2+FMA for narrow products)",
        }
    }
}

/// The kernels every product on this machine uses, chosen once.
pub fn chosen() -> Kernels {
    static CHOSEN: OnceLock<Kernels> = OnceLock::new();
    *CHOSEN.get_or_init(|| choose(std::env::var("ALEXNET_CPU_KERNELS").ok().as_deref()))
}

#[cfg(target_arch = "x86_64")]
fn choose(requested: Option<&str>) -> Kernels {
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    let fma = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    match requested {
        Some("avx512") if avx512 => Kernels::Avx512,
        Some("avx2") if fma => Kernels::Avx2Fma,
        Some("mixed") if avx512 && fma => Kernels::Mixed,
        _ if avx512 && full_width_avx512() => Kernels::Avx512,
        _ if avx512 && fma => Kernels::Mixed,
        _ if fma => Kernels::Avx2Fma,
        // An x86-64 CPU older than Haswell: gemm's scalar or SSE kernels.
        _ => Kernels::Gemm,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn choose(_requested: Option<&str>) -> Kernels {
    Kernels::Gemm
}

/// Whether the cores run AVX-512 at full width: all but AMD's before Zen 5 (CPU family 0x1A).
#[cfg(target_arch = "x86_64")]
fn full_width_avx512() -> bool {
    // `__cpuid` is a safe function in newer Rust releases.
    #[allow(unused_unsafe)]
    let (vendor, signature) = unsafe { (std::arch::x86_64::__cpuid(0), std::arch::x86_64::__cpuid(1).eax) };
    // Leaf 0 names the vendor in ebx, edx, ecx: "Auth" "enti" "cAMD".
    let amd = [vendor.ebx, vendor.edx, vendor.ecx].map(u32::to_le_bytes).concat() == b"AuthenticAMD";
    // Leaf 1: the base family in bits 8-11, extended by bits 20-27 when it reads 0xF.
    let base = (signature >> 8) & 0xF;
    let family = if base == 0xF { base + ((signature >> 20) & 0xFF) } else { base };
    !amd || family >= 0x1A
}

/// `gemm::gemm` for f32 with this machine's kernels. Arguments as gemm's: dimensions, then the
/// destination, lhs and rhs as pointers with column and row strides.
///
/// # Safety
/// As `gemm::gemm`: every element addressed by the dimensions and strides lies inside its
/// buffer, `dst` overlaps neither operand, and `dst` is initialised if `read_dst`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm(
    [m, n, k]: [usize; 3],
    dst: *mut f32,
    [dst_cs, dst_rs]: [isize; 2],
    read_dst: bool,
    lhs: *const f32,
    [lhs_cs, lhs_rs]: [isize; 2],
    rhs: *const f32,
    [rhs_cs, rhs_rs]: [isize; 2],
    parallelism: gemm::Parallelism,
) {
    #[cfg(target_arch = "x86_64")]
    if chosen() != Kernels::Gemm {
        // The kernels prefer a column-major destination: for a row-major one compute the
        // transposed product, as `gemm::gemm` does.
        let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if dst_cs.abs() < dst_rs.abs()
        {
            (n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs)
        } else {
            (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
        };
        // SAFETY: as this function's contract; the kernels' instruction sets were detected.
        unsafe {
            x86::gemm(
                chosen(),
                [m, n, k],
                dst,
                [dst_cs, dst_rs],
                read_dst,
                lhs,
                [lhs_cs, lhs_rs],
                rhs,
                [rhs_cs, rhs_rs],
                parallelism,
            )
        };
        return;
    }
    // SAFETY: as this function's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            read_dst,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use gemm_common::gemm::gemm_basic_generic;
    use gemm_common::simd::{MixedSimd, V3, V4};

    use super::Kernels;

    /// One kernel family's product: its SIMD token, lanes per register, and micro-kernels, as
    /// gemm's own dispatch passes them.
    macro_rules! product {
        ($simd:ty, $family:ident, $lanes:expr, $args:expr) => {{
            use gemm_f32::microkernel::$family::f32::{H_M, H_N, H_UKR, MR_DIV_N, NR, UKR};
            const LANES: usize = $lanes;
            const MR: usize = MR_DIV_N * LANES;
            let simd = <$simd as MixedSimd<f32, f32, f32, f32>>::try_new().expect("detected when chosen");
            let (
                [m, n, k],
                dst,
                [dst_cs, dst_rs],
                read_dst,
                lhs,
                [lhs_cs, lhs_rs],
                rhs,
                [rhs_cs, rhs_rs],
                par,
            ) = $args;
            gemm_basic_generic::<_, f32, LANES, MR, NR, MR_DIV_N, H_M, H_N>(
                simd,
                m,
                n,
                k,
                dst,
                dst_cs,
                dst_rs,
                read_dst,
                lhs,
                lhs_cs,
                lhs_rs,
                rhs,
                rhs_cs,
                rhs_rs,
                1.0,
                1.0,
                false,
                false,
                false,
                |a, b, c| a * b + c,
                &UKR,
                &H_UKR,
                false,
                par,
            )
        }};
    }

    /// # Safety
    /// As [`super::gemm`], with a column-major-preferring layout already chosen.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm(
        kernels: Kernels,
        mnk: [usize; 3],
        dst: *mut f32,
        dst_strides: [isize; 2],
        read_dst: bool,
        lhs: *const f32,
        lhs_strides: [isize; 2],
        rhs: *const f32,
        rhs_strides: [isize; 2],
        parallelism: gemm::Parallelism,
    ) {
        let args = (mnk, dst, dst_strides, read_dst, lhs, lhs_strides, rhs, rhs_strides, parallelism);
        let avx512 = match kernels {
            Kernels::Avx512 => true,
            Kernels::Mixed => !super::narrow(mnk),
            _ => false,
        };
        // SAFETY: as this function's contract.
        unsafe {
            if avx512 {
                product!(V4, avx512f, 16, args)
            } else {
                product!(V3, fma, 8, args)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lhs x rhs` (row-major `[m, k]` and `[k, n]`) summed in f64: the reference.
    fn naive(lhs: &[f32], rhs: &[f32], [m, n, k]: [usize; 3]) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] =
                    (0..k).map(|p| lhs[i * k + p] as f64 * rhs[p * n + j] as f64).sum::<f64>() as f32;
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn both_kernel_families_give_the_reference_product() {
        let mut families = vec![];
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            families.push(Kernels::Avx2Fma);
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            families.extend([Kernels::Avx512, Kernels::Mixed]);
        }
        // Shapes around the kernels' tiles (8 or 16 lanes, up to 4 x 6 registers), a vector
        // times a matrix, and fc6's shape at batch 2.
        let shapes = [
            [1, 1, 1],
            [3, 5, 7],
            [17, 33, 9],
            [64, 96, 121],
            [1, 300, 50],
            [200, 1, 30],
            [2, 1024, 2304],
            [32, 300, 1000],
        ];
        for kernels in families {
            for [m, n, k] in shapes {
                let (lhs, rhs) = (values(m * k, 1), values(k * n, 2));
                let want = naive(&lhs, &rhs, [m, n, k]);
                for parallelism in [gemm::Parallelism::None, gemm::Parallelism::Rayon(2)] {
                    let mut got = vec![f32::NAN; m * n];
                    // SAFETY: row-major operands and destination of exactly these sizes, the
                    // product transposed as `gemm` lays it out.
                    unsafe {
                        x86::gemm(
                            kernels,
                            [n, m, k],
                            got.as_mut_ptr(),
                            [n as isize, 1],
                            false,
                            rhs.as_ptr(),
                            [n as isize, 1],
                            lhs.as_ptr(),
                            [k as isize, 1],
                            parallelism,
                        )
                    };
                    let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
                    assert!(worst <= 1e-6 * (k + 1) as f32, "{kernels:?} {m}x{n}x{k}: off by {worst}");
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_request_is_honoured_only_where_the_cpu_can() {
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        assert_eq!(choose(Some("avx512")) == Kernels::Avx512, avx512);
        assert_eq!(choose(Some("avx2")), Kernels::Avx2Fma);
        assert_eq!(choose(Some("mixed")) == Kernels::Mixed, avx512);
        assert_eq!(choose(Some("nonsense")), choose(None));
        assert_eq!(choose(None) == Kernels::Avx512, avx512 && full_width_avx512());
        assert_eq!(choose(None) == Kernels::Mixed, avx512 && !full_width_avx512());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn narrow_products_are_the_fc_layers_at_a_training_batch() {
        // fc6's weight gradient at batch 32 (destination column-major: n is the batch) ...
        assert!(narrow([9216, 32, 4096]));
        // ... but not conv1's products, nor fc6's forward product at batch 32.
        assert!(!narrow([2352, 24, 64]) && !narrow([4096, 9216, 32]));
    }
}
