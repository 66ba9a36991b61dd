//! Our own layers for the CPU: on Burn's Flex backend (the trainer's `--backend cpu`, `trainer
//! predict`, the page's CPU path) each of AlexNet's conv + ReLU layers runs as im2col + matrix
//! products with the bias and ReLU fused (`conv.rs`), or, for the stride-1 3x3 and 5x5 layers
//! (natively from batch 4 on, in wasm from one image), by Winograd's minimal filtering
//! (`winograd.rs`); max pooling takes its maxima down whole rows (`pool.rs`), local response
//! normalisation sums whole channel planes (`lrn.rs`), and fully connected layers stream their
//! weights once (`linear.rs`); under autodiff their gradients are ours too (`graph.rs`). On every
//! other backend (CUDA, wgpu, WebGPU) these are Burn's `Conv2d`, `Relu`, `MaxPool2d` and
//! `Linear`, as before.
//!
//! How it plugs in: Burn 0.21 extends a backend through a trait the model would have to be
//! bounded by, and every backend type the trainer and page use (Autodiff, Fusion, CubeBackend
//! over three runtimes) would have to implement it here. Instead [`conv_relu`], [`max_pool`] and
//! [`linear()`] look at the concrete backend type: Flex, or Autodiff over Flex, whose backward steps are
//! written with burn-autodiff's `Backward`, as Burn's own ops are. The model stays
//! `AlexNet<B: Backend>`, and the same functions run natively and in wasm.

mod conv;
mod gradients;
mod graph;
mod kernels;
mod linear;
mod lrn;
mod matrix;
mod on_flex;
mod pool;
mod winograd;

use std::any::{Any, TypeId};

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_autodiff::Autodiff;
use burn_flex::{Flex, FlexTensor};

pub use kernels::{chosen as chosen_kernels, Kernels};
pub use lrn::Lrn;

use conv::ConvShape;
use linear::LinearShape;
use lrn::LrnShape;
use on_flex::{conv_forward, linear_forward, lrn_forward, pool_forward};
use pool::PoolShape;

/// Whether [`conv_relu`], [`max_pool`] and [`linear()`] run our CPU layers on backend `B` (for
/// f32 tensors): on Flex, with or without autodiff.
pub fn runs_cpu_layers<B: Backend>() -> bool {
    flex_kind::<B>().is_some()
}

/// Which of the two backends our CPU layers run on `B` is.
#[derive(Clone, Copy)]
enum FlexKind {
    Plain,
    Autodiff,
}

fn flex_kind<B: Backend>() -> Option<FlexKind> {
    let backend = TypeId::of::<B>();
    if backend == TypeId::of::<Flex>() {
        Some(FlexKind::Plain)
    } else if backend == TypeId::of::<Autodiff<Flex>>() {
        Some(FlexKind::Autodiff)
    } else {
        None
    }
}

/// `relu(conv(x))`: ours on the CPU, Burn's `Conv2d` and ReLU elsewhere.
pub fn conv_relu<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let shape = conv_shape(conv, &x).filter(|_| x.dtype() == DType::F32);
    match (flex_kind::<B>(), shape, conv.bias.as_ref()) {
        (Some(kind), Some(shape), Some(bias)) => {
            with_weights(kind, x, conv.weight.val(), bias.val(), shape, conv_forward, graph::conv_relu)
        }
        _ => burn::tensor::activation::relu(conv.forward(x)),
    }
}

/// `pool.forward(x)`: ours on the CPU, Burn's elsewhere.
pub fn max_pool<B: Backend>(pool: &MaxPool2d, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let shape = pool_shape(pool, &x).filter(|_| x.dtype() == DType::F32);
    match (flex_kind::<B>(), shape) {
        (Some(FlexKind::Plain), Some(shape)) => tensor(pool_forward(cast(primitive(x)), &shape)),
        (Some(FlexKind::Autodiff), Some(shape)) => tensor(graph::max_pool(cast(primitive(x)), shape)),
        _ => pool.forward(x),
    }
}

/// Local response normalisation with `params`: ours on the CPU, Burn's elsewhere.
pub fn response_norm<B: Backend>(params: Lrn, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [images, channels, height, width] = x.dims();
    let shape = LrnShape { images, channels, pixels: height * width };
    match flex_kind::<B>().filter(|_| x.dtype() == DType::F32 && params.size % 2 == 1) {
        Some(FlexKind::Plain) => tensor(lrn_forward(cast(primitive(x)), &params, &shape)),
        Some(FlexKind::Autodiff) => tensor(graph::lrn(cast(primitive(x)), params, shape)),
        None => params.burn_module().forward(x),
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
    match (flex_kind::<B>(), shape, linear.bias.as_ref()) {
        (Some(kind), Some(shape), Some(bias)) => {
            with_weights(kind, x, linear.weight.val(), bias.val(), shape, linear_forward, graph::linear)
        }
        _ => linear.forward(x),
    }
}

/// A layer with weights and a bias on our path: `flex` on Flex, `graph` (its autodiff step)
/// on Autodiff<Flex>.
fn with_weights<B: Backend, const D: usize, const W: usize, S>(
    kind: FlexKind,
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
    match kind {
        FlexKind::Plain => tensor(flex(cast(x), cast(weight), cast(bias), &shape)),
        FlexKind::Autodiff => tensor(graph(cast(x), cast(weight), cast(bias), shape)),
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
/// our SGD step), else `tensor` back unchanged.
pub(crate) fn into_flex<B: Backend, const D: usize>(
    tensor: Tensor<B, D>,
) -> Result<FlexTensor, Tensor<B, D>> {
    match flex_kind::<B>() {
        Some(FlexKind::Plain) if tensor.dtype() == DType::F32 => Ok(cast(primitive(tensor))),
        _ => Err(tensor),
    }
}

/// The reverse of [`into_flex`]. Panics unless `B` is Flex.
pub(crate) fn from_flex<B: Backend, const D: usize>(tensor: FlexTensor) -> Tensor<B, D> {
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
