//! The `trainer` command line: answers in the documented formats, and clear errors (never a
//! panic) for bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::common::{data_dir, small_model, TestBackend};
use alexnet::weights::Precision;

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).args(args).output().unwrap()
}

fn photos() -> PathBuf {
    data_dir().join("photos")
}

fn assert_clean_failure(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(stderr.contains(expected), "expected `{expected}` in: {stderr}");
}

#[test]
fn predict_prints_ranked_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("m.safetensors");
    small_model(7).save(&weights, Precision::F16).unwrap();
    let images = [photos().join("chelsea.png"), photos().join("rocket.jpg")];
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["predict", "--json", "--weights"])
        .arg(&weights)
        .args(&images)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for (line, image) in lines.iter().zip(&images) {
        assert_eq!(line["image"], image.display().to_string());
        let top5 = line["top5"].as_array().unwrap();
        assert_eq!(top5.len(), 5);
        let probs: Vec<f64> = top5.iter().map(|p| p["prob"].as_f64().unwrap()).collect();
        assert!(probs.windows(2).all(|w| w[0] >= w[1]), "not ranked: {probs:?}");
        assert!(top5[0]["label"].as_str().unwrap().starts_with("class "));
        assert!(top5[0]["index"].as_u64().unwrap() < 7);
        // A hang guard only: the time itself is the machine's.
        assert!(line["ms"].as_f64().expect("the time in ms") < 60_000.0, "{line}");
    }
}

#[test]
fn convert_to_int8_quarters_the_file_and_keeps_the_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (f32_path, int8_path) = (dir.path().join("m.safetensors"), dir.path().join("m-int8.safetensors"));
    small_model(5).save(&f32_path, Precision::F32).unwrap();
    let out = trainer(&[
        "convert",
        f32_path.to_str().unwrap(),
        "--out",
        int8_path.to_str().unwrap(),
        "--precision",
        "int8",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A conversion starts no GPU, so no driver's probe writes to stderr.
    assert!(out.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let size = |p: &PathBuf| std::fs::metadata(p).unwrap().len() as f64;
    assert!(size(&int8_path) / size(&f32_path) < 0.27);
    let chelsea = photos().join("chelsea.png");
    let top = |w: &PathBuf| {
        let out =
            trainer(&["predict", "--json", "--weights", w.to_str().unwrap(), chelsea.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // 5 classes: the top 5 is every class's probability.
        let mut probs = [0.0; 5];
        for p in line["top5"].as_array().unwrap() {
            probs[p["index"].as_u64().unwrap() as usize] = p["prob"].as_f64().unwrap();
        }
        probs
    };
    let (p, q) = (top(&f32_path), top(&int8_path));
    assert!(p.iter().cloned().fold(0.0, f64::max) > 0.4, "far from the uniform 0.2: {p:?}");
    assert!(p.iter().zip(&q).all(|(a, b)| (a - b).abs() < 0.02), "{p:?} vs {q:?}");
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert_clean_failure(
        &trainer(&[
            "train",
            "--data",
            missing.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ]),
        "does not exist",
    );

    // Weights whose tensors do not fit the model they describe.
    let mut lying = small_model(10);
    lying.info.config.num_classes = 4;
    lying.info.labels.truncate(4);
    let wrong = dir.path().join("wrong.safetensors");
    std::fs::write(&wrong, lying.to_bytes(Precision::F32).unwrap()).unwrap();
    let chelsea = photos().join("chelsea.png");
    assert_clean_failure(
        &trainer(&["predict", "--weights", wrong.to_str().unwrap(), chelsea.to_str().unwrap()]),
        "do not fit",
    );

    // A file that is not weights at all.
    assert_clean_failure(
        &trainer(&["eval", "--weights", chelsea.to_str().unwrap(), "--data", missing.to_str().unwrap()]),
        "not a safetensors file",
    );

    // A corrupt image among good ones: the good one is still classified.
    let weights = dir.path().join("ok.safetensors");
    small_model(3).save(&weights, Precision::F32).unwrap();
    let corrupt = dir.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let out = trainer(&[
        "predict",
        "--json",
        "--weights",
        weights.to_str().unwrap(),
        corrupt.to_str().unwrap(),
        chelsea.to_str().unwrap(),
    ]);
    assert_clean_failure(&out, "1 of 2 images could not be classified");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"error\"") && stdout.contains("\"top5\""), "{stdout}");

    assert_clean_failure(
        &trainer(&[
            "convert",
            chelsea.to_str().unwrap(),
            "--out",
            dir.path().join("c").to_str().unwrap(),
            "--precision",
            "int8",
        ]),
        "not a safetensors file",
    );
    assert_clean_failure(
        &trainer(&[
            "import-torchvision",
            chelsea.to_str().unwrap(),
            "--out",
            dir.path().join("x").to_str().unwrap(),
        ]),
        "PyTorch file",
    );
    if !cfg!(feature = "cuda") {
        assert_clean_failure(&trainer(&["--backend", "cuda", "bench"]), "built without the cuda backend");
    }
}

/// A weights file whose `tensor` has one value replaced by NaN (found through the safetensors
/// header: 8 bytes of length, the JSON header, then the data).
fn with_nan(bytes: &[u8], tensor: &str) -> Vec<u8> {
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let start = header[tensor]["data_offsets"][0].as_u64().unwrap() as usize;
    let mut bytes = bytes.to_vec();
    bytes[8 + header_len + start..][..4].copy_from_slice(&f32::NAN.to_le_bytes());
    bytes
}

#[test]
fn crafted_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let weights = path("ok.safetensors");
    small_model(3).save(std::path::Path::new(&weights), Precision::F32).unwrap();

    // 60000x1 pixels in 259 bytes: refused before the resize would ask for 12 GB.
    image::RgbImage::new(60_000, 1).save(path("line.png")).unwrap();
    assert_clean_failure(
        &trainer(&["predict", "--weights", &weights, &path("line.png")]),
        "too elongated to classify",
    );

    // A truncated JPEG: refused, not classified from grey padding.
    let rocket = std::fs::read(photos().join("rocket.jpg")).unwrap();
    std::fs::write(path("cut.jpg"), &rocket[..rocket.len() / 2]).unwrap();
    assert_clean_failure(
        &trainer(&["predict", "--weights", &weights, &path("cut.jpg")]),
        "the JPEG file is truncated",
    );

    // NaN weights: refused when loading, naming the tensor.
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(path("nan.safetensors"), with_nan(&bytes, "fc8.bias")).unwrap();
    let chelsea = photos().join("chelsea.png");
    let out = trainer(&["predict", "--weights", &path("nan.safetensors"), chelsea.to_str().unwrap()]);
    assert_clean_failure(&out, "the tensor fc8.bias holds 1 NaN or infinite values");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));

    // A missing weights file: the OS error once, with the path once.
    let out = trainer(&["predict", "--weights", &path("missing.safetensors"), chelsea.to_str().unwrap()]);
    assert_clean_failure(&out, "No such file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("missing.safetensors").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");

    // A file where a dataset folder is expected.
    assert_clean_failure(
        &trainer(&["eval", "--weights", &weights, "--data", chelsea.to_str().unwrap()]),
        "is a file, not a dataset folder",
    );

    // Benchmarks validate their arguments like training does.
    assert_clean_failure(
        &trainer(&["--backend", "cpu", "bench", "--width", "0"]),
        "width must be in (0, 16]",
    );
    assert_clean_failure(&trainer(&["--backend", "cpu", "bench", "--batch-size", "0"]), "must be at least 1");
}

