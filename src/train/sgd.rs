//! The paper's optimizer: SGD with momentum (without dampening, as the paper and PyTorch) and
//! weight decay. The same update as Burn's `Sgd` with those settings, with the same record layout
//! (so checkpoints of either resume with the other), but on the CPU it is one pass over each
//! parameter that writes the new weights and velocity: Burn's takes five tensor operations, each
//! reading and allocating a whole tensor (fc6's are 151 MB), a large share of a training
//! step here (docs/benchmarks-history.md). Other backends take the same five operations as Burn's.

use crate::cpu::{from_flex, into_flex};
use crate::AlexNet;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{LearningRate, Optimizer, SimpleOptimizer};
use burn::record::Record;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData, TensorMetadata};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// The paper's optimizer for AlexNet: SGD with `momentum` (without dampening) and
/// `weight_decay`, as a Burn optimizer.
pub fn sgd<B: AutodiffBackend>(momentum: f64, weight_decay: f64) -> impl Optimizer<AlexNet<B>, B> {
    sgd_for::<AlexNet<B>, B>(momentum, weight_decay)
}

/// [`sgd`] for any module `M` (a last layer being taught).
pub fn sgd_for<M: AutodiffModule<B>, B: AutodiffBackend>(
    momentum: f64,
    weight_decay: f64,
) -> OptimizerAdaptor<Sgd, M, B> {
    Sgd { momentum: momentum as f32, weight_decay: weight_decay as f32 }.init::<M, B>()
}

#[derive(Clone, Debug)]
pub struct Sgd {
    pub momentum: f32,
    pub weight_decay: f32,
}

impl Sgd {
    /// As a Burn optimizer for `M`.
    pub fn init<M: AutodiffModule<B>, B: AutodiffBackend>(self) -> OptimizerAdaptor<Self, M, B> {
        OptimizerAdaptor::from(self)
    }
}

/// Burn's `SgdState` field for field, so the records match.
#[derive(Record, Clone)]
pub struct SgdState<B: Backend, const D: usize> {
    pub momentum: Option<MomentumState<B, D>>,
}

/// Burn's `MomentumState`.
#[derive(Record, Clone)]
pub struct MomentumState<B: Backend, const D: usize> {
    pub velocity: Tensor<B, D>,
}

impl<B: Backend> SimpleOptimizer<B> for Sgd {
    type State<const D: usize> = SgdState<B, D>;

    /// `g = grad + weight_decay * w; v = momentum * v + g` (`v = g` at first);
    /// `w = w - lr * v`.
    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        weights: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let velocity = state.and_then(|state| state.momentum).map(|momentum| momentum.velocity);
        let (weights, velocity) = match (into_flex(weights), into_flex(grad), velocity.map(into_flex)) {
            (Ok(weights), Ok(grad), None) => self.fused(lr, &weights, &grad, None),
            (Ok(weights), Ok(grad), Some(Ok(velocity))) => self.fused(lr, &weights, &grad, Some(&velocity)),
            (weights, grad, velocity) => {
                let back =
                    |tensor: Result<FlexTensor, Tensor<B, D>>| tensor.map_or_else(|tensor| tensor, from_flex);
                let (weights, grad) = (back(weights), back(grad));
                let grad = grad + weights.clone().mul_scalar(self.weight_decay);
                let velocity = match velocity.map(back) {
                    Some(velocity) => velocity.mul_scalar(self.momentum) + grad,
                    None => grad,
                };
                (weights - velocity.clone().mul_scalar(lr), velocity)
            }
        };
        (weights, Some(SgdState { momentum: Some(MomentumState { velocity }) }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        let momentum = state.momentum.map(|m| MomentumState { velocity: m.velocity.to_device(device) });
        SgdState { momentum }
    }
}

impl Sgd {
    /// The step on Flex tensors, in one pass (parallel) that writes the new weights and velocity.
    fn fused<B: Backend, const D: usize>(
        &self,
        lr: LearningRate,
        weights: &FlexTensor,
        grad: &FlexTensor,
        velocity: Option<&FlexTensor>,
    ) -> (Tensor<B, D>, Tensor<B, D>) {
        let (lr, momentum, decay) = (lr as f32, self.momentum, self.weight_decay);
        let [weights, grad] = [weights, grad].map(|t| t.to_contiguous());
        let velocity = velocity.map(|v| v.to_contiguous());
        let (w, g): (&[f32], &[f32]) = (weights.as_slice().expect("f32"), grad.as_slice().expect("f32"));
        let v: Option<&[f32]> = velocity.as_ref().map(|v| v.as_slice().expect("f32"));
        let mut new_weights = vec![0.0; w.len()];
        let mut new_velocity = vec![0.0; w.len()];
        const CHUNK: usize = 1 << 16;
        new_weights.par_chunks_mut(CHUNK).zip(new_velocity.par_chunks_mut(CHUNK)).enumerate().for_each(
            |(chunk, (new_w, new_v))| {
                let range = chunk * CHUNK..chunk * CHUNK + new_w.len();
                let (w, g) = (&w[range.clone()], &g[range.clone()]);
                let v = v.map(|v| &v[range]);
                for i in 0..new_w.len() {
                    let g = g[i] + decay * w[i];
                    new_v[i] = v.map_or(g, |v| momentum * v[i] + g);
                    new_w[i] = w[i] - lr * new_v[i];
                }
            },
        );
        let shape = weights.shape();
        let tensor =
            |values: Vec<f32>| from_flex(FlexTensor::from_data(TensorData::new(values, shape.clone())));
        (tensor(new_weights), tensor(new_velocity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{GradientsParams, SgdConfig};
    use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
    use burn::tensor::Distribution;

    type B = Autodiff<Flex>;

    fn burns() -> impl Optimizer<Linear<B>, B> {
        SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0)))
            .with_weight_decay(Some(WeightDecayConfig::new(0.01)))
            .init()
    }

