//! The paper's two-GPU split (section 3.2), for classifying on several CPU workers at once.
//!
//! Each [`Part`] holds its share of every hidden weighted layer's filters or neurons (conv1 to
//! conv5, fc6, fc7) and computes that share of each layer's output, one image at a time. Between
//! layers the parts exchange their shares, concatenated in part order (one image's channels, or
//! neurons, one part after another). Where a convolution is grouped as in the paper (conv4 and
//! conv5 of the paper preset) and nothing between it and the layer before mixes channels, each
//! part reads only its own share and nothing is exchanged: the paper's GPUs "communicate only in
//! certain layers". fc8, which teaching replaces, stays with the whole model.
//!
//! The steps run the model's own layers ([`AlexNet::convolutions`], [`AlexNet::after_conv`],
//! [`AlexNet::hidden`]) with dropout off, as at inference; tests hold the concatenated fc7 equal to
//! [`AlexNet::fc7_features`].

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::cpu::conv_relu;
use crate::{AlexNet, INPUT_SIZE};

/// The steps of one image's pass: conv1 to conv5, fc6, fc7.
pub const STEPS: usize = 7;

/// One part of a split network.
pub struct Part<B: Backend> {
    index: usize,
    parts: usize,
    /// The network with only this part's share of conv1..conv5, fc6 and fc7.
    model: AlexNet<B>,
    /// Per step: whether it takes every part's output of the step before (see [`Part::takes_whole`]).
    takes_whole: [bool; STEPS],
    /// The shape of this part's share of the last step's output (`[1, channels, h, w]`, or
    /// `[1, neurons, 1, 1]` after fc6).
    last: [usize; 4],
}

impl<B: Backend> Part<B> {
    /// Part `index` of `parts` of `model`. Every hidden layer's width must divide by `parts`, and
    /// a grouped convolution's groups must be one per part.
    pub fn of(model: AlexNet<B>, index: usize, parts: usize) -> Result<Self, String> {
        if parts == 0 || index >= parts {
            return Err(format!("part {index} of {parts} does not exist"));
        }
        let takes_whole = std::array::from_fn(|i| match i {
            1..=4 => model.convolutions()[i].1.groups == 1 || model.mixes_channels_after(i - 1),
            _ => true,
        });
        let model =
            model.map_hidden(|conv| conv_share(conv, index, parts), |fc| fc_share(fc, index, parts))?;
        Ok(Self { index, parts, model, takes_whole, last: [0; 4] })
    }

    /// Whether step `i` takes every part's output of step `i - 1` (else only this part's own).
    pub fn takes_whole(&self, i: usize) -> bool {
        self.takes_whole.get(i).copied().unwrap_or(true)
    }

    /// This part's share of step `i`'s output, flat. Step 0 takes the normalised image, flat
    /// `[3, 224, 224]`; step `i > 0` the output of step `i - 1`, every part's share concatenated
    /// or this part's own, as [`Part::takes_whole`] says. Steps run in order, one image at a time.
    pub fn step(&mut self, i: usize, input: Vec<f32>) -> Result<Vec<f32>, String> {
        let device = self.model.convolutions()[0].1.weight.device();
        let output = match i {
            0 => {
                let image = checked(input, [1, 3, INPUT_SIZE, INPUT_SIZE], &device)?;
                conv_relu(self.model.convolutions()[0].1, image)
            }
            1..=4 => {
                let x = self.previous(i, input, &device)?;
                let (_, x) = self.model.after_conv(i - 1, x);
                let conv = self.model.convolutions()[i].1;
                conv_relu(conv, self.own_group(conv, x))
            }
            5 | 6 => {
                let x = self.previous(i, input, &device)?;
                let x = if i == 5 { self.model.after_conv(4, x).1 } else { x };
                let fc = self.model.hidden_layers()[i - 5];
                let y = self.model.hidden(fc, x.flatten(1, 3));
                let neurons = y.dims()[1];
                y.reshape([1, neurons, 1, 1])
            }
            _ => return Err(format!("there are {STEPS} steps, not {}", i + 1)),
        };
        self.last = output.dims();
        output.into_data().to_vec::<f32>().map_err(|e| format!("{e:?}"))
    }

    /// The output of the step before step `i`, shaped: every part's share, or this part's own.
    fn previous(&self, i: usize, input: Vec<f32>, device: &B::Device) -> Result<Tensor<B, 4>, String> {
        let [n, channels, h, w] = self.last;
        if n != 1 {
            return Err(format!("step {i} before step {}", i - 1));
        }
        let channels = if self.takes_whole(i) { channels * self.parts } else { channels };
        checked(input, [1, channels, h, w], device)
    }

    /// This part's group of `x`'s channels where `conv` reads one group (its share was cut from a
    /// grouped convolution), else all of `x`.
    fn own_group(&self, conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, channels, _, _] = x.dims();
        let reads = conv.weight.dims()[1];
        if reads == channels {
            return x;
        }
        x.narrow(1, self.index * reads, reads)
    }
}