#[test]
fn info_describes_a_weights_file() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("m.safetensors");
    small_model(4).save(&weights, Precision::Int8).unwrap();
    let out = trainer(&["info", "--json", weights.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["precision"], "int8");
    assert_eq!(info["config"]["preset"], "paper");
    assert_eq!(info["config"]["width"], 0.125);
    assert_eq!(info["labels"].as_array().unwrap().len(), 4);
    let text = trainer(&["info", weights.to_str().unwrap()]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("the 2012 paper's AlexNet, width 0.125, 4 classes") && text.contains("stored as int8"),
        "{text}"
    );
}

#[test]
fn filters_draws_conv1_as_a_png_and_measures_its_noise() {
    let dir = tempfile::tempdir().unwrap();
    let (weights, png) = (dir.path().join("m.safetensors"), dir.path().join("conv1.png"));
    small_model(4).save(&weights, Precision::F32).unwrap();
    let out =
        trainer(&["filters", weights.to_str().unwrap(), "--out", png.to_str().unwrap(), "--scale", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Width 0.125: 12 filters of 11x11 in one row, one pixel apart, each pixel doubled.
    let picture = image::open(&png).unwrap();
    assert_eq!((picture.width(), picture.height()), (2 * (12 * 12 + 1), 2 * 13));
    // Untrained filters are random draws: noise.
    let text = String::from_utf8(out.stdout).unwrap();
    let roughness: f32 =
        text.split("roughness ").nth(1).and_then(|t| t.split(':').next()).unwrap().parse().unwrap();
    assert!((0.7..1.3).contains(&roughness), "{text}");
}

#[test]
fn teach_gives_a_model_of_the_folders_classes() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p);
    for (class, files) in [("cats", ["chelsea.png", "astronaut.png"]), ("cups", ["coffee.png", "rocket.jpg"])]
    {
        std::fs::create_dir_all(path(&format!("data/{class}"))).unwrap();
        for file in files {
            std::fs::copy(photos().join(file), path(&format!("data/{class}/{file}"))).unwrap();
        }
    }
    small_model(5).save(&path("base.safetensors"), Precision::F32).unwrap();
    let teach = |data: &str| {
        let (base, out) = (path("base.safetensors"), path("taught.safetensors"));
        let args =
            ["teach", "--weights", base.to_str().unwrap(), "--data", data, "--out", out.to_str().unwrap()];
        trainer(&[&args[..], &["--epochs", "5"]].concat())
    };
    let out = teach(path("data").to_str().unwrap());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("taught 2 classes from 4 photos"), "{text}");
    let info: serde_json::Value = serde_json::from_slice(
        &trainer(&["info", "--json", path("taught.safetensors").to_str().unwrap()]).stdout,
    )
    .unwrap();
    assert_eq!(info["config"]["num_classes"], 2);
    let labels: Vec<&str> =
        info["labels"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(labels, ["cats", "cups"]);
    assert!(info["provenance"]["taught_from"]["classes"].as_array().unwrap().len() == 5, "{info}");

    // One class alone cannot be taught: a clear error, and the model already there is kept.
    std::fs::remove_dir_all(path("data/cups")).unwrap();
    assert_clean_failure(
        &teach(path("data").to_str().unwrap()),
        "teaching needs at least two classes (got 1)",
    );
    assert!(path("taught.safetensors").is_file());
}

