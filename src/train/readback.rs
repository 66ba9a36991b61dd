//! CPU copies of a live run's model and optimizer state, read back from the device without
//! blocking. WebGPU in a browser reads only asynchronously (`into_data_async`), while Burn's
//! records and our weights files read synchronously; so what a page keeps or exports from a
//! WebGPU run is first copied to Flex here, then saved as any CPU model is.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::{AdaptorRecord, AdaptorRecordV1};
use burn::optim::Optimizer;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_flex::Flex;

use super::sgd::{MomentumState, Sgd, SgdState};
use crate::{AlexNet, AlexNetConfig};

/// The optimizer state of a live run on the CPU, as its checkpoints keep it (a map from each
/// parameter's id to its velocity).
pub type CpuSgdRecord = <OptimizerAdaptor<Sgd, AlexNet<Autodiff<Flex>>, Autodiff<Flex>> as Optimizer<
    AlexNet<Autodiff<Flex>>,
    Autodiff<Flex>,
>>::Record;

/// A tensor's values and shape, waiting for the device without blocking it.
pub async fn read<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Result<TensorData, String> {
    tensor.into_data_async().await.map_err(|e| format!("reading from the device failed: {e:?}"))
}

/// A float tensor's values as f32, in row-major order, read as [`read`] does.
pub async fn read_f32<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Result<Vec<f32>, String> {
    read(tensor).await?.convert::<f32>().to_vec::<f32>().map_err(|e| format!("{e:?}"))
}

/// `model` (of `config`'s shape) on Flex, its parameters' values and ids unchanged.
pub async fn model_on_cpu<B: Backend>(
    model: &AlexNet<B>,
    config: &AlexNetConfig,
) -> Result<AlexNet<Flex>, String> {
    let mut params = Params(Vec::new());
    model.visit(&mut params);
    let mut values = Vec::with_capacity(params.0.len());
    for (id, flat, shape) in params.0 {
        values.push((id, TensorData::new(read_f32(flat).await?, shape)));
    }
    // Every parameter is replaced, so the new model's own (lazily drawn) weights are never drawn.
    let mut fill = Fill { values: values.into_iter(), mismatched: false };
    let copy = config.init::<Flex>(&Default::default()).map(&mut fill);
    if fill.mismatched || fill.values.next().is_some() {
        return Err("the model's parameters do not match its configuration".to_string());
    }
    Ok(copy)
}

/// Each float parameter's id, values (flattened) and shape, in the module's order.
struct Params<B: Backend>(Vec<(ParamId, Tensor<B, 1>, Vec<usize>)>);

impl<B: Backend> ModuleVisitor<B> for Params<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        let shape = value.dims().to_vec();
        self.0.push((param.id, value.reshape([-1]), shape));
    }
}

/// Puts the values [`Params`] read back into a module of the same shape, in the same order;
/// notes a parameter left without a value of its rank.
struct Fill {
    values: std::vec::IntoIter<(ParamId, TensorData)>,
    mismatched: bool,
}

impl ModuleMapper<Flex> for Fill {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<Flex, D>>) -> Param<Tensor<Flex, D>> {
        match self.values.next() {
            Some((id, data)) if data.shape.len() == D => {
                Param::initialized(id, Tensor::from_data(data, &Default::default()))
            }
            _ => {
                self.mismatched = true;
                param
            }
        }
    }
}

/// The optimizer's state (SGD's velocities, by parameter) on the CPU.
pub async fn sgd_on_cpu<M, B: AutodiffBackend>(
    optim: &OptimizerAdaptor<Sgd, M, B>,
) -> Result<CpuSgdRecord, String>
where
    M: burn::module::AutodiffModule<B>,
{
    let mut copy = CpuSgdRecord::default();
    for (id, AdaptorRecord::V1(record)) in Optimizer::<M, B>::to_record(optim) {
        let record = match record {
            AdaptorRecordV1::Rank1(state) => AdaptorRecordV1::Rank1(state_on_cpu(state).await?),
            AdaptorRecordV1::Rank2(state) => AdaptorRecordV1::Rank2(state_on_cpu(state).await?),
            AdaptorRecordV1::Rank3(state) => AdaptorRecordV1::Rank3(state_on_cpu(state).await?),
            AdaptorRecordV1::Rank4(state) => AdaptorRecordV1::Rank4(state_on_cpu(state).await?),
            _ => return Err("an optimizer state of a rank AlexNet does not have".to_string()),
        };
        copy.insert(id, AdaptorRecord::V1(record));
    }
    Ok(copy)
}

async fn state_on_cpu<B: Backend, const D: usize>(
    state: SgdState<B, D>,
) -> Result<SgdState<Flex, D>, String> {
    let momentum = match state.momentum {
        Some(m) => {
            Some(MomentumState { velocity: Tensor::from_data(read(m.velocity).await?, &Default::default()) })
        }
        None => None,
    };
    Ok(SgdState { momentum })
}
