//! One training step of AlexNet: forward, cross-entropy, backward, and the optimizer's update.

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::nn::Linear;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{FloatDType, Int, Tensor, TensorData};

use super::meter::Meter;
use super::precision::Compute;
use crate::{preprocess, AlexNet};

/// A network the step trains: class scores (logits) for a batch of inputs of rank `D`.
pub trait Classifier<B: Backend, const D: usize> {
    fn logits(&self, input: Tensor<B, D>) -> Tensor<B, 2>;
}

/// The whole network, on normalised images `[batch, 3, 224, 224]`.
impl<B: Backend> Classifier<B, 4> for AlexNet<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward(images)
    }
}

/// A last layer alone, on features `[batch, inputs]` (teaching new classes).
impl<B: Backend> Classifier<B, 2> for Linear<B> {
    fn logits(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(features)
    }
}

/// What a step needs besides the model and the batch: the optimizer and its state, the loss, the
/// arithmetic's format, and the device.
pub struct Stepper<B: AutodiffBackend, O> {
    pub optim: O,
    loss: CrossEntropyLoss<B>,
    pub precision: Compute,
    pub device: B::Device,
}

impl<B: AutodiffBackend, O> Stepper<B, O> {
    pub fn new(optim: O, precision: Compute, device: &B::Device) -> Self {
        Self { optim, loss: CrossEntropyLossConfig::new().init(device), precision, device: device.clone() }
    }

    /// One step on `input` (images for AlexNet) of classes `targets` at rate `lr`: the gradient
    /// of the mean loss, then the update. The batch's loss and hits go to `meter`.
    pub fn step<M, const D: usize>(
        &mut self,
        model: M,
        input: Tensor<B, D>,
        targets: Tensor<B, 1, Int>,
        lr: f64,
        meter: &mut Meter<B::InnerBackend>,
    ) -> M
    where
        M: AutodiffModule<B> + Classifier<B, D>,
        O: Optimizer<M, B>,
    {
        let grads = self.gradients(&model, input, targets, meter);
        self.apply(model, grads, lr)
    }

    /// The gradient of the mean loss over a batch; its loss and hits go to `meter`.
    pub fn gradients<M, const D: usize>(
        &self,
        model: &M,
        input: Tensor<B, D>,
        targets: Tensor<B, 1, Int>,
        meter: &mut Meter<B::InnerBackend>,
    ) -> GradientsParams
    where
        M: AutodiffModule<B> + Classifier<B, D>,
    {
        let input = self.precision.input(input);
        let logits = self.precision.weights(model).logits(input).cast(FloatDType::F32);
        let loss = self.loss.forward(logits.clone(), targets.clone());
        meter.add(loss.clone().inner(), logits.inner(), targets.inner());
        GradientsParams::from_grads(loss.backward(), model)
    }

    /// The optimizer's update with `grads` (this model's own, or the mean over data-parallel
    /// replicas) at rate `lr`.
    pub fn apply<M: AutodiffModule<B>>(&mut self, model: M, grads: GradientsParams, lr: f64) -> M
    where
        O: Optimizer<M, B>,
    {
        self.optim.step(lr, model, grads)
    }

    /// Class indices as targets on this stepper's device.
    pub fn targets(&self, labels: &[usize]) -> Tensor<B, 1, Int> {
        let targets: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        Tensor::from_data(TensorData::new(targets, [labels.len()]), &self.device)
    }

    /// A batch of images on this stepper's device: `inputs` as [`preprocess::batch_from_flat`]
    /// reads them (normalised `[3, 224, 224]` images one after another) and their classes.
    pub fn batch(&self, inputs: Vec<f32>, labels: &[usize]) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
        (preprocess::batch_from_flat(inputs, &self.device), self.targets(labels))
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