fn checked<B: Backend>(
    values: Vec<f32>,
    shape: [usize; 4],
    device: &B::Device,
) -> Result<Tensor<B, 4>, String> {
    let want: usize = shape.iter().product();
    if values.len() != want {
        return Err(format!("expected {want} values ({shape:?}), got {}", values.len()));
    }
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

/// Part `index`'s filters of a convolution: the `index`-th share of its outputs. A convolution
/// grouped one group per part becomes that part's group, ungrouped.
fn conv_share<B: Backend>(conv: Conv2d<B>, index: usize, parts: usize) -> Result<Conv2d<B>, String> {
    let outputs = conv.weight.dims()[0];
    if !outputs.is_multiple_of(parts) || !(conv.groups == 1 || conv.groups == parts) {
        return Err(format!(
            "a convolution of {outputs} filters in {} groups does not split into {parts} parts",
            conv.groups
        ));
    }
    let share = outputs / parts;
    let weight = conv.weight.val().narrow(0, index * share, share);
    let bias = conv.bias.map(|b| Param::from_tensor(b.val().narrow(0, index * share, share)));
    Ok(Conv2d { weight: Param::from_tensor(weight), bias, groups: 1, ..conv })
}

/// Part `index`'s neurons of a fully connected layer (Burn stores its weight `[inputs, outputs]`).
fn fc_share<B: Backend>(fc: Linear<B>, index: usize, parts: usize) -> Result<Linear<B>, String> {
    let outputs = fc.weight.dims()[1];
    if !outputs.is_multiple_of(parts) {
        return Err(format!("a layer of {outputs} neurons does not split into {parts} parts"));
    }
    let share = outputs / parts;
    // A copy in rows of its own: the kernels read weights contiguous.
    let columns = fc.weight.val().narrow(1, index * share, share);
    let device = columns.device();
    let weight = Tensor::<B, 2>::from_data(columns.into_data(), &device);
    let bias = fc.bias.map(|b| Param::from_tensor(b.val().narrow(0, index * share, share)));
    Ok(Linear { weight: Param::from_tensor(weight), bias })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AlexNetConfig;
    use burn::backend::Flex;
    use burn::tensor::Distribution;

    type B = Flex;

    /// Runs every part through the steps, exchanging as the page's workers do, and returns fc7.
    fn split_fc7(model: &AlexNet<B>, parts: usize, image: &[f32]) -> Vec<f32> {
        let mut all: Vec<Part<B>> = (0..parts).map(|i| Part::of(model.clone(), i, parts).unwrap()).collect();
        let mut inputs: Vec<Vec<f32>> = vec![image.to_vec(); parts];
        for step in 0..STEPS {
            let shares: Vec<Vec<f32>> =
                all.iter_mut().zip(inputs).map(|(part, input)| part.step(step, input).unwrap()).collect();
            let whole = shares.concat();
            if step + 1 == STEPS {
                return whole;
            }
            let takes_whole = all[0].takes_whole(step + 1);
            inputs = if takes_whole { vec![whole; parts] } else { shares };
        }
        unreachable!()
    }

    fn check(config: AlexNetConfig, parts: usize) {
        let device = Default::default();
        B::seed(&device, 3);
        let model = config.init::<B>(&device);
        let image =
            Tensor::<B, 4>::random([1, 3, INPUT_SIZE, INPUT_SIZE], Distribution::Normal(0.0, 1.0), &device);
        let whole = model.fc7_features(image.clone()).into_data().to_vec::<f32>().unwrap();
        let split = split_fc7(&model, parts, &image.into_data().to_vec::<f32>().unwrap());
        assert_eq!(split.len(), whole.len());
        let scale = whole.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "fc7 is all zeros: the comparison would prove nothing");
        let worst = split.iter().zip(&whole).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(
            worst <= 1e-4 * scale,
            "{:?} in {parts} parts: fc7 differs by {worst} (scale {scale})",
            config.preset
        );
    }

    #[test]
    fn the_parts_together_give_the_whole_networks_fc7() {
        let he = crate::Initialization::He;
        check(AlexNetConfig::paper(10).with_width(0.25).with_initialization(he), 2);
        check(AlexNetConfig::torchvision(10).with_width(0.25).with_initialization(he), 2);
        check(AlexNetConfig::torchvision(10).with_width(0.25).with_initialization(he), 4);
    }

    #[test]
    fn grouped_layers_read_only_their_own_share_unless_lrn_mixed_the_channels() {
        let device = Default::default();
        let paper = AlexNetConfig::paper(10).with_width(0.25).init::<B>(&device);
        let part = Part::of(paper, 0, 2).unwrap();
        // conv2 (grouped, after LRN), conv3 (one group), conv4 and conv5 (grouped), fc6, fc7.
        let whole: Vec<bool> = (1..STEPS).map(|i| part.takes_whole(i)).collect();
        assert_eq!(whole, [true, true, false, false, true, true]);
        let torchvision = AlexNetConfig::torchvision(10).with_width(0.25).init::<B>(&device);
        assert!((1..STEPS).all(|i| Part::of(torchvision.clone(), 1, 2).unwrap().takes_whole(i)));
    }

    #[test]
    fn parts_that_do_not_divide_the_layers_are_refused() {
        let device = Default::default();
        let paper = AlexNetConfig::paper(10).with_width(0.25).init::<B>(&device);
        let refused = Part::of(paper.clone(), 0, 3).err().unwrap();
        assert!(refused.contains("does not split into 3 parts"), "{refused}");
        assert!(Part::of(paper.clone(), 2, 2).is_err());
        let mut part = Part::of(paper, 0, 2).unwrap();
        assert!(part.step(0, vec![0.0; 10]).unwrap_err().contains("expected 150528 values"));
        assert!(part.step(1, vec![0.0; 10]).unwrap_err().contains("step 1 before step 0"));
    }
}
