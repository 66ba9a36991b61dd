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

use crate::cpu::{conv_relu, linear, max_pool, response_norm, Lrn};
use burn::config::Config;
use burn::module::{Initializer, Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, LocalResponseNorm, PaddingConfig2d, Relu};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Side of the square images the network takes.
pub const INPUT_SIZE: usize = 224;

/// Which AlexNet to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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

/// How fresh weights are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
    /// He's everywhere but conv1, drawn as the paper draws it, N(0, 0.01): a seventh of He's scale
    /// there, so that the filters conv1 learns from a small dataset are not buried under its
    /// initial draw (weight decay removes that draw only over far longer training).
    HeSmallConv1,
}

impl Initialization {
    /// How conv1 is drawn.
    fn conv1(self) -> Self {
        match self {
            Self::HeSmallConv1 => Self::Paper,
            other => other,
        }
    }

    /// How every layer after conv1 is drawn.
    fn after_conv1(self) -> Self {
        match self {
            Self::HeSmallConv1 => Self::He,
            other => other,
        }
    }
}

/// AlexNet's hyper-parameters. Saved with every model so a weights file rebuilds its own network.
/// With the crate's `clap` feature they are also command-line options (the trainer's).
#[derive(Config, Debug, PartialEq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct AlexNetConfig {
    /// Which network: the 2012 paper's, or torchvision's.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = Preset::Paper))]
    pub preset: Preset,
    /// Size of the last layer (1000 for ImageNet, 10 for Imagenette; the trainer takes it from
    /// the dataset).
    #[config(default = 1000)]
    #[cfg_attr(feature = "clap", arg(skip = 1000usize))]
    pub num_classes: usize,
    /// Scales every layer's width (1 = AlexNet); smaller is faster, for experiments.
    #[config(default = 1.0)]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1.0))]
    pub width: f64,
    /// Dropout probability in the classifier: on fc6's and fc7's outputs in the paper preset,
    /// on their inputs in torchvision's.
    #[config(default = 0.5)]
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.5))]
    pub dropout: f64,
    /// How fresh weights are drawn.
    #[config(default = "Initialization::Paper")]
    #[cfg_attr(feature = "clap", arg(long = "init", value_enum, default_value_t = Initialization::Paper))]
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
        Widths { conv: conv.map(scale), hidden: scale(4096) }
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

    /// Builds the network with fresh weights on `device`, layer by layer as the paper's table
    /// (section 3.5 and figure 2) gives them.
    ///
    /// Panics on an invalid config; call [`AlexNetConfig::validate`] first on untrusted values.
    pub fn init<B: Backend>(&self, device: &B::Device) -> AlexNet<B> {
        if let Err(message) = self.validate() {
            panic!("invalid AlexNetConfig: {message}");
        }
        let Widths { conv: [c1, c2, c3, c4, c5], hidden } = self.widths();
        let paper = self.preset == Preset::Paper;
        // The paper splits conv2, conv4 and conv5 across its two GPUs; conv3 sees both halves.
        let halves = if paper { 2 } else { 1 };
        let init = self.initialization.after_conv1();
        let conv = |layer: ConvLayer| layer.init(init, device);
        let linear = |layer: LinearLayer| layer.init(init, device);
        AlexNet {
            conv1: ConvLayer {
                channels: [3, c1],
                kernel: 11,
                stride: 4,
                padding: 2,
                groups: 1,
                paper_bias: 0.0,
            }
            .init(self.initialization.conv1(), device),
            lrn1: paper.then(local_response_norm),
            conv2: conv(ConvLayer {
                channels: [c1, c2],
                kernel: 5,
                stride: 1,
                padding: 2,
                groups: halves,
                paper_bias: 1.0,
            }),
            lrn2: paper.then(local_response_norm),
            conv3: conv(ConvLayer {
                channels: [c2, c3],
                kernel: 3,
                stride: 1,
                padding: 1,
                groups: 1,
                paper_bias: 0.0,
            }),
            conv4: conv(ConvLayer {
                channels: [c3, c4],
                kernel: 3,
                stride: 1,
                padding: 1,
                groups: halves,
                paper_bias: 1.0,
            }),
            conv5: conv(ConvLayer {
                channels: [c4, c5],
                kernel: 3,
                stride: 1,
                padding: 1,
                groups: halves,
                paper_bias: 1.0,
            }),
            // Overlapping pooling (section 3.4): 3x3 windows, stride 2.
            pool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init(),
            avgpool: (!paper).then(|| AdaptiveAvgPool2dConfig::new([6, 6]).init()),
            preset: self.preset,
            dropout: DropoutConfig::new(self.dropout).init(),
            fc6: linear(LinearLayer { features: [c5 * 6 * 6, hidden], paper_bias: 1.0, output: false }),
            fc7: linear(LinearLayer { features: [hidden, hidden], paper_bias: 1.0, output: false }),
            fc8: linear(LinearLayer { features: [hidden, self.num_classes], paper_bias: 0.0, output: true }),
            relu: Relu::new(),
        }
    }
}

