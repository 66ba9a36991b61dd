//! The weights format: exact round trips, f16, and clear errors for bad files.

mod common;

use alexnet::labels;
use alexnet::weights::{read_info, ModelInfo, Precision, SavedModel, WeightsError};
use alexnet::{AlexNet, AlexNetConfig};
use burn::tensor::{Tensor, TensorData};
use burn_store::ModuleSnapshot;
use common::{device, small_model, ScratchDir, TestBackend as B};

fn parameters(model: &AlexNet<B>) -> Vec<(String, TensorData)> {
    let mut params: Vec<_> =
        model.collect(None, None, false).into_iter().map(|s| (s.full_path(), s.to_data().unwrap())).collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params
}

#[test]
fn f32_round_trip_is_bit_exact_through_a_file() {
    let dir = ScratchDir::new("weights-f32");
    let saved = small_model(10);
    let path = dir.path("model.safetensors");
    saved.save(&path, Precision::F32).unwrap();
    let loaded = SavedModel::<B>::load(&path, &device()).unwrap();
    assert_eq!(loaded.info, saved.info);
    let (a, b) = (parameters(&saved.model), parameters(&loaded.model));
    assert_eq!(a.len(), 16, "8 layers x (weight, bias)");
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x.as_bytes(), y.as_bytes(), "{name} changed");
    }
    // No partial file is left behind.
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 1);
}