#[test]
fn calibrate_writes_a_threshold_that_predict_and_eval_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    // Two classes, `a` and `b`, of five in-class photos; the out-of-class folder is flat. He
    // initialisation: the paper's N(0, 0.01) fades to logits so small that photos tie.
    let config =
        alexnet::AlexNetConfig::paper(2).with_width(0.125).with_initialization(alexnet::Initialization::He);
    let labels = ["a", "b"].map(|n| alexnet::Label { name: n.into(), wnid: None }).to_vec();
    let model = alexnet::SavedModel::<TestBackend> {
        model: config.init(&crate::common::device()),
        info: alexnet::ModelInfo::new(config, labels),
    };
    model.save(&dir.path().join("m.safetensors"), Precision::Int8).unwrap();
    let names = ["astronaut.png", "chelsea.png", "coffee.png", "camera.png", "rocket.jpg"];
    for (i, name) in names.iter().enumerate() {
        let class = dir.path().join(["val/a", "val/b"][i % 2]);
        std::fs::create_dir_all(&class).unwrap();
        std::fs::copy(photos().join(name), class.join(name)).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("other")).unwrap();
    std::fs::copy(photos().join("rocket.jpg"), dir.path().join("other/rocket.jpg")).unwrap();
    let original = std::fs::read(path("m.safetensors")).unwrap();

    let args = ["calibrate", "--weights", &path("m.safetensors"), "--data", &path("."), "--out-of-class"];
    let out = trainer(
        &[&args[..], &[&path("other"), "--in-class-share", "0.4", "--out", &path("c.safetensors")]].concat(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("flags 40.0% of 5 in-class photos"));
    assert_eq!(std::fs::read(path("m.safetensors")).unwrap(), original, "--out leaves the input alone");

    let info: serde_json::Value =
        serde_json::from_slice(&trainer(&["info", "--json", &path("c.safetensors")]).stdout).unwrap();
    assert_eq!(info["precision"], "int8");
    assert_eq!(info["out_of_classes"]["in_class_flagged"], 0.4);
    // Eval flags the in-class photos as calibrate measured them; predict answers as before, with a verdict.
    let eval = trainer(&["eval", "--json", "--weights", &path("c.safetensors"), "--data", &path(".")]);
    let eval: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(eval["out_of_classes_share"], 0.4);
    let predict = |w: &str| -> serde_json::Value {
        let out = trainer(&["predict", "--json", "--weights", &path(w), &path("other/rocket.jpg")]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (before, after) = (predict("m.safetensors"), predict("c.safetensors"));
    assert_eq!(before["top5"], after["top5"], "the tensors are unchanged");
    assert!(before["out_of_classes"].is_null() && after["out_of_classes"].is_boolean(), "{before} {after}");

    // Folders that cannot calibrate: clear errors.
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    assert_clean_failure(&trainer(&[&args[..], &[&path("empty")]].concat()), "holds no images");
    std::fs::create_dir_all(dir.path().join("val/c")).unwrap();
    std::fs::copy(photos().join("rocket.jpg"), dir.path().join("val/c/rocket.jpg")).unwrap();
    assert_clean_failure(
        &trainer(&[&args[..], &[&path("other")]].concat()),
        "dataset class `c` is not one of",
    );
}
