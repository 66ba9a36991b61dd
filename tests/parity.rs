//! Numerical parity with PyTorch: the same weights and the same photos give the same answers.
//!
//! `tests/parity/make_fixtures.py` (Debian's python3-torch/torchvision, run with /usr/bin/python3)
//! builds seeded random models for both presets, saves their state_dicts, and records
//! torchvision's preprocessed input and both models' logits for each photo. We import the `.pth`
//! files, then check (1) our logits on torchvision's own input tensors and (2) our top-5 from our
//! own preprocessing of the photo files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use alexnet::import::import_pytorch;
use alexnet::labels::{self, top_k};
use alexnet::preprocess::{self, Normalization};
use alexnet::{AlexNetConfig, SavedModel};
use burn::tensor::Tensor;
use common::{data_dir, device, ScratchDir, TestBackend as B};
use serde_json::Value;

/// Max |logit difference| on identical inputs, relative to the largest |logit|.
const LOGIT_TOLERANCE: f32 = 1e-4;
/// Top-5 probabilities, from our preprocessing against torchvision's.
const PROB_TOLERANCE: f32 = 0.02;

fn photos() -> Vec<PathBuf> {
    let data = data_dir();
    let mut images: Vec<PathBuf> = std::fs::read_dir(data.join("photos"))
        .expect("photos/ in the data folder")
        .map(|e| e.unwrap().path())
        .collect();
    images.sort();
    // A few real ImageNet photos too (grey ones included in the set where they occur).
    for class in ["n03445777", "n03028079", "n03888257"] {
        let dir = data.join("imagenette/val").join(class);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        images.extend(files.into_iter().take(2));
    }
    images
}

struct Fixtures {
    dir: ScratchDir,
    images: Vec<PathBuf>,
    json: Value,
}

fn make_fixtures(name: &str) -> Fixtures {
    let dir = ScratchDir::new(name);
    let images = photos();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/make_fixtures.py");
    let output = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&dir.0)
        .args(&images)
        .output()
        .expect("running /usr/bin/python3 (install python3-torch and python3-torchvision)");
    assert!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let json = serde_json::from_slice(&std::fs::read(dir.path("fixtures.json")).unwrap()).unwrap();
    Fixtures { dir, images, json }
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn rows(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [n, k] = t.dims();
    let v = t.into_data().to_vec::<f32>().unwrap();
    (0..n).map(|i| v[i * k..(i + 1) * k].to_vec()).collect()
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::MIN, f32::max);
    let exp: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|&e| (e / sum) as f32).collect()
}

fn check_preset(fx: &Fixtures, preset: &str, model: &SavedModel<B>) {
    let entries = fx.json["images"].as_array().unwrap();
    let reference: Vec<Vec<f32>> =
        entries.iter().map(|e| serde_json::from_value(e["logits"][preset].clone()).unwrap()).collect();

    // 1. Identical input tensors (torchvision's): logits agree to 1e-4 of the largest logit.
    let torch_inputs: Vec<Vec<f32>> =
        entries.iter().map(|e| read_f32(&fx.dir.path(e["input"].as_str().unwrap()))).collect();
    let ours = rows(model.model.forward(preprocess::batch(&torch_inputs, &device())));
    let mut worst = 0.0f32;
    for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        worst = worst.max(diff / scale);
        assert!(
            diff <= LOGIT_TOLERANCE * scale,
            "{preset}, {}: max |logit diff| {diff} > {LOGIT_TOLERANCE} x {scale}",
            fx.images[i].display()
        );
    }
    println!("{preset}: worst relative logit difference {worst:.2e}");

    // 2. Our own preprocessing of the files: same top-1/top-5, probabilities within 0.02.
    let our_inputs: Vec<Vec<f32>> = fx
        .images
        .iter()
        .map(|p| preprocess::preprocess_bytes(&std::fs::read(p).unwrap(), &Normalization::IMAGENET).unwrap())
        .collect();
    // PNGs decode identically in both, so our PIL-style resize must reproduce torchvision's input
    // exactly; JPEG decoders (zune-jpeg, libjpeg) differ by a few levels on some pixels.
    for ((a, b), path) in our_inputs.iter().zip(&torch_inputs).zip(&fx.images) {
        let worst = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        println!("{preset}: {}: max input difference {worst:.2e}", path.display());
        if path.extension().is_some_and(|e| e == "png") {
            assert!(worst <= 1e-6, "{}: input differs from torchvision's by {worst}", path.display());
        }
    }
    let ours = rows(model.model.probabilities(preprocess::batch(&our_inputs, &device())));
    for (i, (probs, logits)) in ours.iter().zip(&reference).enumerate() {
        let expected = top_k(&softmax(logits), &model.info.labels, 5);
        let got = top_k(probs, &model.info.labels, 5);
        let name = fx.images[i].display();
        assert_eq!(
            got.iter().map(|p| p.index).collect::<Vec<_>>(),
            expected.iter().map(|p| p.index).collect::<Vec<_>>(),
            "{preset}, {name}: top-5 classes differ"
        );
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                (g.prob - e.prob).abs() <= PROB_TOLERANCE,
                "{preset}, {name}: p({}) = {} vs torchvision {}",
                g.label,
                g.prob,
                e.prob
            );
        }
    }
}

#[test]
fn torchvision_and_paper_presets_match_pytorch() {
    let fx = make_fixtures("parity");
    let tv = alexnet::import::import_torchvision::<B>(&fx.dir.path("torchvision.pth"), &device())
        .expect("importing torchvision's state_dict");
    assert_eq!(tv.info.config, AlexNetConfig::torchvision(1000));
    assert_eq!(tv.info.labels, labels::imagenet());
    check_preset(&fx, "torchvision", &tv);
    drop(tv);

    let paper = import_pytorch::<B>(
        &fx.dir.path("paper.pth"),
        AlexNetConfig::paper(1000),
        labels::imagenet(),
        &device(),
    )
    .expect("importing the paper model's state_dict");
    check_preset(&fx, "paper", &paper);

    // The paper's state_dict cannot go into the torchvision preset: shapes differ.
    let err = import_pytorch::<B>(
        &fx.dir.path("paper.pth"),
        AlexNetConfig::torchvision(1000),
        labels::imagenet(),
        &device(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("conv1.weight"), "{err}");
}
