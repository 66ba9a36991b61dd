//! The network's structure: layer shapes, parameter counts, LRN, initialisation.

mod common;

use alexnet::{AlexNetConfig, Initialization};
use burn::module::Module;
use burn::tensor::{Distribution, Tensor, TensorData};
use common::{device, TestBackend as B};

fn stage_sizes(config: AlexNetConfig) -> Vec<(&'static str, [usize; 4])> {
    let model = config.init::<B>(&device());
    let images = Tensor::<B, 4>::random([1, 3, 224, 224], Distribution::Default, &device());
    model.stage_shapes(images)
}

#[test]
fn paper_stage_shapes() {
    assert_eq!(
        stage_sizes(AlexNetConfig::paper(1000)),
        vec![
            ("conv1", [1, 96, 55, 55]),
            ("pool1", [1, 96, 27, 27]),
            ("conv2", [1, 256, 27, 27]),
            ("pool2", [1, 256, 13, 13]),
            ("conv3", [1, 384, 13, 13]),
            ("conv4", [1, 384, 13, 13]),
            ("conv5", [1, 256, 13, 13]),
            ("pool5", [1, 256, 6, 6]),
        ]
    );
}

#[test]
fn torchvision_stage_shapes_and_logits() {
    assert_eq!(
        stage_sizes(AlexNetConfig::torchvision(1000)),
        vec![
            ("conv1", [1, 64, 55, 55]),
            ("pool1", [1, 64, 27, 27]),
            ("conv2", [1, 192, 27, 27]),
            ("pool2", [1, 192, 13, 13]),
            ("conv3", [1, 384, 13, 13]),
            ("conv4", [1, 256, 13, 13]),
            ("conv5", [1, 256, 13, 13]),
            ("pool5", [1, 256, 6, 6]),
        ]
    );
    let model = AlexNetConfig::torchvision(10).init::<B>(&device());
    let images = Tensor::<B, 4>::zeros([2, 3, 224, 224], &device());
    assert_eq!(model.forward(images).dims(), [2, 10]);
}

#[test]
fn parameter_counts_match_the_paper_and_torchvision() {
    assert_eq!(AlexNetConfig::paper(1000).init::<B>(&device()).num_params(), 60_965_224);
    assert_eq!(AlexNetConfig::torchvision(1000).init::<B>(&device()).num_params(), 61_100_840);
}

#[test]
fn width_scaling_keeps_the_architecture() {
    let model = AlexNetConfig::paper(10).with_width(0.25).init::<B>(&device());
    let images = Tensor::<B, 4>::zeros([1, 3, 224, 224], &device());
    let shapes = model.stage_shapes(images.clone());
    assert_eq!(shapes[0].1, [1, 24, 55, 55]);
    assert_eq!(shapes[7].1, [1, 64, 6, 6]);
    assert_eq!(model.forward(images).dims(), [1, 10]);
}

/// The paper's LRN with its constants, computed by hand for one position: b_i = a_i / (k +
/// alpha * sum_{j=i-2}^{i+2} a_j^2)^beta, k = 2, alpha = 1e-4, beta = 0.75 (no division by n).
#[test]
fn lrn_uses_the_papers_formula() {
    let a = [30.0f32, 60.0, 90.0, 120.0, 150.0, 180.0, 210.0];
    let expected: Vec<f32> = (0..a.len())
        .map(|i| {
            let lo = i.saturating_sub(2);
            let hi = (i + 2).min(a.len() - 1);
            let sum: f64 = a[lo..=hi].iter().map(|&x| (x as f64).powi(2)).sum();
            (a[i] as f64 / (2.0 + 1e-4 * sum).powf(0.75)) as f32
        })
        .collect();
    // The layer the model uses.
    let lrn = alexnet::model::local_response_norm();
    let x = Tensor::<B, 4>::from_data(TensorData::new(a.to_vec(), [1, 7, 1, 1]), &device());
    let got = lrn.forward(x).into_data().to_vec::<f32>().unwrap();
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() <= 1e-4 * e.abs(), "LRN gave {got:?}, paper formula {expected:?}");
    }
    // With these activations PyTorch's alpha/n reading would differ by far more than that.
    let sum: f64 = a[1..=5].iter().map(|&x| (x as f64).powi(2)).sum();
    let pytorch_reading = (a[3] as f64 / (2.0 + 1e-4 / 5.0 * sum).powf(0.75)) as f32;
    assert!((got[3] - pytorch_reading).abs() > 0.1);
}

#[test]
fn paper_initialisation() {
    let model = AlexNetConfig::paper(1000).with_initialization(Initialization::Paper).init::<B>(&device());
    let record = model.into_record();
    let values = |t: Tensor<B, 1>| t.into_data().to_vec::<f32>().unwrap();
    let bias = |b: Option<burn::module::Param<Tensor<B, 1>>>| values(b.unwrap().val());
    for (name, b, expected) in [
        ("conv1", bias(record.conv1.bias), 0.0),
        ("conv2", bias(record.conv2.bias), 1.0),
        ("conv3", bias(record.conv3.bias), 0.0),
        ("conv4", bias(record.conv4.bias), 1.0),
        ("conv5", bias(record.conv5.bias), 1.0),
        ("fc6", bias(record.fc6.bias), 1.0),
        ("fc7", bias(record.fc7.bias), 1.0),
        ("fc8", bias(record.fc8.bias), 0.0),
    ] {
        assert!(b.iter().all(|&v| v == expected), "{name} bias should be {expected}");
    }
    // fc6's 37.7M weights: mean 0, standard deviation 0.01.
    let w = values(record.fc6.weight.val().flatten(0, 1));
    let n = w.len() as f64;
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
    let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 1e-4, "mean {mean}");
    assert!((std - 0.01).abs() < 1e-4, "std {std}");
}

/// `HeSmallConv1`: conv1 as the paper draws it (N(0, 0.01), biases 0), the rest as He's.
#[test]
fn he_with_a_small_conv1() {
    let config = AlexNetConfig::paper(10).with_width(0.25).with_initialization(Initialization::HeSmallConv1);
    let record = config.init::<B>(&device()).into_record();
    let std_of = |t: Tensor<B, 4>| {
        let w = t.flatten::<1>(0, 3).into_data().to_vec::<f32>().unwrap();
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
    };
    let conv1 = std_of(record.conv1.weight.val());
    assert!((conv1 - 0.01).abs() < 0.0005, "conv1 std {conv1}, not the paper's 0.01");
    // conv2 at width 0.25: 64 filters over 12 input channels (two groups of 24) of 5x5.
    let he = (2.0f64 / (12.0 * 25.0)).sqrt();
    let conv2 = std_of(record.conv2.weight.val());
    assert!((conv2 - he).abs() < 0.05 * he, "conv2 std {conv2}, not He's {he}");
    let conv2_bias = record.conv2.bias.unwrap().val().into_data().to_vec::<f32>().unwrap();
    assert!(conv2_bias.iter().all(|&b| b == 0.0), "He's biases are 0, not the paper's 1");
}
