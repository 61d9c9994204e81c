//! MobileNetV2 encoder (Sandler et al. 2018), laid out exactly as torchvision's `features` so the
//! ImageNet weights load by name. Besides the final 1280-channel map it exposes the skip features
//! the segmentation teacher's U-Net taps (the TF Pix2Pix choice: the expansion activations of
//! blocks 1, 3, 6 and 13, and block 16's projection).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::ops::PadMode;
use burn::tensor::Slice;

/// How the 3×3 depthwise convolutions are computed during training. Both give the same numbers
/// and the same weights (`[C, 1, 3, 3]`, torchvision layout); they differ only in speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
pub enum Depthwise {
    /// Burn's grouped `conv2d`. Burn-CubeCL 0.21 differentiates it one group at a time, a few
    /// kernel launches per channel: thousands per training step on CUDA.
    Grouped,
    /// Nine shifted, per-channel-scaled views of the padded input, summed: a few dozen
    /// element-wise ops per layer whatever the channel count.
    Taps,
}

/// A depthwise `k×k` convolution (`weight` `[C, 1, k, k]`, padding `k/2`, no bias) from taps.
pub fn depthwise_taps<B: Backend>(x: Tensor<B, 4>, weight: Tensor<B, 4>, stride: usize) -> Tensor<B, 4> {
    let [_, channels, h, w] = x.dims();
    let k = weight.dims()[2];
    let pad = k / 2;
    let padded = x.pad((pad, pad, pad, pad), PadMode::Constant(0.0));
    let (out_h, out_w) = ((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1);
    let span = |start: usize, len: usize| Slice::new(start as isize, Some((start + (len - 1) * stride + 1) as isize), stride as isize);
    let mut sum: Option<Tensor<B, 4>> = None;
    for dy in 0..k {
        for dx in 0..k {
            let view = padded.clone().slice([Slice::full(), Slice::full(), span(dy, out_h), span(dx, out_w)]);
            let scale = weight.clone().slice([0..channels, 0..1, dy..dy + 1, dx..dx + 1]).reshape([1, channels, 1, 1]);
            let term = view * scale;
            sum = Some(match sum {
                Some(s) => s + term,
                None => term,
            });
        }
    }
    sum.unwrap_or_else(|| unreachable!("a kernel has at least one tap"))
}

/// `min(max(x, 0), 6)`.
pub fn relu6<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clamp(0.0, 6.0)
}

/// Conv (no bias) + batch norm, optionally followed by ReLU6.
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    pub conv: Conv2d<B>,
    pub bn: BatchNorm<B>,
    pub relu6: bool,
    /// Depthwise conv computed from taps (see [`Depthwise`]).
    pub taps: bool,
    /// Normalise with the running statistics in training too, leaving them as they are (scale
    /// and shift still learn): training then sees what inference sees ([`Encoder::freeze_statistics`]).
    pub frozen_statistics: bool,
}

/// Batch-norm running mean and variance of these units: counted by `num_params` but not trained.
pub fn running_statistics<'a, B: Backend>(units: impl IntoIterator<Item = &'a ConvBn<B>>) -> usize {
    units.into_iter().map(|u| 2 * u.bn.gamma.dims()[0]).sum()
}

impl<B: Backend> ConvBn<B> {
    pub fn new(device: &B::Device, cin: usize, cout: usize, kernel: usize, stride: usize, groups: usize, relu6: bool) -> Self {
        Self::with_depthwise(device, cin, cout, kernel, stride, groups, relu6, Depthwise::Grouped)
    }

    #[allow(clippy::too_many_arguments)]
    fn with_depthwise(device: &B::Device, cin: usize, cout: usize, kernel: usize, stride: usize, groups: usize, relu6: bool, depthwise: Depthwise) -> Self {
        let conv = Conv2dConfig::new([cin, cout], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(kernel / 2, kernel / 2, kernel / 2, kernel / 2))
            .with_groups(groups)
            .with_bias(false)
            .init(device);
        let taps = depthwise == Depthwise::Taps && groups > 1 && groups == cin && cin == cout;
        Self { conv, bn: BatchNormConfig::new(cout).init(device), relu6, taps, frozen_statistics: false }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let z = if self.taps { depthwise_taps(x, self.conv.weight.val(), self.conv.stride[0]) } else { self.conv.forward(x) };
        let y = if self.frozen_statistics { with_running_statistics(&self.bn, z) } else { self.bn.forward(z) };
        if self.relu6 { relu6(y) } else { y }
    }
}