/// LRN, section 3.3: `b = a / (k + alpha * sum over n neighbouring channels of a^2)^beta` with
/// k = 2, n = 5, alpha = 1e-4, beta = 0.75. We implement the paper's formula; Burn's (and
/// PyTorch's) LocalResponseNorm divides alpha by n, so it is given `alpha * n`.
pub const PAPER_LRN: Lrn = Lrn { size: 5, alpha: 1e-4, beta: 0.75, k: 2.0 };

/// Burn's module for [`PAPER_LRN`].
pub fn local_response_norm() -> LocalResponseNorm {
    PAPER_LRN.burn_module()
}

/// One convolution of the table. `paper_bias`: its biases under the paper's initialisation.
struct ConvLayer {
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
    paper_bias: f64,
}

/// One fully connected layer of the table; `output`: fc8.
struct LinearLayer {
    features: [usize; 2],
    paper_bias: f64,
    output: bool,
}

/// Weights under each initialisation: `None` keeps Burn's default (Kaiming-uniform, PyTorch's).
fn weight_init(init: Initialization) -> Option<Initializer> {
    match init {
        Initialization::Default => None,
        Initialization::Paper => Some(Initializer::Normal { mean: 0.0, std: 0.01 }),
        Initialization::He => {
            Some(Initializer::KaimingNormal { gain: std::f64::consts::SQRT_2, fan_out_only: false })
        }
        Initialization::HeSmallConv1 => weight_init(Initialization::He),
    }
}

/// Biases under each initialisation: the paper's constants, zeros for He, Burn's default otherwise.
fn bias_value(init: Initialization, paper_bias: f64) -> Option<f64> {
    match init {
        Initialization::Default => None,
        Initialization::Paper => Some(paper_bias),
        Initialization::He | Initialization::HeSmallConv1 => Some(0.0),
    }
}

impl ConvLayer {
    fn init<B: Backend>(self, init: Initialization, device: &B::Device) -> Conv2d<B> {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let mut config = Conv2dConfig::new(self.channels, [k, k])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_groups(self.groups);
        if let Some(initializer) = weight_init(init) {
            config.initializer = initializer;
        }
        let mut conv = config.init(device);
        if let Some(value) = bias_value(init, self.paper_bias) {
            conv.bias = constant_bias(conv.bias, value);
        }
        conv
    }
}

impl LinearLayer {
    fn init<B: Backend>(self, init: Initialization, device: &B::Device) -> Linear<B> {
        let mut config = LinearConfig::new(self.features[0], self.features[1]);
        if let Some(initializer) = weight_init(init) {
            // The output layer starts small in both schemes: near-uniform predictions, a loss
            // near ln(classes), and no early blow-up through the softmax.
            config.initializer =
                if self.output { Initializer::Normal { mean: 0.0, std: 0.01 } } else { initializer };
        }
        let mut linear = config.init(device);
        if let Some(value) = bias_value(init, self.paper_bias) {
            linear.bias = constant_bias(linear.bias, value);
        }
        linear
    }
}

