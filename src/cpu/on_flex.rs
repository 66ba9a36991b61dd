//! Our layers' forward passes on Flex tensors (the autodiff steps in `graph.rs` call them too).

use burn::tensor::{Shape, TensorData, TensorMetadata};
use burn_flex::FlexTensor;

use super::conv::{self, ConvShape};
use super::linear::{self, LinearShape};
use super::lrn::{self, Lrn, LrnShape};
use super::pool::{self, PoolShape};

/// A Flex tensor's values as one contiguous slice.
pub fn values(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice().expect("made contiguous f32 first")
}

pub fn flex(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

pub fn conv_forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, shape: &ConvShape) -> FlexTensor {
    let [x, weight, bias] = [x, weight, bias].map(|t| t.to_contiguous());
    let out = conv::forward(values(&x), values(&weight), values(&bias), shape);
    let [out_h, out_w] = shape.out_size();
    flex(out, [shape.batch, shape.out_channels, out_h, out_w])
}

pub fn pool_forward(x: FlexTensor, shape: &PoolShape) -> FlexTensor {
    let [batch, channels, _, _] = x.shape().dims::<4>();
    let out = pool::forward(values(&x.to_contiguous()), shape);
    let [out_h, out_w] = shape.out_size();
    flex(out, [batch, channels, out_h, out_w])
}

pub fn lrn_forward(x: FlexTensor, params: &Lrn, shape: &LrnShape) -> FlexTensor {
    let x_shape = x.shape();
    flex(lrn::forward(values(&x.to_contiguous()), params, shape), x_shape)
}

pub fn linear_forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    shape: &LinearShape,
) -> FlexTensor {
    let [x, weight, bias] = [x, weight, bias].map(|t| t.to_contiguous());
    let out = linear::forward(values(&x), values(&weight), Some(values(&bias)), shape);
    flex(out, [shape.batch, shape.outputs])
}