    fn step(model: Linear<B>, optim: &mut impl Optimizer<Linear<B>, B>, seed: u64) -> Linear<B> {
        let device = Default::default();
        B::seed(&device, seed);
        let x = Tensor::<B, 2>::random([4, 6], Distribution::Normal(0.0, 1.0), &device);
        let grads = GradientsParams::from_grads(model.forward(x).powf_scalar(2.0).sum().backward(), &model);
        optim.step(0.1, model, grads)
    }

    fn largest_difference(a: &Linear<B>, b: &Linear<B>) -> f32 {
        let difference = (a.weight.val() - b.weight.val()).abs().max().into_scalar();
        difference
            .max((a.bias.as_ref().unwrap().val() - b.bias.as_ref().unwrap().val()).abs().max().into_scalar())
    }

    #[test]
    fn same_steps_and_records_as_burns_sgd() {
        let device = Default::default();
        let start: Linear<B> = LinearConfig::new(6, 3).init(&device);
        let (mut ours, mut theirs) = (Sgd { momentum: 0.9, weight_decay: 0.01 }.init(), burns());
        let (mut a, mut b) = (start.clone(), start.clone());
        for seed in 0..3 {
            a = step(a, &mut ours, seed);
            b = step(b, &mut theirs, seed);
        }
        assert!(largest_difference(&a, &start) > 0.01, "the steps moved the weights");
        assert!(largest_difference(&a, &b) < 1e-6, "{}", largest_difference(&a, &b));

        // Burn's optimizer record, as a checkpoint holds it, resumes ours (and the reverse).
        let recorder = BinBytesRecorder::<FullPrecisionSettings>::new();
        let bytes = recorder.record(theirs.to_record(), ()).unwrap();
        let mut resumed = Sgd { momentum: 0.9, weight_decay: 0.01 }.init();
        resumed = resumed.load_record(recorder.load(bytes, &device).unwrap());
        let bytes = recorder.record(ours.to_record(), ()).unwrap();
        let mut theirs_resumed = burns().load_record(recorder.load(bytes, &device).unwrap());
        let (c, d) = (step(a.clone(), &mut resumed, 9), step(b.clone(), &mut theirs_resumed, 9));
        let plain = step(b, &mut theirs, 9);
        assert!(largest_difference(&c, &plain) < 1e-6, "{}", largest_difference(&c, &plain));
        assert!(largest_difference(&d, &plain) < 1e-6, "{}", largest_difference(&d, &plain));
    }
}
