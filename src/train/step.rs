//! One training step of AlexNet: forward, cross-entropy, backward, and the optimizer's update.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{FloatDType, Int, Tensor, TensorData};

use super::meter::Meter;
use super::precision::Compute;
use crate::{preprocess, AlexNet};

/// What a step needs besides the model and the batch: the optimizer and its state, the loss, the
/// arithmetic's format, and the device.
pub struct Stepper<B: AutodiffBackend, O> {
    pub optim: O,
    loss: CrossEntropyLoss<B>,
    pub precision: Compute,
    pub device: B::Device,
}

impl<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B>> Stepper<B, O> {
    pub fn new(optim: O, precision: Compute, device: &B::Device) -> Self {
        Self { optim, loss: CrossEntropyLossConfig::new().init(device), precision, device: device.clone() }
    }

    /// One step on `images` `[n, 3, 224, 224]` of classes `targets` at rate `lr`: the gradient
    /// of the mean loss, then the update. The batch's loss and hits go to `meter`.
    pub fn step(
        &mut self,
        model: AlexNet<B>,
        images: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
        lr: f64,
        meter: &mut Meter<B::InnerBackend>,
    ) -> AlexNet<B> {
        let grads = self.gradients(&model, images, targets, meter);
        self.apply(model, grads, lr)
    }

    /// The gradient of the mean loss over a batch; its loss and hits go to `meter`.
    pub fn gradients(
        &self,
        model: &AlexNet<B>,
        images: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
        meter: &mut Meter<B::InnerBackend>,
    ) -> GradientsParams {
        let images = self.precision.input(images);
        let logits = self.precision.weights(model).forward(images).cast(FloatDType::F32);
        let loss = self.loss.forward(logits.clone(), targets.clone());
        meter.add(loss.clone().inner(), logits.inner(), targets.inner());
        GradientsParams::from_grads(loss.backward(), model)
    }

    /// The optimizer's update with `grads` (this model's own, or the mean over data-parallel
    /// replicas) at rate `lr`.
    pub fn apply(&mut self, model: AlexNet<B>, grads: GradientsParams, lr: f64) -> AlexNet<B> {
        self.optim.step(lr, model, grads)
    }

    /// A batch on this stepper's device: `inputs` as [`preprocess::batch_from_flat`] reads them
    /// (normalised `[3, 224, 224]` images one after another) and their class indices.
    pub fn batch(&self, inputs: Vec<f32>, labels: &[usize]) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
        let targets: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        let targets = Tensor::from_data(TensorData::new(targets, [labels.len()]), &self.device);
        (preprocess::batch_from_flat(inputs, &self.device), targets)
    }
}

/// Draws the weights of a model fresh from `init` (Burn draws them lazily, on first use), from
/// the backend's generator as it is now. Left to the first step, they would be drawn twice: in
/// the forward pass's copy of the model and again, differently, in the model the step updates,
/// so the first gradient would be applied to weights it was not computed for.
pub fn draw_weights<B: Backend, M: Module<B>>(model: &M) {
    model.visit(&mut DrawWeights);
}

struct DrawWeights;

impl<B: Backend> ModuleVisitor<B> for DrawWeights {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}