/// `bn` applied with its running mean and variance whatever the backend (Burn's `forward` uses
/// the batch's own under autodiff and updates the running ones). They are detached: an optimiser
/// would otherwise step them as parameters.
fn with_running_statistics<B: Backend>(bn: &BatchNorm<B>, z: Tensor<B, 4>) -> Tensor<B, 4> {
    let shape = [1, bn.gamma.dims()[0], 1, 1];
    let std = bn.running_var.value().detach().add_scalar(bn.epsilon).sqrt().reshape(shape);
    (z - bn.running_mean.value().detach().reshape(shape)) / std * bn.gamma.val().reshape(shape) + bn.beta.val().reshape(shape)
}

/// One inverted-residual block: optional 1×1 expansion, 3×3 depthwise, 1×1 linear projection.
#[derive(Module, Debug)]
pub struct InvertedResidual<B: Backend> {
    pub expand: Option<ConvBn<B>>,
    pub depthwise: ConvBn<B>,
    pub project: ConvBn<B>,
    pub residual: bool,
}

impl<B: Backend> InvertedResidual<B> {
    fn new(device: &B::Device, cin: usize, cout: usize, stride: usize, expansion: usize, depthwise: Depthwise) -> Self {
        let hidden = cin * expansion;
        Self {
            expand: (expansion != 1).then(|| ConvBn::new(device, cin, hidden, 1, 1, 1, true)),
            depthwise: ConvBn::with_depthwise(device, hidden, hidden, 3, stride, hidden, true, depthwise),
            project: ConvBn::new(device, hidden, cout, 1, 1, 1, false),
            residual: stride == 1 && cin == cout,
        }
    }

    /// Output and the expansion activation (the block's input when there is no expansion).
    fn forward_tapped(&self, x: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let expanded = match &self.expand {
            Some(e) => e.forward(x.clone()),
            None => x.clone(),
        };
        let y = self.project.forward(self.depthwise.forward(expanded.clone()));
        (if self.residual { y + x } else { y }, expanded)
    }
}

/// `(expansion t, channels c, repeats n, first stride s)` of torchvision's MobileNetV2.
pub const SETTINGS: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

/// Channel counts rounded the way torchvision rounds them for a width multiplier.
pub fn make_divisible(v: f32, divisor: usize) -> usize {
    let d = divisor as f32;
    let new = ((v + d / 2.0) / d).floor().max(1.0) as usize * divisor;
    if (new as f32) < 0.9 * v { new + divisor } else { new }
}

/// Indices (into `blocks`, i.e. torchvision `features.{i+1}`) whose expansion activations are
/// skip taps: blocks 1, 3, 6 and 13 in TF numbering.
const SKIP_BLOCKS: [usize; 4] = [1, 3, 6, 13];

#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    /// `features.0`
    pub stem: ConvBn<B>,
    /// `features.1` … `features.17`
    pub blocks: Vec<InvertedResidual<B>>,
    /// `features.18`
    pub head: ConvBn<B>,
}

/// What the encoder hands to the task heads.
pub struct EncoderOutput<B: Backend> {
    /// Strides 2, 4, 8, 16 (e.g. 64², 32², 16², 8² at a 128² input).
    pub skips: [Tensor<B, 4>; 4],
    /// Block 16's projection, stride 32 (320 channels at width 1).
    pub bottleneck: Tensor<B, 4>,
    /// `features.18` output, stride 32 (1280 channels at width ≤ 1).
    pub top: Tensor<B, 4>,
}

#[derive(Config, Debug)]
pub struct EncoderConfig {
    #[config(default = 1.0)]
    pub width: f32,
    #[config(default = "Depthwise::Grouped")]
    pub depthwise: Depthwise,
}

impl EncoderConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Encoder<B> {
        let mut cin = make_divisible(32.0 * self.width, 8);
        let stem = ConvBn::new(device, 3, cin, 3, 2, 1, true);
        let mut blocks = Vec::new();
        for (t, c, n, s) in SETTINGS {
            let cout = make_divisible(c as f32 * self.width, 8);
            for i in 0..n {
                blocks.push(InvertedResidual::new(device, cin, cout, if i == 0 { s } else { 1 }, t, self.depthwise));
                cin = cout;
            }
        }
        let top = make_divisible(1280.0 * self.width.max(1.0), 8);
        Encoder { stem, blocks, head: ConvBn::new(device, cin, top, 1, 1, 1, true) }
    }
}

