//! Our CPU layers as steps of Burn's autodiff graph on Flex: forward through the kernels in
//! [`conv`], [`pool`] and [`linear`], backward through their gradients.

use burn::tensor::ops::FloatTensor;
use burn::tensor::{Shape, TensorMetadata};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::{Autodiff, NodeId};
use burn_flex::{Flex, FlexTensor};

use super::conv::{self, ConvShape};
use super::gradients::Gradients as LayerGradients;
use super::linear::LinearShape;
use super::lrn::{self, Lrn, LrnShape};
use super::on_flex::{conv_forward, flex, linear_forward, lrn_forward, pool_forward, values};
use super::pool::{self, PoolShape};

/// A tensor on `Autodiff<Flex>` (burn-autodiff does not export its name).
pub(super) type AutodiffTensor = FloatTensor<Autodiff<Flex>>;

/// Hands a layer's gradients to the parents (input, weights, bias) that want one.
fn register(
    grads: &mut Gradients,
    [x, weight, bias]: [Option<NodeId>; 3],
    found: LayerGradients,
    [x_shape, weight_shape]: [Shape; 2],
) {
    if let (Some(node), Some(input)) = (x, found.input) {
        grads.register::<Flex>(node, flex(input, x_shape));
    }
    if let Some(node) = weight {
        grads.register::<Flex>(node, flex(found.weight, weight_shape));
    }
    if let Some(node) = bias {
        let len = found.bias.len();
        grads.register::<Flex>(node, flex(found.bias, [len]));
    }
}

#[derive(Debug)]
struct ConvReluBackward;

impl Backward<Flex, 3> for ConvReluBackward {
    /// Input, weights and the layer's output (its positive entries are where the ReLU passed).
    type State = (FlexTensor, FlexTensor, FlexTensor, ConvShape);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, weight_node, bias_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, weight, output, shape) = ops.state;
        let [x_shape, weight_shape] = [x.shape(), weight.shape()];
        let [x, weight, output] = [x, weight, output].map(|t| t.to_contiguous());
        let found = conv::backward(
            values(&x),
            values(&weight),
            values(&output),
            values(&grad),
            &shape,
            x_node.is_some(),
        );
        let nodes = [x_node, weight_node, bias_node].map(|node| node.map(|node| node.id));
        register(grads, nodes, found, [x_shape, weight_shape]);
    }
}

/// `relu(conv(x) + bias)` under `Autodiff<Flex>`.
pub fn conv_relu(
    x: AutodiffTensor,
    weight: AutodiffTensor,
    bias: AutodiffTensor,
    shape: ConvShape,
) -> AutodiffTensor {
    let nodes = [x.node.clone(), weight.node.clone(), bias.node.clone()];
    match ConvReluBackward.prepare::<NoCheckpointing>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let output = conv_forward(x.primitive.clone(), weight.primitive.clone(), bias.primitive, &shape);
            prep.finish((x.primitive, weight.primitive, output.clone(), shape), output)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(conv_forward(x.primitive, weight.primitive, bias.primitive, &shape))
        }
    }
}

#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    /// The input: the backward pass finds each window's maximum again.
    type State = (FlexTensor, PoolShape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [Some(node)] = ops.parents else { return };
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, shape) = ops.state;
        let x_shape = x.shape();
        let input = pool::backward(values(&x.to_contiguous()), values(&grad), &shape);
        grads.register::<Flex>(node.id, flex(input, x_shape));
    }
}

/// Max pooling under `Autodiff<Flex>`.
pub fn max_pool(x: AutodiffTensor, shape: PoolShape) -> AutodiffTensor {
    match MaxPoolBackward.prepare::<NoCheckpointing>([x.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let output = pool_forward(x.primitive.clone(), &shape);
            prep.finish((x.primitive, shape), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(pool_forward(x.primitive, &shape)),
    }
}

#[derive(Debug)]
struct LrnBackward;

impl Backward<Flex, 1> for LrnBackward {
    /// The input: the backward pass computes its scales again.
    type State = (FlexTensor, Lrn, LrnShape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [Some(node)] = ops.parents else { return };
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, params, shape) = ops.state;
        let x_shape = x.shape();
        let input = lrn::backward(values(&x.to_contiguous()), values(&grad), &params, &shape);
        grads.register::<Flex>(node.id, flex(input, x_shape));
    }
}

/// Local response normalisation under `Autodiff<Flex>`.
pub fn lrn(x: AutodiffTensor, params: Lrn, shape: LrnShape) -> AutodiffTensor {
    match LrnBackward.prepare::<NoCheckpointing>([x.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let output = lrn_forward(x.primitive.clone(), &params, &shape);
            prep.finish((x.primitive, params, shape), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(lrn_forward(x.primitive, &params, &shape)),
    }
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    /// Input and weights.
    type State = (FlexTensor, FlexTensor, LinearShape);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, weight_node, bias_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, weight, shape) = ops.state;
        let [x_shape, weight_shape] = [x.shape(), weight.shape()];
        let [x, weight] = [x, weight].map(|t| t.to_contiguous());
        let found =
            super::linear::backward(values(&x), values(&weight), values(&grad), &shape, x_node.is_some());
        let nodes = [x_node, weight_node, bias_node].map(|node| node.map(|node| node.id));
        register(grads, nodes, found, [x_shape, weight_shape]);
    }
}

/// `x · weight + bias` under `Autodiff<Flex>`.
pub fn linear(
    x: AutodiffTensor,
    weight: AutodiffTensor,
    bias: AutodiffTensor,
    shape: LinearShape,
) -> AutodiffTensor {
    let nodes = [x.node.clone(), weight.node.clone(), bias.node.clone()];
    match LinearBackward.prepare::<NoCheckpointing>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let output =
                linear_forward(x.primitive.clone(), weight.primitive.clone(), bias.primitive, &shape);
            prep.finish((x.primitive, weight.primitive, shape), output)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(linear_forward(x.primitive, weight.primitive, bias.primitive, &shape))
        }
    }
}
