//! Our CPU layers (src/cpu) against Burn's `Conv2d` + ReLU, `MaxPool2d`, `LocalResponseNorm` and
//! `Linear` on the same backend: outputs, and under autodiff the gradients of inputs, weights and
//! biases.

mod common;

use alexnet::cpu::{conv_relu, linear, max_pool, response_norm, runs_cpu_layers, Lrn};
use alexnet::model::PAPER_LRN;
use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use common::{largest_magnitude, max_relative_difference, Draws};

/// Our sums run in another order than Burn's: they differ by a few 1e-6 of the largest value.
const ROUNDING: f32 = 1e-5;

/// Winograd's algorithm rounds more: its transforms scale values by up to 8 before and after the
/// products. Over 150 draws per layer its weight gradients differed from Burn's by up to 1.1e-5 of
/// the largest value (against float64: ours 1.0e-5, Burn's 8e-7), its outputs and input gradients
/// by up to 7e-6.
const WINOGRAD_ROUNDING: f32 = 4e-5;

/// One layer: `[in, out]` channels, kernel, stride, padding, groups, input side.
struct Layer {
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
    side: usize,
}

/// AlexNet's own layers (narrowed) and odd cases: no padding with a stride that does not divide,
/// padding wider than the stride, a non-square input, a map large enough that Winograd's
/// algorithm takes a batch of 8 in chunks (3, 3 and 2 images).
const LAYERS: [Layer; 6] = [
    Layer { channels: [3, 16], kernel: 11, stride: 4, padding: 2, groups: 1, side: 67 },
    Layer { channels: [16, 24], kernel: 5, stride: 1, padding: 2, groups: 2, side: 13 },
    Layer { channels: [24, 32], kernel: 3, stride: 1, padding: 1, groups: 1, side: 7 },
    Layer { channels: [6, 8], kernel: 3, stride: 2, padding: 0, groups: 1, side: 10 },
    Layer { channels: [4, 6], kernel: 4, stride: 3, padding: 3, groups: 2, side: 9 },
    Layer { channels: [4, 6], kernel: 5, stride: 1, padding: 2, groups: 1, side: 64 },
];

impl Layer {
    /// How far ours may be from Burn's: src/cpu/conv.rs takes Winograd's algorithm for stride-1
    /// 3x3 and 5x5 kernels from batch 4 on.
    fn rounding(&self, batch: usize) -> f32 {
        let winograd = self.stride == 1 && [3, 5].contains(&self.kernel) && batch >= 4;
        if winograd {
            WINOGRAD_ROUNDING
        } else {
            ROUNDING
        }
    }
}

