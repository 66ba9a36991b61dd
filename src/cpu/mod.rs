//! Our own layers for the CPU: on Burn's Flex backend (the trainer's `--backend cpu`, `trainer
//! predict`, the page's CPU path) each of AlexNet's conv + ReLU layers runs as im2col + matrix
//! products with the bias and ReLU fused (`conv.rs`), or from batch 4 on, for the stride-1 3x3
//! and 5x5 layers, by Winograd's minimal filtering (`winograd.rs`); max pooling takes its
//! maxima down whole rows (`pool.rs`), and fully connected layers stream their weights once
//! (`linear.rs`); under autodiff their gradients are ours too (`graph.rs`). On every other backend (CUDA, wgpu, WebGPU) these
//! are Burn's `Conv2d`, `Relu`, `MaxPool2d` and `Linear`, as before.
//!
//! How it plugs in: Burn 0.21 extends a backend through a trait the model would have to be
//! bounded by, and every backend type the trainer and page use (Autodiff, Fusion, CubeBackend
//! over three runtimes) would have to implement it here. Instead [`conv_relu`], [`max_pool`] and
//! [`linear()`] look at the concrete backend type: Flex, or Autodiff over Flex, whose backward steps are
//! written with burn-autodiff's `Backward`, as Burn's own ops are. The model stays
//! `AlexNet<B: Backend>`, and the same functions run natively and in wasm.

mod conv;
mod graph;
mod linear;
mod matrix;
mod pool;
mod winograd;

use std::any::{Any, TypeId};

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Shape, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use burn_autodiff::Autodiff;
use burn_flex::{Flex, FlexTensor};

use conv::ConvShape;
use linear::LinearShape;
use pool::PoolShape;

/// The gradients of a layer with weights and a bias, each as its tensor's values.
pub(crate) struct Gradients {
    /// The input's, when asked for.
    pub input: Option<Vec<f32>>,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Whether [`conv_relu`], [`max_pool`] and [`linear()`] take our path on backend `B` (for f32 tensors).
pub fn is_ours<B: Backend>() -> bool {
    ours::<B>().is_some()
}

#[derive(Clone, Copy)]
enum Ours {
    Flex,
    AutodiffFlex,
}

fn ours<B: Backend>() -> Option<Ours> {
    let backend = TypeId::of::<B>();
    if backend == TypeId::of::<Flex>() {
        Some(Ours::Flex)
    } else if backend == TypeId::of::<Autodiff<Flex>>() {
        Some(Ours::AutodiffFlex)
    } else {
        None
    }
}

/// `relu(conv(x))`: ours on the CPU, Burn's `Conv2d` and ReLU elsewhere.
pub fn conv_relu<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let shape = conv_shape(conv, &x).filter(|_| x.dtype() == DType::F32);
    match (ours::<B>(), shape, conv.bias.as_ref()) {
        (Some(ours), Some(shape), Some(bias)) => {
            with_weights(ours, x, conv.weight.val(), bias.val(), shape, conv_forward, graph::conv_relu)
        }
        _ => burn::tensor::activation::relu(conv.forward(x)),
    }
}

/// `pool.forward(x)`: ours on the CPU, Burn's elsewhere.
pub fn max_pool<B: Backend>(pool: &MaxPool2d, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let shape = pool_shape(pool, &x).filter(|_| x.dtype() == DType::F32);
    match (ours::<B>(), shape) {
        (Some(Ours::Flex), Some(shape)) => tensor(pool_forward(cast(primitive(x)), &shape)),
        (Some(Ours::AutodiffFlex), Some(shape)) => tensor(graph::max_pool(cast(primitive(x)), shape)),
        _ => pool.forward(x),
    }
}

/// `linear.forward(x)`: ours on the CPU, Burn's elsewhere.
pub fn linear<B: Backend>(linear: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    let [batch, inputs] = x.dims();
    let [weight_inputs, outputs] = linear.weight.dims();
    let shape = (inputs == weight_inputs && x.dtype() == DType::F32).then_some(LinearShape {
        batch,
        inputs,
        outputs,
    });
    match (ours::<B>(), shape, linear.bias.as_ref()) {
        (Some(ours), Some(shape), Some(bias)) => {
            with_weights(ours, x, linear.weight.val(), bias.val(), shape, linear_forward, graph::linear)
        }
        _ => linear.forward(x),
    }
}

