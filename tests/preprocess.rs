//! Decoding and the evaluation transform on awkward inputs.

use alexnet::preprocess::{self, ImageError, Normalization, MAX_PIXELS};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use std::io::Cursor;

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8]))
}

#[test]
fn colour_modes_all_become_rgb() {
    let rgb = gradient(50, 30);
    let grey = DynamicImage::ImageRgb8(rgb.clone()).to_luma8();
    let cases = [
        ("grey", DynamicImage::ImageLuma8(grey.clone())),
        ("grey+alpha", DynamicImage::ImageLumaA8(DynamicImage::ImageLuma8(grey.clone()).to_luma_alpha8())),
        ("rgba", DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(rgb.clone()).to_rgba8())),
        ("rgb16", DynamicImage::ImageRgb16(DynamicImage::ImageRgb8(rgb.clone()).to_rgb16())),
    ];
    for (name, image) in cases {
        let decoded = preprocess::decode(&encode(image, ImageFormat::Png)).unwrap();
        assert_eq!(decoded.dimensions(), (50, 30), "{name}");
        let expected = if name.starts_with("grey") {
            DynamicImage::ImageLuma8(grey.clone()).to_rgb8()
        } else {
            rgb.clone()
        };
        assert_eq!(decoded, expected, "{name}: pixels changed");
    }
}

#[test]
fn cmyk_jpeg_decodes_to_plausible_rgb() {
    // A 60x40 crop of coffee.png saved as CMYK by PIL: a brown cup on a light background.
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cmyk.jpg")).unwrap();
    let image = preprocess::decode(&bytes).unwrap();
    assert_eq!(image.dimensions(), (60, 40));
    let mean: f64 = image.as_raw().iter().map(|&v| v as f64).sum::<f64>() / image.as_raw().len() as f64;
    assert!((40.0..230.0).contains(&mean), "mean {mean}: colours inverted or lost?");
}

#[test]
fn eval_transform_gives_224_square_normalised_input() {
    for (w, h) in [(640, 427), (300, 451), (224, 224), (1, 1), (3000, 20)] {
        let chw = preprocess::eval_transform(&gradient(w, h), &Normalization::IMAGENET);
        assert_eq!(chw.len(), 3 * 224 * 224, "{w}x{h}");
        assert!(chw.iter().all(|v| v.is_finite() && (-2.2..=2.7).contains(v)));
    }
}

#[test]
fn canvas_rgba_matches_decoded_file() {
    let rgb = gradient(64, 48);
    let rgba = DynamicImage::ImageRgb8(rgb.clone()).to_rgba8();
    let from_canvas = preprocess::from_rgba(rgba.as_raw(), 64, 48).unwrap();
    assert_eq!(from_canvas, rgb);
}

/// A PNG whose header claims `width` x `height`, without the pixels: what a decompression bomb
/// looks like before it is inflated.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        png.extend(&body);
        png.extend(crc32fast::hash(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00]); // a zlib stream too short for the pixels
    chunk(b"IEND", &[]);
    png
}

#[test]
fn huge_images_are_refused_before_decoding() {
    let err = preprocess::decode(&png_header_only(20_000, 20_000)).unwrap_err();
    assert_eq!(err, ImageError::TooLarge { width: 20_000, height: 20_000 });
    assert_eq!(
        err.to_string(),
        "the image is 20000x20000 pixels; images over 64 megapixels (8192x8192) are refused"
    );
    // Just under the limit passes the size check and fails later, on the missing pixel data.
    let side = (MAX_PIXELS as f64).sqrt() as u32;
    assert!(matches!(preprocess::decode(&png_header_only(side, side)), Err(ImageError::Corrupt(_))));
}

#[test]
fn broken_files_give_errors_not_panics() {
    let good = encode(DynamicImage::ImageRgb8(gradient(80, 60)), ImageFormat::Png);
    assert!(matches!(preprocess::decode(&good[..good.len() / 2]), Err(ImageError::Corrupt(_))));
    let jpeg = encode(DynamicImage::ImageRgb8(gradient(80, 60)), ImageFormat::Jpeg);
    assert!(preprocess::decode(&jpeg).is_ok());
    for cut in [jpeg.len() / 3, jpeg.len() - 2] {
        // Decoders fill a truncated JPEG's missing rows with grey and call it a success.
        assert_eq!(preprocess::decode(&jpeg[..cut]), Err(ImageError::Truncated), "cut at {cut}");
    }
    assert_eq!(preprocess::decode(b""), Err(ImageError::Empty));
    assert_eq!(preprocess::decode(b"%PDF-1.4 not an image"), Err(ImageError::UnknownFormat));
    assert!(preprocess::decode(&png_header_only(0, 10)).is_err());
}

#[test]
fn extreme_aspect_ratios_are_refused_before_resizing() {
    // 259 bytes of PNG, 60000x1 pixels: its shorter side at 256 would take 12 GB.
    let line = encode(DynamicImage::ImageRgb8(RgbImage::new(60_000, 1)), ImageFormat::Png);
    let err = preprocess::decode(&line).unwrap_err();
    assert_eq!(err, ImageError::TooElongated { width: 60_000, height: 1, megapixels: 3750 });
    assert!(err.to_string().starts_with("the image is 60000x1 pixels: too elongated"), "{err}");
    assert!(matches!(preprocess::decode(&png_header_only(1, 20_000)), Err(ImageError::TooElongated { .. })));
    // The canvas path takes the same check.
    assert!(matches!(
        preprocess::from_rgba(&[0; 4 * 60_000], 60_000, 1),
        Err(ImageError::TooElongated { .. })
    ));
    // A long panorama is fine: 16:1 resizes to 4096x256.
    let panorama = encode(DynamicImage::ImageRgb8(gradient(1600, 100)), ImageFormat::Png);
    assert_eq!(
        preprocess::preprocess_bytes(&panorama, &Normalization::IMAGENET).unwrap().len(),
        3 * 224 * 224
    );
}

#[test]
fn exif_orientation_is_applied() {
    let jpeg = encode(DynamicImage::ImageRgb8(gradient(80, 60)), ImageFormat::Jpeg);
    // An APP1 segment with one EXIF tag: Orientation (0x0112) = 6, "rotate 90 degrees clockwise".
    let mut exif = b"\xff\xe1\x00\x22Exif\0\0II*\0\x08\0\0\0\x01\0".to_vec();
    exif.extend(b"\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0");
    let mut rotated = jpeg[..2].to_vec();
    rotated.extend(&exif);
    rotated.extend(&jpeg[2..]);
    assert_eq!(preprocess::decode(&jpeg).unwrap().dimensions(), (80, 60));
    assert_eq!(preprocess::decode(&rotated).unwrap().dimensions(), (60, 80));
}
