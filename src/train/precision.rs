//! The number format of the training arithmetic (`--precision`).

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};
use serde::{Deserialize, Serialize};

/// The format the forward and backward passes compute in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Compute {
    /// 32-bit floats throughout (on NVIDIA GPUs from Ampere on, matrix products may use TF32).
    #[default]
    F32,
    /// bfloat16 arithmetic with f32 master weights and optimizer state: each step casts the
    /// weights and the images to bf16, and the logits back to f32 for the loss. Burn 0.21 has no
    /// automatic mixed precision; the cast is differentiable, so the gradients reach the f32
    /// weights. Meant for GPUs with bf16 tensor cores; on the CPU it is only slower.
    Bf16,
}

impl Compute {
    fn dtype(self) -> FloatDType {
        match self {
            Compute::F32 => FloatDType::F32,
            Compute::Bf16 => FloatDType::BF16,
        }
    }

    /// `model` with its weights in this format (a differentiable view of the f32 weights).
    pub fn weights<B: Backend, M: Module<B>>(self, model: &M) -> M {
        match self {
            Compute::F32 => model.clone(),
            dtype => model.clone().map(&mut CastWeights(dtype.dtype())),
        }
    }

    /// `x` in this format.
    pub fn input<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Compute::F32 => x,
            dtype => x.cast(dtype.dtype()),
        }
    }
}

struct CastWeights(FloatDType);

impl<B: Backend> ModuleMapper<B> for CastWeights {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.cast(self.0), mapper)
    }
}
