//! The running loss and accuracy of training (and validation) batches, counted on the device.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// Mean loss and accuracies over some images.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Means {
    pub images: usize,
    pub loss: f64,
    pub top1: f64,
    pub top5: f64,
}

/// Running sums of loss and top-1/top-5 hits, kept on the device: reading them waits for the
/// device, so a training loop reads them only when it shows them.
pub struct Meter<B: Backend> {
    /// `[loss sum, top-1 hits, top-5 hits]`.
    sums: Option<Tensor<B, 1>>,
    images: usize,
    /// Sums at the last `read_since_last`, for the means of the images since then.
    last: Means,
}

impl<B: Backend> Default for Meter<B> {
    fn default() -> Self {
        Self { sums: None, images: 0, last: Means::default() }
    }
}

impl<B: Backend> Meter<B> {
    /// Adds one batch: its mean loss `[1]`, its logits `[n, classes]` and targets `[n]`.
    pub fn add(&mut self, mean_loss: Tensor<B, 1>, logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) {
        let n = targets.dims()[0];
        let (top1, top5) = hits(logits, targets);
        self.add_sums(Tensor::cat(vec![mean_loss.mul_scalar(n as f64), top1, top5], 0), n);
    }

    /// Adds sums `[loss sum, top-1 hits, top-5 hits]` over `images` images: another meter's
    /// (see [`Meter::take_sums`]).
    pub fn add_sums(&mut self, sums: Tensor<B, 1>, images: usize) {
        self.sums = Some(match self.sums.take() {
            Some(mine) => mine + sums,
            None => sums,
        });
        self.images += images;
    }

    /// Everything added so far, for another meter (a data-parallel peer's shard counted by the
    /// coordinator's meter), leaving this one empty.
    pub fn take_sums(&mut self) -> Option<(Tensor<B, 1>, usize)> {
        let images = std::mem::take(&mut self.images);
        self.last = Means::default();
        self.sums.take().map(|sums| (sums, images))
    }

    pub fn images(&self) -> usize {
        self.images
    }

    /// Means over everything added so far (waits for the device).
    pub fn read(&self) -> Means {
        self.means(self.sums.clone().map(Tensor::into_data))
    }

    /// [`Meter::read`] without blocking the thread (WebGPU in a browser reads only so).
    pub async fn read_async(&self) -> Result<Means, String> {
        let sums = match &self.sums {
            Some(sums) => Some(super::readback::read(sums.clone()).await?),
            None => None,
        };
        Ok(self.means(sums))
    }

    fn means(&self, sums: Option<TensorData>) -> Means {
        let Some(sums) = sums else { return Means::default() };
        let sums: Vec<f64> = sums.iter::<f64>().collect();
        let n = self.images.max(1) as f64;
        Means { images: self.images, loss: sums[0] / n, top1: sums[1] / n, top5: sums[2] / n }
    }

    /// Means over everything, and over the images added since the previous call.
    pub fn read_since_last(&mut self) -> (Means, Means) {
        let all = self.read();
        let new = all.images - self.last.images;
        let part = |now: f64, before: f64| {
            (now * all.images as f64 - before * self.last.images as f64) / new.max(1) as f64
        };
        let recent = Means {
            images: new,
            loss: part(all.loss, self.last.loss),
            top1: part(all.top1, self.last.top1),
            top5: part(all.top5, self.last.top5),
        };
        self.last = all;
        (all, recent)
    }
}

/// Top-1 and top-5 hits of a batch, counted on the device: the target's rank is the number of
/// other classes scoring at least as high (a tie counts against it, so a network that outputs
/// constants scores 0, not 100 %).
pub fn hits<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [n, classes] = logits.dims();
    let target_logit = logits.clone().gather(1, targets.reshape([n, 1])).expand([n, classes]);
    let rank = logits.greater_equal(target_logit).float().sum_dim(1).sub_scalar(1.0);
    let top1 = rank.clone().lower_elem(0.5).float().sum();
    let top5 = rank.lower_elem(4.5).float().sum();
    (top1, top5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    #[test]
    fn the_meter_counts_ranks_on_the_device() {
        let device = Default::default();
        let logits = Tensor::<Flex, 2>::from_data(
            [
                [0.0f32, 5.0, 1.0, 2.0, 3.0, 4.0, -1.0], // target 1: first
                [6.0, 5.0, 1.0, 2.0, 3.0, 4.0, -1.0],    // target 1: second
                [0.0, 5.0, 1.0, 2.0, 3.0, 4.0, -1.0],    // target 6: last
                [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],     // target 2: all tied, a miss
            ],
            &device,
        );
        let targets = Tensor::<Flex, 1, Int>::from_data(TensorData::from([1i64, 1, 6, 2]), &device);
        let mut meter = Meter::<Flex>::default();
        meter.add(Tensor::from_data([2.0f32], &device), logits.clone(), targets.clone());
        let (all, recent) = meter.read_since_last();
        assert_eq!(all, Means { images: 4, loss: 2.0, top1: 0.25, top5: 0.5 });
        assert_eq!(recent, all);
        meter.add(Tensor::from_data([1.0f32], &device), logits.slice(0..2), targets.slice(0..2));
        let (all, recent) = meter.read_since_last();
        assert_eq!(recent, Means { images: 2, loss: 1.0, top1: 0.5, top5: 1.0 });
        assert_eq!(all.images, 6);
        assert!((all.loss - 10.0 / 6.0).abs() < 1e-9 && (all.top5 - 4.0 / 6.0).abs() < 1e-9);
    }
}
