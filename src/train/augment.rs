//! Training-time augmentation (paper section 4.1): random 224 crops of the central 256x256,
//! horizontal flips, and "fancy PCA" lighting. Evaluation uses `crate::preprocess` unchanged.

use crate::preprocess::{self, Normalization, RESIZE_SIZE};
use crate::INPUT_SIZE;
use image::RgbImage;
use rand::Rng;

/// Eigenvalues of ImageNet's RGB covariance (pixels in [0, 1]), as fb.resnet.torch uses them.
pub const PCA_EIGVAL: [f32; 3] = [0.2175, 0.0188, 0.0045];
/// The matching eigenvectors, one per row.
pub const PCA_EIGVEC: [[f32; 3]; 3] =
    [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]];
/// Standard deviation of the per-image lighting coefficients (paper: 0.1).
pub const PCA_ALPHA_STD: f32 = 0.1;

/// The deterministic part of the training transform, worth caching: shorter side to 256, then the
/// central 256x256 square.
pub fn train_base(image: &RgbImage) -> RgbImage {
    let resized = preprocess::resize_shorter_side(image, RESIZE_SIZE);
    let (left, top) = preprocess::center_crop_origin(resized.width(), resized.height(), RESIZE_SIZE);
    preprocess::crop(&resized, left, top, RESIZE_SIZE)
}

/// A standard normal sample (Box-Muller).
pub fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// The RGB shift added to every pixel of one image: `eigvec @ (alpha * eigval)`, alpha ~ N(0, 0.1).
pub fn lighting_shift(rng: &mut impl Rng) -> [f32; 3] {
    let alpha: [f32; 3] = std::array::from_fn(|_| standard_normal(rng) * PCA_ALPHA_STD);
    std::array::from_fn(|c| (0..3).map(|j| PCA_EIGVEC[c][j] * alpha[j] * PCA_EIGVAL[j]).sum())
}

/// A random `size` crop, mirrored left-right with probability 1/2.
pub fn random_crop_flip(image: &RgbImage, size: u32, rng: &mut impl Rng) -> RgbImage {
    let left = rng.random_range(0..=image.width().saturating_sub(size));
    let top = rng.random_range(0..=image.height().saturating_sub(size));
    let crop = preprocess::crop(image, left, top, size);
    if rng.random_bool(0.5) {
        image::imageops::flip_horizontal(&crop)
    } else {
        crop
    }
}

/// A random crop of between `min_area` and all of the image's area, of aspect ratio between 3:4
/// and 4:3, resized to `size` and mirrored with probability 1/2 (the "random-resized crop" of
/// Szegedy et al. 2015, as torchvision's ImageNet recipe uses it). Scale changes that the paper's
/// fixed-size crops never show the network.
pub fn random_resized_crop_flip(image: &RgbImage, size: u32, min_area: f32, rng: &mut impl Rng) -> RgbImage {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let area = w * h * rng.random_range(min_area.clamp(0.01, 1.0)..=1.0);
    let aspect = rng.random_range((3f32 / 4.0).ln()..=(4f32 / 3.0).ln()).exp();
    let crop_w = ((area * aspect).sqrt().round() as u32).clamp(1, image.width());
    let crop_h = ((area / aspect).sqrt().round() as u32).clamp(1, image.height());
    let left = rng.random_range(0..=image.width() - crop_w);
    let top = rng.random_range(0..=image.height() - crop_h);
    let crop = image::imageops::crop_imm(image, left, top, crop_w, crop_h).to_image();
    let resized = image::imageops::resize(&crop, size, size, image::imageops::FilterType::Triangle);
    if rng.random_bool(0.5) {
        image::imageops::flip_horizontal(&resized)
    } else {
        resized
    }
}

