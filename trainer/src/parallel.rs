//! The seam of data-parallel training. Every replica of the model (a peer thread, an MPI
//! process, or the one model of a plain run) steps the same way, [`replica_step`]: its gradient
//! on its share of the batch ([`share`]), the mean over all replicas ([`Averaging`]), the
//! optimizer's update. Two transports implement the averaging: burn-collective's all-reduce
//! between peer threads (`crate::peers`) and MPI between processes (`crate::ranks`); a plain run
//! averages over itself ([`Alone`]).

use std::ops::Range;

use alexnet::train::{Meter, Stepper};
use alexnet::AlexNet;
use anyhow::Result;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;

use crate::data::Batch;

/// How the replicas of a run agree on one gradient.
pub trait Averaging<B: AutodiffBackend> {
    /// The mean gradient over every replica's images, from this replica's mean gradient `grads`
    /// over its `images` (`None` when it had none). `None` when no replica had an image.
    fn average(
        &self,
        model: &AlexNet<B>,
        grads: Option<GradientsParams>,
        images: usize,
    ) -> Result<Option<GradientsParams>>;
}

/// The only replica: its gradient is the mean.
pub struct Alone;

impl<B: AutodiffBackend> Averaging<B> for Alone {
    fn average(
        &self,
        _: &AlexNet<B>,
        grads: Option<GradientsParams>,
        _: usize,
    ) -> Result<Option<GradientsParams>> {
        Ok(grads)
    }
}

/// One SGD step of a replica on its share of a batch: the gradient of its mean loss (its loss and
/// hits go to `meter`), the mean over every replica, and the update. Every replica takes the same
/// step, so the replicas stay equal.
pub fn replica_step<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B>>(
    stepper: &mut Stepper<B, O>,
    model: AlexNet<B>,
    share: Batch,
    lr: f64,
    meter: &mut Meter<B::InnerBackend>,
    averaging: &impl Averaging<B>,
) -> Result<AlexNet<B>> {
    let images = share.len();
    let grads = (images > 0).then(|| {
        let (inputs, targets) = stepper.batch(share.inputs, &share.labels);
        stepper.gradients(&model, inputs, targets, meter)
    });
    Ok(match averaging.average(&model, grads, images)? {
        Some(grads) => stepper.apply(model, grads, lr),
        None => model,
    })
}

/// Replica `index`'s share of a batch of `len` samples among `count` replicas: equal parts in
/// order. What does not divide evenly (at the end of an epoch) is left out: every replica steps
/// on as many images, so no image weighs more than another in the mean.
pub fn share(len: usize, index: usize, count: usize) -> Range<usize> {
    let each = len / count.max(1);
    index * each..(index + 1) * each
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_are_equal_parts_in_order_without_the_remainder() {
        assert_eq!([0, 1, 2].map(|i| share(8, i, 3)), [0..2, 2..4, 4..6]);
        assert_eq!(share(7, 1, 2), 3..6);
        assert_eq!(share(1, 0, 2), 0..0, "one image cannot feed two replicas");
        assert_eq!(share(5, 0, 1), 0..5);
    }
}