fn conv<B: Backend>(layer: &Layer, draws: &mut Draws, device: &B::Device) -> Conv2d<B> {
    let p = layer.padding;
    let conv = Conv2dConfig::new(layer.channels, [layer.kernel, layer.kernel])
        .with_stride([layer.stride, layer.stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_groups(layer.groups)
        .init(device);
    draws.redraw(conv)
}

/// Inputs `[batch, in, side, side + 3]` with values around zero, so the ReLU cuts about half.
fn input<B: Backend>(layer: &Layer, batch: usize, draws: &mut Draws, device: &B::Device) -> Tensor<B, 4> {
    draws.unit([batch, layer.channels[0], layer.side, layer.side + 3], device)
}

fn assert_close<B: Backend, const D: usize>(
    what: &str,
    ours: Tensor<B, D>,
    burns: Tensor<B, D>,
    tolerance: f32,
) {
    assert_eq!(ours.dims(), burns.dims(), "{what}: shapes");
    let values = |t: Tensor<B, D>| t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 values");
    let (ours, burns) = (values(ours), values(burns));
    assert!(largest_magnitude(&burns) > 0.0, "{what}: all zero");
    let difference = max_relative_difference(&burns, &ours);
    assert!(difference <= tolerance, "{what}: differs by {difference} of the largest value");
}

#[test]
fn forward_matches_burns_conv_and_relu() {
    let device = Default::default();
    let draws = &mut Draws::new(1);
    for (index, layer) in LAYERS.iter().enumerate() {
        // Batch 1 splits each matrix product across threads, batch 3 the images; batch 8 takes
        // Winograd's algorithm for the stride-1 3x3 and 5x5 layers.
        for batch in [1, 3, 8] {
            let conv = conv::<Flex>(layer, draws, &device);
            let x = input::<Flex>(layer, batch, draws, &device);
            let ours = conv_relu(&conv, x.clone());
            let burns = relu(conv.forward(x));
            let zeros = burns.clone().equal_elem(0.0).int().sum().into_scalar() as usize;
            let total = burns.dims().iter().product::<usize>();
            assert!((total / 5..total * 4 / 5).contains(&zeros), "layer {index}: {zeros} of {total} cut");
            assert_close(&format!("layer {index}, batch {batch}"), ours, burns, layer.rounding(batch));
        }
    }
}

#[test]
fn gradients_match_burns_conv_and_relu() {
    type B = Autodiff<Flex>;
    let device = Default::default();
    let draws = &mut Draws::new(2);
    for (index, layer) in LAYERS.iter().enumerate() {
        for batch in [1, 3, 8] {
            let conv = conv::<B>(layer, draws, &device);
            let x = input::<B>(layer, batch, draws, &device).require_grad();
            // A random gradient arriving at the layer's output, zero where the output before the
            // ReLU is within 1e-4 of its largest value from zero: there rounding (Winograd's
            // differs from Burn's by up to ~2e-5) may tip the ReLU either way, and a gradient
            // that passes on one side and not the other is no error of the convolution's.
            let z = conv.forward(x.clone()).detach();
            let clear = z.clone().abs().greater_elem(1e-4 * z.clone().abs().max().into_scalar());
            let upstream = draws.unit::<B, 4>(z.dims(), &device) * clear.float();
            let ours = (conv_relu(&conv, x.clone()) * upstream.clone()).sum().backward();
            let burns = (relu(conv.forward(x.clone())) * upstream).sum().backward();
            let what = |name: &str| format!("layer {index}, batch {batch}: {name}");
            let grad = |t: &Tensor<B, 4>, g| t.grad(g).expect("a gradient");
            let tolerance = layer.rounding(batch);
            assert_close(&what("input"), grad(&x, &ours), grad(&x, &burns), tolerance);
            let weight = &conv.weight.val();
            assert_close(&what("weight"), grad(weight, &ours), grad(weight, &burns), tolerance);
            let bias = conv.bias.as_ref().expect("a bias").val();
            assert_close(&what("bias"), bias.grad(&ours).unwrap(), bias.grad(&burns).unwrap(), ROUNDING);
        }
    }
}

#[test]
fn images_without_gradient_get_none() {
    type B = Autodiff<Flex>;
    let device = Default::default();
    let draws = &mut Draws::new(6);
    let layer = &LAYERS[0];
    let conv = conv::<B>(layer, draws, &device);
    let x = input::<B>(layer, 2, draws, &device);
    let grads = conv_relu(&conv, x.clone()).sum().backward();
    assert!(x.grad(&grads).is_none());
    assert!(conv.weight.val().grad(&grads).is_some());
}

/// (That every other backend runs Burn's layers: trainer/tests/integration/wgpu.rs.)
#[test]
fn cpu_layers_run_on_flex() {
    assert!(runs_cpu_layers::<Flex>());
    assert!(runs_cpu_layers::<Autodiff<Flex>>());
}

/// AlexNet's overlapping pooling (3x3, stride 2) on its three map sizes, and a 2x2 one.
#[test]
fn max_pool_and_its_gradient_match_burns() {
    type B = Autodiff<Flex>;
    let device = Default::default();
    let draws = &mut Draws::new(3);
    for (kernel, stride, side) in [(3, 2, 55), (3, 2, 27), (3, 2, 13), (2, 2, 9)] {
        let pool = MaxPool2dConfig::new([kernel, kernel]).with_strides([stride, stride]).init();
        let x = draws.unit::<B, 4>([2, 5, side, side + 1], &device).require_grad();
        let what = |name: &str| format!("{kernel}x{kernel} stride {stride} on {side}: {name}");
        let (ours, burns) = (max_pool(&pool, x.clone()), pool.forward(x.clone()));
        // A maximum is exact; the gradient sums where windows overlap.
        assert_close(&what("output"), ours.clone(), burns.clone(), 0.0);
        let upstream = draws.unit::<B, 4>(ours.dims(), &device);
        let ours = (ours * upstream.clone()).sum().backward();
        let burns = (burns * upstream).sum().backward();
        assert_close(&what("input gradient"), x.grad(&ours).unwrap(), x.grad(&burns).unwrap(), ROUNDING);
        // Inference on Flex itself.
        let x = x.inner();
        assert_close(&what("Flex output"), max_pool(&pool, x.clone()), pool.forward(x), 0.0);
    }
}

/// The paper's LRN on a conv1-like and an odd shape, with activations large enough (x30) that the
/// window sum changes the output by tens of per cent, and channels fewer than a window; then
/// other parameters (our power for beta 0.75 is square roots, for any other `powf`).
#[test]
fn local_response_norm_and_its_gradient_match_burns() {
    type B = Autodiff<Flex>;
    let device = Default::default();
    let draws = &mut Draws::new(4);
    let other = Lrn { size: 3, alpha: 2e-4, beta: 0.6, k: 1.0 };
    let cases = [[2, 24, 11, 13], [1, 7, 5, 3], [1, 2, 4, 4]].map(|dims| (PAPER_LRN, dims));
    for (params, dims) in cases.into_iter().chain([(other, [1, 9, 6, 5])]) {
        let module = params.burn_module();
        let x = draws.unit::<B, 4>(dims, &device).mul_scalar(30.0).detach().require_grad();
        let what = |name: &str| format!("{params:?} {dims:?}: {name}");
        let (ours, burns) = (response_norm(params, x.clone()), module.forward(x.clone()));
        assert_close(&what("output"), ours.clone(), burns.clone(), ROUNDING);
        let upstream = draws.unit::<B, 4>(dims, &device);
        let ours = (ours * upstream.clone()).sum().backward();
        let burns = (burns * upstream).sum().backward();
        assert_close(&what("input gradient"), x.grad(&ours).unwrap(), x.grad(&burns).unwrap(), ROUNDING);
        let x = x.inner();
        assert_close(&what("Flex output"), response_norm(params, x.clone()), module.forward(x), ROUNDING);
    }
}

/// Fully connected layers: AlexNet's classifier shapes (narrowed), sizes that fill no vector or
/// block evenly, batches of 1 to 6 (our kernel takes rows four at a time), and an input with a
/// NaN, which must reach the output.
#[test]
fn linear_and_its_gradients_match_burns() {
    type B = Autodiff<Flex>;
    let device = Default::default();
    let draws = &mut Draws::new(5);
    for (inputs, outputs) in [(576, 256), (256, 10), (37, 21), (9, 1003)] {
        for batch in [1, 4, 6] {
            let layer = draws.redraw(LinearConfig::new(inputs, outputs).init::<B>(&device));
            let x = draws.unit::<B, 2>([batch, inputs], &device).require_grad();
            let what = |name: &str| format!("{inputs}->{outputs}, batch {batch}: {name}");
            let (ours, burns) = (linear(&layer, x.clone()), layer.forward(x.clone()));
            assert_close(&what("output"), ours.clone(), burns.clone(), ROUNDING);
            let upstream = draws.unit::<B, 2>(ours.dims(), &device);
            let ours = (ours * upstream.clone()).sum().backward();
            let burns = (burns * upstream).sum().backward();
            assert_close(&what("input gradient"), x.grad(&ours).unwrap(), x.grad(&burns).unwrap(), ROUNDING);
            let weight = layer.weight.val();
            assert_close(
                &what("weight gradient"),
                weight.grad(&ours).unwrap(),
                weight.grad(&burns).unwrap(),
                ROUNDING,
            );
            let bias = layer.bias.as_ref().expect("a bias").val();
            assert_close(
                &what("bias gradient"),
                bias.grad(&ours).unwrap(),
                bias.grad(&burns).unwrap(),
                ROUNDING,
            );
            // Inference on Flex itself.
            let (layer, x) = (layer.valid(), x.inner());
            assert_close(&what("Flex output"), linear(&layer, x.clone()), layer.forward(x), ROUNDING);
        }
    }
    let layer = draws.redraw(LinearConfig::new(16, 24).init::<Flex>(&device));
    let x = Tensor::<Flex, 2>::zeros([3, 16], &device)
        .slice_assign([1..2, 5..6], Tensor::full([1, 1], f32::NAN, &device));
    let nan_rows: Vec<bool> = linear(&layer, x).is_nan().any_dim(1).into_data().to_vec().unwrap();
    assert_eq!(nan_rows, [false, true, false]);
}

/// The whole network's parameter gradients for a batch equal the image-weighted mean of its two
/// halves' (what data-parallel training relies on).
#[test]
fn a_batch_gradient_is_the_mean_of_its_halves() {
    use alexnet::AlexNetConfig;
    use burn::module::{Module, ModuleVisitor, Param};
    type B = Autodiff<Flex>;
    let device = Default::default();
    let draws = &mut Draws::new(4);
    let config = AlexNetConfig::torchvision(2).with_width(0.125).with_dropout(0.0);
    let model = draws.redraw(config.init::<B>(&device));
    let images = draws.unit::<B, 4>([8, 3, 224, 224], &device);
    struct Collect<'a>(&'a <B as burn::tensor::backend::AutodiffBackend>::Gradients, Vec<(usize, Vec<f32>)>);
    impl ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let grad = param.val().grad(self.0).expect("a gradient");
            self.1.push((D, grad.into_data().to_vec().unwrap()));
        }
    }
    let grads = |x: Tensor<B, 4>| {
        let loss = model.forward(x).powf_scalar(2.0).mean();
        let grads = loss.backward();
        let mut collect = Collect(&grads, Vec::new());
        model.visit(&mut collect);
        collect.1
    };
    let whole = grads(images.clone());
    let (first, second) = (grads(images.clone().narrow(0, 0, 4)), grads(images.narrow(0, 4, 4)));
    for (index, ((_, w), ((_, a), (_, b)))) in whole.iter().zip(first.iter().zip(&second)).enumerate() {
        let mean: Vec<f32> = a.iter().zip(b).map(|(a, b)| (a + b) / 2.0).collect();
        let difference = max_relative_difference(w, &mean);
        assert!(difference <= 1e-4, "parameter {index}: {difference} of its largest value");
    }
}