/// The full training transform on a [`train_base`] image: a normalised `[3, 224, 224]` input.
/// `min_crop_area`: random-resized crops of at least that share of the image; `None`: the
/// paper's 224x224 crops.
pub fn train_transform(
    base: &RgbImage,
    norm: &Normalization,
    min_crop_area: Option<f32>,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let size = INPUT_SIZE as u32;
    let crop = match min_crop_area {
        Some(min_area) => random_resized_crop_flip(base, size, min_area, rng),
        None => random_crop_flip(base, size, rng),
    };
    preprocess::to_chw_shifted(&crop, norm, lighting_shift(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn lighting_shift_has_the_pca_statistics() {
        let mut rng = StdRng::seed_from_u64(1);
        let n = 100_000;
        let shifts: Vec<[f32; 3]> = (0..n).map(|_| lighting_shift(&mut rng)).collect();
        // Covariance of the shift: V diag((0.1 * eigval)^2) V^T.
        for a in 0..3 {
            let mean = shifts.iter().map(|s| s[a] as f64).sum::<f64>() / n as f64;
            assert!(mean.abs() < 2e-4, "channel {a} mean {mean}");
            for b in 0..3 {
                let cov = shifts.iter().map(|s| s[a] as f64 * s[b] as f64).sum::<f64>() / n as f64;
                let expected: f64 = (0..3)
                    .map(|j| {
                        let var = (PCA_ALPHA_STD * PCA_EIGVAL[j]) as f64;
                        PCA_EIGVEC[a][j] as f64 * PCA_EIGVEC[b][j] as f64 * var * var
                    })
                    .sum();
                assert!((cov - expected).abs() < 0.03 * 4.9e-4, "cov[{a}][{b}] {cov} vs {expected}");
            }
        }
        // The dominant direction is the brightness-like first eigenvector: channels move together.
        let corr_rg = shifts.iter().map(|s| (s[0] * s[1]) as f64).sum::<f64>();
        assert!(corr_rg > 0.0);
    }

    #[test]
    fn crops_stay_inside_and_flips_happen_half_the_time() {
        let image = RgbImage::from_fn(256, 256, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let mut rng = StdRng::seed_from_u64(7);
        let (mut flips, mut lefts) = (0, std::collections::BTreeSet::new());
        for _ in 0..2000 {
            let crop = random_crop_flip(&image, 224, &mut rng);
            assert_eq!(crop.dimensions(), (224, 224));
            let (first, last) = (crop.get_pixel(0, 0)[0], crop.get_pixel(223, 0)[0]);
            if first > last {
                flips += 1;
            }
            let left = first.min(last) as u32;
            assert!(left <= 32);
            lefts.insert(left);
            // Rows are never mirrored vertically.
            assert!(crop.get_pixel(0, 0)[1] < crop.get_pixel(0, 223)[1]);
        }
        assert!((900..1100).contains(&flips), "{flips} flips out of 2000");
        assert_eq!(lefts.len(), 33, "every horizontal offset 0..=32 occurs");
    }

    #[test]
    fn resized_crops_vary_in_scale_and_keep_their_size() {
        // Columns numbered left to right: a crop's width shows as the spread of its first row.
        let image = RgbImage::from_fn(256, 256, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let mut rng = StdRng::seed_from_u64(3);
        let spans: Vec<u8> = (0..200)
            .map(|_| {
                let crop = random_resized_crop_flip(&image, 224, 0.25, &mut rng);
                assert_eq!(crop.dimensions(), (224, 224));
                let (first, last) = (crop.get_pixel(0, 0)[0], crop.get_pixel(223, 0)[0]);
                first.abs_diff(last)
            })
            .collect();
        // At least a quarter of the area with aspect <= 4:3: widths from ~111 to 256 pixels.
        assert!(spans.iter().all(|&s| s >= 100), "{:?}", spans.iter().min());
        assert!(spans.iter().any(|&s| s < 140) && spans.iter().any(|&s| s > 240));
    }

    #[test]
    fn train_base_is_the_central_square() {
        let image = RgbImage::from_fn(512, 256, |x, _| image::Rgb([(x / 2) as u8, 0, 0]));
        let base = train_base(&image);
        assert_eq!(base.dimensions(), (256, 256));
        // 512 wide -> 512 (already 256 high), central square starts at x = 128.
        assert_eq!(base.get_pixel(0, 0)[0], 64);
    }
}