#[test]
fn f16_round_trip_is_within_half_precision_and_half_the_size() {
    let saved = small_model(10);
    let f32_bytes = saved.to_bytes(Precision::F32).unwrap();
    let f16_bytes = saved.to_bytes(Precision::F16).unwrap();
    let ratio = f16_bytes.len() as f64 / f32_bytes.len() as f64;
    assert!((0.49..0.51).contains(&ratio), "f16 file is {ratio} of f32");
    let loaded = SavedModel::<B>::from_bytes(f16_bytes, &device()).unwrap();
    for ((name, x), (_, y)) in parameters(&saved.model).iter().zip(&parameters(&loaded.model)) {
        let (x, y) = (x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
        for (a, b) in x.iter().zip(&y) {
            // f16 keeps 11 significant bits; values under 6e-5 become subnormal.
            assert!((a - b).abs() <= a.abs() * 4.9e-4 + 6e-8, "{name}: {a} -> {b}");
        }
    }
    // And the network still answers the same, to f16 precision.
    let images = Tensor::<B, 4>::ones([1, 3, 224, 224], &device());
    let p = saved.model.probabilities(images.clone()).into_data().to_vec::<f32>().unwrap();
    let q = loaded.model.probabilities(images).into_data().to_vec::<f32>().unwrap();
    assert!(p.iter().cloned().fold(0.0, f32::max) > 0.2, "far from the uniform 0.1: {p:?}");
    assert!(p.iter().zip(&q).all(|(a, b)| (a - b).abs() < 1e-3), "{p:?} vs {q:?}");
}

#[test]
fn int8_is_a_quarter_of_the_size_and_within_half_a_step_per_channel() {
    let dir = ScratchDir::new("weights-int8");
    let saved = small_model(10);
    let path = dir.path("model-int8.safetensors");
    saved.save(&path, Precision::Int8).unwrap();
    let int8_bytes = std::fs::read(&path).unwrap();
    let f32_bytes = saved.to_bytes(Precision::F32).unwrap();
    let ratio = int8_bytes.len() as f64 / f32_bytes.len() as f64;
    assert!((0.24..0.27).contains(&ratio), "int8 file is {ratio} of f32");
    assert_eq!(alexnet::weights::read_precision(&int8_bytes).unwrap(), Precision::Int8);
    assert_eq!(read_info(&int8_bytes).unwrap(), saved.info);

    let loaded = SavedModel::<B>::load(&path, &device()).unwrap();
    for ((name, x), (_, y)) in parameters(&saved.model).iter().zip(&parameters(&loaded.model)) {
        let shape = x.shape.clone();
        let (x, y) = (x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
        if shape.len() == 1 {
            assert_eq!(x, y, "{name}: biases stay f32");
            continue;
        }
        // Output channels: dim 0 of conv weights, dim 1 of Burn's [in, out] linear weights.
        let (axis, inner) = if shape.len() == 2 { (1, 1) } else { (0, shape[1..].iter().product()) };
        let channels = shape[axis];
        let mut max_abs = vec![0f32; channels];
        for (i, v) in x.iter().enumerate() {
            let c = (i / inner) % channels;
            max_abs[c] = max_abs[c].max(v.abs());
        }
        for (i, (a, b)) in x.iter().zip(&y).enumerate() {
            let step = max_abs[(i / inner) % channels] / 127.0;
            assert!((a - b).abs() <= step * 0.5001, "{name}[{i}]: {a} -> {b} (step {step})");
        }
    }
    let images = Tensor::<B, 4>::ones([1, 3, 224, 224], &device());
    let p = saved.model.probabilities(images.clone()).into_data().to_vec::<f32>().unwrap();
    let q = loaded.model.probabilities(images).into_data().to_vec::<f32>().unwrap();
    assert!(p.iter().cloned().fold(0.0, f32::max) > 0.2, "far from the uniform 0.1: {p:?}");
    assert!(p.iter().zip(&q).all(|(a, b)| (a - b).abs() < 2e-2), "{p:?} vs {q:?}");
}

#[test]
fn int8_files_without_their_scales_are_refused() {
    let int8 = small_model(10).to_bytes(Precision::Int8).unwrap();
    let file = safetensors::SafeTensors::deserialize(&int8).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&int8).unwrap();
    let kept: Vec<_> = file.tensors().into_iter().filter(|(name, _)| name != "fc6.weight.scale").collect();
    let broken = safetensors::serialize(kept, header.metadata().clone()).unwrap();
    let err = load_err(broken);
    assert!(matches!(err, WeightsError::Mismatch(_)), "{err}");
    assert!(err.to_string().contains("fc6.weight.scale"), "{err}");
}

#[test]
fn header_describes_the_model() {
    let mut saved = small_model(3);
    saved.info = saved.info.with_provenance("epochs", 0);
    let info = read_info(&saved.to_bytes(Precision::F16).unwrap()).unwrap();
    assert_eq!(info.config.num_classes, 3);
    assert_eq!(info.labels[2].name, "class 2");
    assert_eq!(info.provenance["epochs"], 0);
}

fn load_err(bytes: Vec<u8>) -> WeightsError {
    SavedModel::<B>::from_bytes(bytes, &device()).unwrap_err()
}

#[test]
fn bad_files_give_typed_errors() {
    let good = small_model(10).to_bytes(Precision::F32).unwrap();

    let truncated = load_err(good[..good.len() - 1000].to_vec());
    assert!(matches!(truncated, WeightsError::NotSafetensors(_)), "{truncated}");
    assert!(matches!(load_err(good[..5].to_vec()), WeightsError::NotSafetensors(_)));
    assert!(matches!(load_err(Vec::new()), WeightsError::NotSafetensors(_)));
    assert!(matches!(load_err(b"PK\x03\x04 a zip, like a .pth".to_vec()), WeightsError::NotSafetensors(_)));

    // A valid safetensors file from elsewhere: no model description.
    let mut foreign = burn_store::SafetensorsStore::from_bytes(None);
    small_model(10).model.save_into(&mut foreign).unwrap();
    let foreign = load_err(foreign.get_bytes().unwrap());
    assert!(matches!(foreign, WeightsError::NotAlexNet), "{foreign}");

    // A description that does not fit the tensors (file says 5 classes, holds 10).
    let mut lying = small_model(10);
    lying.info.config.num_classes = 5;
    lying.info.labels.truncate(5);
    let mismatch = load_err(lying.to_bytes(Precision::F32).unwrap());
    assert!(matches!(mismatch, WeightsError::Mismatch(_)), "{mismatch}");
    assert!(mismatch.to_string().contains("fc8"), "{mismatch}");

    // Labels that do not match the number of classes.
    let mut mislabelled = small_model(10);
    mislabelled.info.labels.pop();
    let bad = load_err(mislabelled.to_bytes(Precision::F32).unwrap());
    assert!(matches!(bad, WeightsError::BadMetadata(_)), "{bad}");

    let missing = SavedModel::<B>::load(std::path::Path::new("/nonexistent/model.safetensors"), &device());
    assert!(matches!(missing, Err(WeightsError::Io { .. })));
}

#[test]
fn imagenet_labels_travel_with_the_model() {
    let config = AlexNetConfig::torchvision(1000).with_width(0.125);
    let saved =
        SavedModel::<B> { model: config.init(&device()), info: ModelInfo::new(config, labels::imagenet()) };
    let info = read_info(&saved.to_bytes(Precision::F16).unwrap()).unwrap();
    assert_eq!(info.labels.len(), 1000);
    assert_eq!(info.labels[574].name, "golf ball");
    assert_eq!(info.labels[574].wnid.as_deref(), Some("n03445777"));
}
