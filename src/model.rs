//! AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
//! Neural Networks", 2012), generic over the Burn backend.
//!
//! Two presets share this one definition:
//! - [`Preset::Paper`]: the paper's network, 96-256-384-384-256 filters, conv2/4/5 split in two
//!   groups (the paper's two GPUs), local response normalisation after conv1 and conv2.
//! - [`Preset::Torchvision`]: torchvision's `alexnet` (from "One weird trick"), 64-192-384-256-256
//!   filters, no groups, no LRN, an adaptive 6x6 average pool before the classifier. Its
//!   parameter names map onto torchvision's `state_dict`, so its pretrained weights import.
//!
//! Input size: the paper's text says 224x224, but conv1 (11x11, stride 4) only gives the 55x55 maps
//! of its figure from 227x227 (Caffe's choice) or from 224x224 padded by 2 (torchvision's choice).
//! Both presets take 224x224 and pad conv1 by 2.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Linear, LinearConfig, LocalResponseNorm, LocalResponseNormConfig,
    PaddingConfig2d, Relu,
};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Side of the square images the network takes.
pub const INPUT_SIZE: usize = 224;

/// Which AlexNet to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The 2012 paper: grouped convolutions and local response normalisation.
    Paper,
    /// torchvision's `alexnet`: narrower conv1/conv2, no groups, no LRN.
    Torchvision,
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Preset::Paper => "paper",
            Preset::Torchvision => "torchvision",
        })
    }
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "paper" => Ok(Preset::Paper),
            "torchvision" => Ok(Preset::Torchvision),
            other => Err(format!("unknown preset `{other}` (expected `paper` or `torchvision`)")),
        }
    }
}

/// How fresh weights are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Initialization {
    /// Burn's defaults (Kaiming-uniform, as PyTorch's `nn.Conv2d`/`nn.Linear`).
    Default,
    /// Paper section 5: weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6 and fc7 (to give
    /// the ReLUs positive inputs early on), 0 elsewhere.
    Paper,
    /// He et al. (2015): weights N(0, 2 / fan_in), biases 0 (fc8: N(0, 0.01)). Keeps activations
    /// from shrinking layer after layer, so a network without normalisation starts learning at once.
    He,
}

/// AlexNet's hyper-parameters. Saved with every model so a weights file rebuilds its own network.
#[derive(Config, Debug, PartialEq)]
pub struct AlexNetConfig {
    /// Paper or torchvision layer widths.
    pub preset: Preset,
    /// Size of the last layer (1000 for ImageNet, 10 for Imagenette).
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Scales every layer's width; 1.0 is AlexNet. Small values give fast CPU experiments with
    /// the same code.
    #[config(default = 1.0)]
    pub width: f64,
    /// Dropout before fc6 and fc7 (paper: 0.5).
    #[config(default = 0.5)]
    pub dropout: f64,
    /// How [`AlexNetConfig::init`] draws fresh weights.
    #[config(default = "Initialization::Default")]
    pub initialization: Initialization,
}

/// Layer widths of one preset: five conv layers, then the hidden fully connected layers.
struct Widths {
    conv: [usize; 5],
    hidden: usize,
}

impl AlexNetConfig {
    /// The paper's network with `num_classes` outputs.
    pub fn paper(num_classes: usize) -> Self {
        Self::new(Preset::Paper).with_num_classes(num_classes)
    }

    /// torchvision's network with `num_classes` outputs.
    pub fn torchvision(num_classes: usize) -> Self {
        Self::new(Preset::Torchvision).with_num_classes(num_classes)
    }

    fn widths(&self) -> Widths {
        let conv = match self.preset {
            Preset::Paper => [96, 256, 384, 384, 256],
            Preset::Torchvision => [64, 192, 384, 256, 256],
        };
        // Rounded to even so the paper's two groups still split evenly.
        let scale = |c: usize| (((c as f64 * self.width) / 2.0).round() as usize).max(1) * 2;
        Widths {
            conv: conv.map(scale),
            hidden: scale(4096),
        }
    }

