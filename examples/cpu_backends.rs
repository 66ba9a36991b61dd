//! Compares Burn's CPU backends on AlexNet's forward pass (the figure that picked the tests'
//! backend). Run: `cargo run --release --example cpu_backends`.

use std::time::Instant;

use alexnet::AlexNetConfig;
use burn::backend::{Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

fn images_per_second<B: Backend>(batch: usize, device: &B::Device) -> f64 {
    let model = AlexNetConfig::torchvision(1000).init::<B>(device);
    let images = Tensor::<B, 4>::random([batch, 3, 224, 224], Distribution::Default, device);
    let _ = model.forward(images.clone()).into_data(); // warm-up
    let runs = 3;
    let start = Instant::now();
    for _ in 0..runs {
        let _ = model.forward(images.clone()).into_data();
    }
    (runs * batch) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    for batch in [1, 16] {
        let flex = images_per_second::<Flex>(batch, &Default::default());
        let ndarray = images_per_second::<NdArray>(batch, &Default::default());
        println!("batch {batch:>2}: flex {flex:6.1} img/s, ndarray {ndarray:6.1} img/s");
    }
}
