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
    assert!(err.to_string().contains("20000x20000"));
    // Just under the limit passes the size check and fails later, on the missing pixel data.
    let side = (MAX_PIXELS as f64).sqrt() as u32;
    assert!(matches!(preprocess::decode(&png_header_only(side, side)), Err(ImageError::Corrupt(_))));
}

#[test]
fn broken_files_give_errors_not_panics() {
    let good = encode(DynamicImage::ImageRgb8(gradient(80, 60)), ImageFormat::Png);
    assert!(matches!(preprocess::decode(&good[..good.len() / 2]), Err(ImageError::Corrupt(_))));
    let jpeg = encode(DynamicImage::ImageRgb8(gradient(80, 60)), ImageFormat::Jpeg);
    for cut in [10, jpeg.len() / 3] {
        // A truncated JPEG either errors or decodes grey padding; it must never panic.
        let _ = preprocess::decode(&jpeg[..cut]);
    }
    assert_eq!(preprocess::decode(b""), Err(ImageError::Empty));
    assert_eq!(preprocess::decode(b"%PDF-1.4 not an image"), Err(ImageError::UnknownFormat));
    assert!(matches!(preprocess::decode(&png_header_only(0, 10)), Err(_)));
}
