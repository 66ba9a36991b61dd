//! Each of torchvision AlexNet's layers on the CPU (Flex): our layers (src/cpu) against Burn's,
//! inference at batch 16, and the forward and backward of a training step at batch 32 (run it with
//! `GLIBC_TUNABLES=glibc.malloc.mmap_max=0` to keep freed memory as the trainer does). `cargo run
//! --release --example cpu_layers [-- BATCH]` (docs/benchmarks-history.md: "Our CPU layers").

use std::time::Instant;

use alexnet::cpu::{conv_relu, linear, max_pool};
use burn::backend::{Autodiff, Flex};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

/// torchvision's conv1..conv5: in, out, kernel, stride, padding, input side.
const CONVS: [(usize, usize, usize, usize, usize, usize); 5] = [
    (3, 64, 11, 4, 2, 224),
    (64, 192, 5, 1, 2, 27),
    (192, 384, 3, 1, 1, 13),
    (384, 256, 3, 1, 1, 13),
    (256, 256, 3, 1, 1, 13),
];

/// Milliseconds per call of `f`, after one warm-up call.
fn millis(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    (0..repeats).for_each(|_| f());
    start.elapsed().as_secs_f64() * 1e3 / repeats as f64
}

fn conv<B: Backend>((cin, cout, k, s, p, _): (usize, usize, usize, usize, usize, usize)) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([s, s])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(&Default::default())
}

fn main() {
    let device = Default::default();
    // The inference batch: 16 unless given (`-- 1` for the page's and `trainer predict`'s case).
    let batch = std::env::args().nth(1).map_or(16, |b| b.parse().expect("a batch size"));
    println!("inference, batch {batch} (ms per batch): ours, Burn's");
    for layer in CONVS {
        let (cin, cout, k, s, p, side) = layer;
        let conv = conv::<Flex>(layer);
        let x = Tensor::<Flex, 4>::random([batch, cin, side, side], Distribution::Normal(0.0, 1.0), &device);
        let ours = millis(5, || drop(conv_relu(&conv, x.clone()).into_data()));
        let burns = millis(5, || drop(relu(conv.forward(x.clone())).into_data()));
        let out = (side + 2 * p - k) / s + 1;
        // A direct convolution's count: Winograd's algorithm (batch 4 and up) does fewer.
        let flop = 2.0 * (batch * cout * out * out * cin * k * k) as f64;
        println!(
            "conv {cin}->{cout} {k}x{k}: {ours:.1} ({:.0} effective GFLOP/s), {burns:.1}",
            flop / ours / 1e6
        );
    }
    let pool = MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init();
    for (channels, side) in [(64, 55), (192, 27), (256, 13)] {
        let x =
            Tensor::<Flex, 4>::random([batch, channels, side, side], Distribution::Normal(0.0, 1.0), &device);
        let ours = millis(20, || drop(max_pool(&pool, x.clone()).into_data()));
        let burns = millis(20, || drop(pool.forward(x.clone()).into_data()));
        println!("max pool {channels}x{side}x{side}: {ours:.2}, {burns:.2}");
    }
    for (inputs, outputs) in [(9216, 4096), (4096, 4096), (4096, 1000)] {
        let layer = LinearConfig::new(inputs, outputs).init::<Flex>(&device);
        let x = Tensor::<Flex, 2>::random([batch, inputs], Distribution::Normal(0.0, 1.0), &device);
        let ours = millis(5, || drop(linear(&layer, x.clone()).into_data()));
        let burns = millis(5, || drop(layer.forward(x.clone()).into_data()));
        let flop = 2.0 * (batch * inputs * outputs) as f64;
        println!("linear {inputs}->{outputs}: {ours:.1} ({:.0} GFLOP/s), {burns:.1}", flop / ours / 1e6);
    }

    type A = Autodiff<Flex>;
    let batch = 32;
    println!("training, batch {batch}, forward + backward of one layer (ms): ours, Burn's");
    for layer in CONVS {
        let conv = conv::<A>(layer);
        let (cin, _, _, _, _, side) = layer;
        let x = Tensor::<A, 4>::random([batch, cin, side, side], Distribution::Normal(0.0, 1.0), &device);
        // conv1's input is the images: no gradient wanted there.
        let x = if cin == 3 { x } else { x.require_grad() };
        let step = |ours: bool| {
            let y = if ours { conv_relu(&conv, x.clone()) } else { relu(conv.forward(x.clone())) };
            let grads = y.sum().backward();
            drop(conv.weight.val().grad(&grads).expect("a weight gradient").into_data());
        };
        println!(
            "conv {cin}->{}: {:.0}, {:.0}",
            layer.1,
            millis(2, || step(true)),
            millis(2, || step(false))
        );
    }
    for (inputs, outputs) in [(9216, 4096), (4096, 4096), (4096, 1000)] {
        let layer = LinearConfig::new(inputs, outputs).init::<A>(&device);
        let x =
            Tensor::<A, 2>::random([batch, inputs], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let step = |ours: bool| {
            let y = if ours { linear(&layer, x.clone()) } else { layer.forward(x.clone()) };
            let grads = y.sum().backward();
            drop(layer.weight.val().grad(&grads).expect("a weight gradient").into_data());
        };
        println!(
            "linear {inputs}->{outputs}: {:.0}, {:.0}",
            millis(2, || step(true)),
            millis(2, || step(false))
        );
    }
}