fn constant_bias<B: Backend>(bias: Option<Param<Tensor<B, 1>>>, value: f64) -> Option<Param<Tensor<B, 1>>> {
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
    pool: MaxPool2d,
    /// torchvision only; the identity at 224x224, it lets other input sizes reach fc6.
    avgpool: Option<AdaptiveAvgPool2d>,
    /// Where dropout acts: the paper's (outputs of fc6 and fc7) or torchvision's (their inputs).
    #[module(skip)]
    preset: Preset,
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

    /// The largest parameter tensor as (name, elements), e.g. `("fc6.weight", 37748736)`: what a
    /// GPU must hold in one buffer binding. Reads shapes only, so on a freshly built model it
    /// allocates nothing (Burn initialises parameters lazily).
    pub fn largest_parameter(&self) -> (String, usize) {
        let mut largest = Largest { path: Vec::new(), name: String::new(), elements: 0 };
        self.visit(&mut largest);
        (largest.name, largest.elements)
    }

    /// conv1's learned filters, `[c1, 3, 11, 11]`: the paper's Figure 3.
    pub fn conv1_filters(&self) -> Tensor<B, 4> {
        self.conv1.weight.val()
    }

    /// Each convolution's output (after its ReLU) for `images`, conv1 to conv5.
    pub fn conv_outputs(&self, images: Tensor<B, 4>) -> Vec<(&'static str, Tensor<B, 4>)> {
        let mut outputs = Vec::new();
        self.features_observed(images, |name, x| {
            if name.starts_with("conv") {
                outputs.push((name, x.clone()));
            }
        });
        outputs
    }

    /// The same network with dropout off, also under autodiff (for gradients of the input).
    pub fn without_dropout(self) -> Self {
        Self { dropout: DropoutConfig::new(0.0).init(), ..self }
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
        let mut x = images;
        for (i, (name, conv)) in self.convolutions().into_iter().enumerate() {
            x = conv_relu(conv, x);
            observe(name, &x);
            let (name, after) = self.after_conv(i, x);
            if let Some(name) = name {
                observe(name, &after);
            }
            x = after;
        }
        x
    }

    /// conv1 to conv5, named as in the paper's figure.
    pub(crate) fn convolutions(&self) -> [(&'static str, &Conv2d<B>); 5] {
        [
            ("conv1", &self.conv1),
            ("conv2", &self.conv2),
            ("conv3", &self.conv3),
            ("conv4", &self.conv4),
            ("conv5", &self.conv5),
        ]
    }

    /// What follows convolution `i` (0 = conv1) before the next weighted layer, with its name in
    /// the paper's figure: LRN and max pooling after conv1 and conv2 (section 3.3-3.4), max pooling
    /// after conv5 (and torchvision's average pool); nothing (and no name) after conv3 and conv4.
    pub(crate) fn after_conv(&self, i: usize, x: Tensor<B, 4>) -> (Option<&'static str>, Tensor<B, 4>) {
        match i {
            0 => (Some("pool1"), max_pool(&self.pool, normalize(&self.lrn1, x))),
            1 => (Some("pool2"), max_pool(&self.pool, normalize(&self.lrn2, x))),
            4 => {
                let x = max_pool(&self.pool, x);
                let x = match &self.avgpool {
                    Some(avgpool) => avgpool.forward(x),
                    None => x,
                };
                (Some("pool5"), x)
            }
            _ => (None, x),
        }
    }

    /// Whether [`AlexNet::after_conv`] mixes channels after convolution `i` (LRN does): then the
    /// next layer needs every channel even where its groups read only their own.
    pub(crate) fn mixes_channels_after(&self, i: usize) -> bool {
        match i {
            0 => self.lrn1.is_some(),
            1 => self.lrn2.is_some(),
            _ => false,
        }
    }

    /// fc6 and fc7, the hidden fully connected layers.
    pub(crate) fn hidden_layers(&self) -> [&Linear<B>; 2] {
        [&self.fc6, &self.fc7]
    }

    /// A hidden fully connected layer and its ReLU (dropout, where the preset puts it, is outside).
    pub(crate) fn hidden(&self, layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.relu.forward(linear(layer, x))
    }

    /// The same network with each of conv1..conv5, fc6 and fc7 replaced: what [`crate::split`]
    /// cuts its parts with.
    pub(crate) fn map_hidden(
        self,
        conv: impl Fn(Conv2d<B>) -> Result<Conv2d<B>, String>,
        fc: impl Fn(Linear<B>) -> Result<Linear<B>, String>,
    ) -> Result<Self, String> {
        Ok(Self {
            conv1: conv(self.conv1)?,
            conv2: conv(self.conv2)?,
            conv3: conv(self.conv3)?,
            conv4: conv(self.conv4)?,
            conv5: conv(self.conv5)?,
            fc6: fc(self.fc6)?,
            fc7: fc(self.fc7)?,
            ..self
        })
    }

    /// The fully connected part: fc6, fc7 (ReLU after each) and fc8, with dropout where the
    /// preset puts it.
    fn classifier(&self, features: Tensor<B, 4>) -> Tensor<B, 2> {
        self.last_layer(self.fc6_fc7(features))
    }

    /// The class scores (logits) from fc7's features: fc8.
    pub fn last_layer(&self, fc7: Tensor<B, 2>) -> Tensor<B, 2> {
        linear(&self.fc8, fc7)
    }

    /// fc7's output for a batch of normalised images `[batch, 3, 224, 224]`: `[batch, fc7 width]`,
    /// after its ReLU (and, on an autodiff backend, the preset's dropout). What a new last layer
    /// learns from (DeCAF: an ImageNet AlexNet's fc7 serves as general features).
    pub fn fc7_features(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.fc6_fc7(self.features(images))
    }

    /// The same network with a fresh last layer for `classes` classes, drawn as every preset
    /// draws fc8 (N(0, 0.01), biases 0): the start of fine-tuning on other classes.
    pub fn with_new_classes(self, classes: usize) -> Self {
        let [inputs, _] = self.fc8.weight.dims();
        let device = self.fc8.weight.device();
        let fc8 = LinearConfig::new(inputs, classes)
            .with_initializer(Initializer::Normal { mean: 0.0, std: 0.01 })
            .init(&device);
        let fc8 = Linear { bias: constant_bias(fc8.bias, 0.0), ..fc8 };
        self.with_last_layer(fc8)
    }

    /// How many features fc7 gives (what a last layer takes).
    pub fn fc7_width(&self) -> usize {
        self.fc8.weight.dims()[0]
    }

    /// The same network with `fc8` as its last layer (a taught one, for other classes).
    pub fn with_last_layer(self, fc8: Linear<B>) -> Self {
        Self { fc8, ..self }
    }

    fn fc6_fc7(&self, features: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = features.flatten(1, 3);
        let (fc6, fc7, drop) = (|x| self.hidden(&self.fc6, x), |x| self.hidden(&self.fc7, x), &self.dropout);
        match self.preset {
            // Paper section 4.2 (and Caffe's reference net): "dropout in the first two
            // fully-connected layers", i.e. on the outputs of fc6 and fc7.
            Preset::Paper => drop.forward(fc7(drop.forward(fc6(x)))),
            // torchvision's `alexnet`: on the inputs of fc6 and fc7.
            Preset::Torchvision => fc7(drop.forward(fc6(drop.forward(x)))),
        }
    }
}

struct Largest {
    path: Vec<String>,
    name: String,
    elements: usize,
}

impl<B: Backend> ModuleVisitor<B> for Largest {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let elements = param.lazy_shape().num_elements();
        if elements > self.elements {
            (self.name, self.elements) = (self.path.join("."), elements);
        }
    }
}

