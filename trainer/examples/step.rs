use alexnet::{AlexNet, AlexNetConfig, Preset};
use burn::backend::{Autodiff, Flex};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
type B = Autodiff<Flex>;
fn main() {
    let d = Default::default();
    let mut model: AlexNet<B> = AlexNetConfig::new(Preset::Torchvision).with_width(0.25).with_num_classes(2).with_dropout(0.0).init(&d);
    let mut optim = SgdConfig::new().init::<B, AlexNet<B>>();
    let x = Tensor::<B,4>::random([4,3,224,224], Distribution::Normal(0.0,1.0), &d);
    let y = Tensor::<B,1,Int>::from_data(TensorData::new(vec![0i64,1,0,1],[4]), &d);
    let lf = CrossEntropyLossConfig::new().init(&d);
    for i in 0..10 {
        let logits = model.forward(x.clone());
        let loss = lf.forward(logits.clone(), y.clone());
        println!("step {i}: loss {} logits {:?}", loss.clone().into_scalar(), &logits.clone().into_data().to_vec::<f32>().unwrap()[..4]);
        let g = loss.backward();
        let grads = GradientsParams::from_grads(g, &model);
        println!("  grads for {} params", grads.len());
        model = optim.step(0.05, model, grads);
    }
}