    /// Checks the values a weights file or a command line may have got wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_classes == 0 {
            return Err("num_classes must be at least 1".into());
        }
        if !(self.width > 0.0 && self.width <= 16.0) {
            return Err(format!("width must be in (0, 16], got {}", self.width));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    /// Builds the network with fresh weights on `device`.
    ///
    /// Panics on an invalid config; call [`AlexNetConfig::validate`] first on untrusted values.
    pub fn init<B: Backend>(&self, device: &B::Device) -> AlexNet<B> {
        if let Err(message) = self.validate() {
            panic!("invalid AlexNetConfig: {message}");
        }
        let Widths { conv: [c1, c2, c3, c4, c5], hidden } = self.widths();
        let paper = self.preset == Preset::Paper;
        // The paper splits conv2, conv4 and conv5 across its two GPUs; conv3 sees both halves.
        let groups = if paper { 2 } else { 1 };
        let conv = |channels: [usize; 2], kernel: usize, stride: usize, pad: usize, groups: usize| {
            Conv2dConfig::new(channels, [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_groups(groups)
        };
        let mut convs = [
            conv([3, c1], 11, 4, 2, 1),
            conv([c1, c2], 5, 1, 2, groups),
            conv([c2, c3], 3, 1, 1, 1),
            conv([c3, c4], 3, 1, 1, groups),
            conv([c4, c5], 3, 1, 1, groups),
        ];
        let mut linears = [
            LinearConfig::new(c5 * 6 * 6, hidden),
            LinearConfig::new(hidden, hidden),
            LinearConfig::new(hidden, self.num_classes),
        ];
        let initializer = match self.initialization {
            Initialization::Default => None,
            Initialization::Paper => Some(Initializer::Normal { mean: 0.0, std: 0.01 }),
            Initialization::He => Some(Initializer::KaimingNormal {
                gain: std::f64::consts::SQRT_2,
                fan_out_only: false,
            }),
        };
        if let Some(initializer) = initializer {
            for c in &mut convs {
                c.initializer = initializer.clone();
            }
            for l in &mut linears {
                l.initializer = initializer.clone();
            }
            // The output layer starts small in both schemes: near-uniform predictions, a loss
            // near ln(classes), and no early blow-up through the softmax.
            linears[2].initializer = Initializer::Normal { mean: 0.0, std: 0.01 };
        }
        let [conv1, conv2, conv3, conv4, conv5] = convs.map(|c| c.init(device));
        let [fc6, fc7, fc8] = linears.map(|l| l.init(device));

        // LRN, paper section 3.3: b = a / (k + alpha * sum_{n neighbours} a^2)^beta with
        // k = 2, n = 5, alpha = 1e-4, beta = 0.75. We implement the paper's formula. Burn's (and
        // PyTorch's) LocalResponseNorm divides alpha by n, so it is given alpha * n.
        let lrn = || {
            let (size, alpha) = (5, 1e-4);
            LocalResponseNormConfig::new(size)
                .with_alpha(alpha * size as f64)
                .with_beta(0.75)
                .with_k(2.0)
                .init()
        };

        let mut model = AlexNet {
            conv1,
            lrn1: paper.then(lrn),
            conv2,
            lrn2: paper.then(lrn),
            conv3,
            conv4,
            conv5,
            pool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init(),
            avgpool: (!paper).then(|| AdaptiveAvgPool2dConfig::new([6, 6]).init()),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc6,
            fc7,
            fc8,
            relu: Relu::new(),
        };
        let hidden_bias = match self.initialization {
            Initialization::Default => None,
            Initialization::Paper => Some(1.0),
            Initialization::He => Some(0.0),
        };
        if let Some(hidden_bias) = hidden_bias {
            model.conv1.bias = constant_bias(model.conv1.bias, 0.0);
            model.conv2.bias = constant_bias(model.conv2.bias, hidden_bias);
            model.conv3.bias = constant_bias(model.conv3.bias, 0.0);
            model.conv4.bias = constant_bias(model.conv4.bias, hidden_bias);
            model.conv5.bias = constant_bias(model.conv5.bias, hidden_bias);
            model.fc6.bias = constant_bias(model.fc6.bias, hidden_bias);
            model.fc7.bias = constant_bias(model.fc7.bias, hidden_bias);
            model.fc8.bias = constant_bias(model.fc8.bias, 0.0);
        }
        model
    }
}

fn constant_bias<B: Backend>(
    bias: Option<Param<Tensor<B, 1>>>,
    value: f64,
) -> Option<Param<Tensor<B, 1>>> {
    bias.map(|b| {
        let tensor = b.val();
        Param::from_tensor(tensor.ones_like().mul_scalar(value))
    })
}

/// AlexNet. Field names follow the paper's layers (conv1..conv5, fc6..fc8).
#[derive(Module, Debug)]
pub struct AlexNet<B: Backend> {
    conv1: Conv2d<B>,
    lrn1: Option<LocalResponseNorm>,
    conv2: Conv2d<B>,
    lrn2: Option<LocalResponseNorm>,
    conv3: Conv2d<B>,
    conv4: Conv2d<B>,
    conv5: Conv2d<B>,
    /// Overlapping max pooling: 3x3 windows, stride 2 (paper section 3.4).
    pool: MaxPool2d,
    /// torchvision only; the identity at 224x224, it lets other input sizes reach fc6.
    avgpool: Option<AdaptiveAvgPool2d>,
    dropout: Dropout,
    fc6: Linear<B>,
    fc7: Linear<B>,
    fc8: Linear<B>,
    relu: Relu,
}

impl<B: Backend> AlexNet<B> {
    /// Class scores (logits) for a batch of normalised images `[batch, 3, 224, 224]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.classifier(self.features(images))
    }

    /// Class probabilities (softmax of the logits).
    pub fn probabilities(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        burn::tensor::activation::softmax(self.forward(images), 1)
    }

    /// The convolutional part: `[batch, 3, 224, 224]` to `[batch, c5, 6, 6]`.
    pub fn features(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        self.features_observed(images, |_, _| {})
    }

    /// The shape after each stage of [`AlexNet::features`], named as in the paper's figure.
    pub fn stage_shapes(&self, images: Tensor<B, 4>) -> Vec<(&'static str, [usize; 4])> {
        let mut shapes = Vec::new();
        self.features_observed(images, |name, x| shapes.push((name, x.dims())));
        shapes
    }

    fn features_observed(
        &self,
        images: Tensor<B, 4>,
        mut observe: impl FnMut(&'static str, &Tensor<B, 4>),
    ) -> Tensor<B, 4> {
        let mut stage = |name, x: Tensor<B, 4>| {
            observe(name, &x);
            x
        };
        let x = stage("conv1", self.relu.forward(self.conv1.forward(images)));
        let x = stage("pool1", self.pool.forward(normalize(&self.lrn1, x)));
        let x = stage("conv2", self.relu.forward(self.conv2.forward(x)));
        let x = stage("pool2", self.pool.forward(normalize(&self.lrn2, x)));
        let x = stage("conv3", self.relu.forward(self.conv3.forward(x)));
        let x = stage("conv4", self.relu.forward(self.conv4.forward(x)));
        let x = stage("conv5", self.relu.forward(self.conv5.forward(x)));
        let x = self.pool.forward(x);
        let x = match &self.avgpool {
            Some(avgpool) => avgpool.forward(x),
            None => x,
        };
        stage("pool5", x)
    }

    /// The fully connected part: dropout, fc6, ReLU, dropout, fc7, ReLU, fc8.
    fn classifier(&self, features: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = features.flatten(1, 3);
        let x = self.relu.forward(self.fc6.forward(self.dropout.forward(x)));
        let x = self.relu.forward(self.fc7.forward(self.dropout.forward(x)));
        self.fc8.forward(x)
    }
}

fn normalize<B: Backend>(lrn: &Option<LocalResponseNorm>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match lrn {
        Some(lrn) => lrn.forward(x),
        None => x,
    }
}