/// The paper's LRN where the preset has it (the module marks where; its parameters are
/// [`PAPER_LRN`]).
fn normalize<B: Backend>(lrn: &Option<LocalResponseNorm>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match lrn {
        Some(_) => response_norm(PAPER_LRN, x),
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    type B = Autodiff<Flex>;

    /// With one image, a row of fc6's weight gradient is zero exactly where fc6's input is zero
    /// (Burn stores linear weights `[in, out]`). So the zero rows tell whether dropout acted on
    /// fc6's input (torchvision) or not (the paper, which drops fc6's and fc7's outputs).
    fn fc6_input_zeros(preset: Preset) -> (usize, usize, usize) {
        let device = Default::default();
        B::seed(&device, 5);
        let config = AlexNetConfig::new(preset)
            .with_num_classes(10)
            .with_width(0.25)
            .with_initialization(Initialization::He);
        let model: AlexNet<B> = config.init(&device);
        let image = Tensor::<B, 4>::random([1, 3, 224, 224], Distribution::Normal(0.0, 1.0), &device);
        let features = model.features(image.clone()).flatten::<2>(1, 3);
        let inputs = features.dims()[1];
        let zero_features = features.equal_elem(0.0).int().sum().into_scalar() as usize;
        let grads = model.forward(image).sum().backward();
        let grad = model.fc6.weight.grad(&grads).expect("fc6 has a gradient");
        let zero_rows = grad.abs().sum_dim(1).equal_elem(0.0).int().sum().into_scalar() as usize;
        (inputs, zero_features, zero_rows)
    }

    #[test]
    fn dropout_acts_where_each_preset_puts_it() {
        let (inputs, zero_features, zero_rows) = fc6_input_zeros(Preset::Paper);
        assert!(zero_features < inputs / 2, "{zero_features} of {inputs} features are zero");
        assert_eq!(zero_rows, zero_features, "the paper preset must not drop fc6's inputs");

        let (inputs, zero_features, zero_rows) = fc6_input_zeros(Preset::Torchvision);
        let dropped = zero_rows - zero_features;
        let alive = inputs - zero_features;
        // Dropout 0.5 on fc6's input zeroes about half of the features that were not zero.
        assert!((alive * 2 / 5..=alive * 3 / 5).contains(&dropped), "{dropped} of {alive} dropped");
    }
}