/// A layer with weights and a bias on our path: `flex` on Flex, `graph` (its autodiff step)
/// on Autodiff<Flex>.
fn with_weights<B: Backend, const D: usize, const W: usize, S>(
    ours: Ours,
    x: Tensor<B, D>,
    weight: Tensor<B, W>,
    bias: Tensor<B, 1>,
    shape: S,
    flex: fn(FlexTensor, FlexTensor, FlexTensor, &S) -> FlexTensor,
    graph: fn(
        graph::AutodiffTensor,
        graph::AutodiffTensor,
        graph::AutodiffTensor,
        S,
    ) -> graph::AutodiffTensor,
) -> Tensor<B, D> {
    let [x, weight, bias] = [primitive(x), primitive(weight), primitive(bias)];
    match ours {
        Ours::Flex => tensor(flex(cast(x), cast(weight), cast(bias), &shape)),
        Ours::AutodiffFlex => tensor(graph(cast(x), cast(weight), cast(bias), shape)),
    }
}

/// The convolutions our kernel handles: symmetric explicit padding, no dilation.
fn conv_shape<B: Backend>(conv: &Conv2d<B>, x: &Tensor<B, 4>) -> Option<ConvShape> {
    let [batch, in_channels, height, width] = x.dims();
    let [out_channels, per_group, kh, kw] = conv.weight.dims();
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => [top, left],
        _ => return None,
    };
    let fits = conv.dilation == [1, 1]
        && per_group * conv.groups == in_channels
        && out_channels % conv.groups == 0
        && height + 2 * padding[0] >= kh
        && width + 2 * padding[1] >= kw
        && conv.stride.iter().all(|&s| s > 0);
    fits.then_some(ConvShape {
        batch,
        in_channels,
        in_size: [height, width],
        out_channels,
        kernel: [kh, kw],
        stride: conv.stride,
        padding,
        groups: conv.groups,
    })
}

/// The poolings our kernel handles: no padding, no dilation, floor mode.
fn pool_shape(pool: &MaxPool2d, x: &Tensor<impl Backend, 4>) -> Option<PoolShape> {
    let [batch, channels, height, width] = x.dims();
    let no_padding = matches!(pool.padding, PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0));
    let fits = no_padding
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && height >= pool.kernel_size[0]
        && width >= pool.kernel_size[1]
        && pool.stride.iter().all(|&s| s > 0);
    fits.then_some(PoolShape {
        planes: batch * channels,
        in_size: [height, width],
        kernel: pool.kernel_size,
        stride: pool.stride,
    })
}

/// `tensor` as a Flex tensor when `B` is Flex and it holds f32 (for work done in place, such as
/// the trainer's SGD step), else `tensor` back unchanged.
pub fn into_flex<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Result<FlexTensor, Tensor<B, D>> {
    match ours::<B>() {
        Some(Ours::Flex) if tensor.dtype() == DType::F32 => Ok(cast(primitive(tensor))),
        _ => Err(tensor),
    }
}

/// The reverse of [`into_flex`]. Panics unless `B` is Flex.
pub fn from_flex<B: Backend, const D: usize>(tensor: FlexTensor) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(cast(tensor)))
}

fn primitive<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> B::FloatTensorPrimitive {
    tensor.into_primitive().tensor()
}

fn tensor<B: Backend, const D: usize, T: 'static>(primitive: T) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(cast(primitive)))
}

/// Moves a value to the type that `TypeId` said it has.
fn cast<T: 'static, U: 'static>(value: T) -> U {
    *(Box::new(value) as Box<dyn Any>).downcast::<U>().expect("the backend's tensor type was checked")
}

/// A Flex tensor's values as one contiguous slice.
fn values(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice().expect("made contiguous f32 first")
}

fn flex(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn conv_forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, shape: &ConvShape) -> FlexTensor {
    let [x, weight, bias] = [x, weight, bias].map(|t| t.to_contiguous());
    let out = conv::forward(values(&x), values(&weight), values(&bias), shape);
    let [out_h, out_w] = shape.out_size();
    flex(out, [shape.batch, shape.out_channels, out_h, out_w])
}

fn pool_forward(x: FlexTensor, shape: &PoolShape) -> FlexTensor {
    let [batch, channels, _, _] = x.shape().dims::<4>();
    let out = pool::forward(values(&x.to_contiguous()), shape);
    let [out_h, out_w] = shape.out_size();
    flex(out, [batch, channels, out_h, out_w])
}

fn linear_forward(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, shape: &LinearShape) -> FlexTensor {
    let [x, weight, bias] = [x, weight, bias].map(|t| t.to_contiguous());
    let out = linear::forward(values(&x), values(&weight), Some(values(&bias)), shape);
    flex(out, [shape.batch, shape.outputs])
}