impl<B: Backend> Encoder<B> {
    /// Every conv + batch-norm unit, input to output.
    pub fn units(&self) -> impl Iterator<Item = &ConvBn<B>> {
        let blocks = self.blocks.iter().flat_map(|b| b.expand.iter().chain([&b.depthwise, &b.project]));
        std::iter::once(&self.stem).chain(blocks).chain(std::iter::once(&self.head))
    }

    /// The encoder with every unit's batch norm on its running statistics in training too: a
    /// run continued this way trains what inference runs, and faces of another kind in its
    /// batches (generated ones) no longer move the statistics real faces are normalised with.
    pub fn freeze_statistics(mut self) -> Self {
        self.units_mut().for_each(|unit| unit.frozen_statistics = true);
        self
    }

    fn units_mut(&mut self) -> impl Iterator<Item = &mut ConvBn<B>> {
        let blocks = self.blocks.iter_mut().flat_map(|b| b.expand.iter_mut().chain([&mut b.depthwise, &mut b.project]));
        std::iter::once(&mut self.stem).chain(blocks).chain(std::iter::once(&mut self.head))
    }

    /// Trainable parameters (Burn's `num_params` also counts batch-norm running statistics).
    pub fn trainable_parameters(&self) -> usize {
        self.num_params() - running_statistics(self.units())
    }

    pub fn top_channels(&self) -> usize {
        self.head.bn.gamma.dims()[0]
    }

    /// Channels of the four skip taps and of the bottleneck.
    pub fn tap_channels(&self) -> ([usize; 4], usize) {
        let expanded = |i: usize| self.blocks[i].expand.as_ref().map_or(0, |e| e.bn.gamma.dims()[0]);
        (SKIP_BLOCKS.map(expanded), self.blocks.last().map_or(0, |b| b.project.bn.gamma.dims()[0]))
    }

    pub fn forward(&self, image: Tensor<B, 4>) -> EncoderOutput<B> {
        let mut x = self.stem.forward(image);
        let mut skips = Vec::with_capacity(4);
        for (i, block) in self.blocks.iter().enumerate() {
            let (y, expanded) = block.forward_tapped(x);
            if SKIP_BLOCKS.contains(&i) {
                skips.push(expanded);
            }
            x = y;
        }
        let top = self.head.forward(x.clone());
        let skips: [Tensor<B, 4>; 4] = skips.try_into().unwrap_or_else(|_| unreachable!("four skip taps"));
        EncoderOutput { skips, bottleneck: x, top }
    }

    /// Only the final feature map: the path that ships.
    pub fn forward_top(&self, image: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = self.stem.forward(image);
        for block in &self.blocks {
            x = block.forward_tapped(x).0;
        }
        self.head.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    type B = burn::backend::Flex;

    /// The taps formulation equals Burn's grouped conv at both strides MobileNetV2 uses: outputs,
    /// and the gradients with respect to the input and the weights.
    #[test]
    fn depthwise_taps_equal_grouped_conv() {
        type A = burn::backend::Autodiff<B>;
        let device = Default::default();
        let close = |a: Tensor<B, 4>, b: Tensor<B, 4>| a.into_data().assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(1e-4));
        for (stride, size) in [(1, 9), (2, 9), (2, 8)] {
            let conv = ConvBn::<A>::new(&device, 6, 6, 3, stride, 6, false).conv;
            let x = Tensor::<A, 4>::random([2, 6, size, size], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let grouped = conv.forward(x.clone());
            let taps = depthwise_taps(x.clone(), conv.weight.val(), stride);
            assert_eq!(grouped.dims(), taps.dims(), "stride {stride}, size {size}");
            let probe = Tensor::<A, 4>::random(grouped.dims(), Distribution::Normal(0.0, 1.0), &device);
            let g1 = (grouped.clone() * probe.clone()).sum().backward();
            let g2 = (taps.clone() * probe).sum().backward();
            close(grouped.inner(), taps.inner());
            close(x.grad(&g1).unwrap(), x.grad(&g2).unwrap());
            close(conv.weight.grad(&g1).unwrap(), conv.weight.grad(&g2).unwrap());
        }
    }
}
