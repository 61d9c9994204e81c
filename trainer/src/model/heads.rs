//! The two task heads on the shared encoder: the identification head that ships, and the
//! segmentation teacher that is thrown away after training.

use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;

/// Global average pool → Linear(top → 128) + ReLU (the embedding) → Linear(128 → N) logits.
#[derive(Module, Debug)]
pub struct IdHead<B: Backend> {
    pub embed: Linear<B>,
    pub classify: Linear<B>,
}

#[derive(Config, Debug)]
pub struct IdHeadConfig {
    pub in_channels: usize,
    pub classes: usize,
    #[config(default = 128)]
    pub embedding: usize,
}

impl IdHeadConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> IdHead<B> {
        IdHead {
            embed: LinearConfig::new(self.in_channels, self.embedding).init(device),
            classify: LinearConfig::new(self.embedding, self.classes).init(device),
        }
    }
}

impl<B: Backend> IdHead<B> {
    pub fn embedding_dim(&self) -> usize {
        self.embed.weight.dims()[1]
    }

    /// The embedding (after ReLU), `[batch, 128]`.
    pub fn embed(&self, top: Tensor<B, 4>) -> Tensor<B, 2> {
        let pooled = adaptive_avg_pool2d(top, [1, 1]).flatten::<2>(1, 3);
        relu(self.embed.forward(pooled))
    }

    pub fn logits(&self, embedding: Tensor<B, 2>) -> Tensor<B, 2> {
        self.classify.forward(embedding)
    }
}

/// Pix2Pix upsample block: ConvTranspose 3×3 stride 2 (no bias) + BN + ReLU.
#[derive(Module, Debug)]
pub struct Upsample<B: Backend> {
    pub deconv: ConvTranspose2d<B>,
    pub bn: BatchNorm<B>,
}

fn deconv<B: Backend>(device: &B::Device, cin: usize, cout: usize, bias: bool) -> ConvTranspose2d<B> {
    ConvTranspose2dConfig::new([cin, cout], [3, 3])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_padding_out([1, 1])
        .with_bias(bias)
        .init(device)
}

impl<B: Backend> Upsample<B> {
    fn new(device: &B::Device, cin: usize, cout: usize) -> Self {
        Self { deconv: deconv(device, cin, cout, false), bn: BatchNormConfig::new(cout).init(device) }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(self.bn.forward(self.deconv.forward(x)))
    }
}

/// U-Net decoder: from the bottleneck, upsample ×2 and concatenate the matching skip, four
/// times, then a last transposed conv to class logits at input resolution.
#[derive(Module, Debug)]
pub struct SegTeacher<B: Backend> {
    pub up: Vec<Upsample<B>>,
    pub out: ConvTranspose2d<B>,
}

#[derive(Config, Debug)]
pub struct SegTeacherConfig {
    pub classes: usize,
    /// Channels of the skip taps, shallow to deep, and of the bottleneck.
    pub skip_channels: [usize; 4],
    pub bottleneck_channels: usize,
    /// Output channels of the four upsample blocks (TF Pix2Pix: 512, 256, 128, 64).
    #[config(default = "[512, 256, 128, 64]")]
    pub widths: [usize; 4],
}

impl SegTeacherConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> SegTeacher<B> {
        let mut cin = self.bottleneck_channels;
        let mut up = Vec::new();
        for (k, w) in self.widths.iter().enumerate() {
            up.push(Upsample::new(device, cin, *w));
            cin = w + self.skip_channels[3 - k];
        }
        SegTeacher { up, out: deconv(device, cin, self.classes, true) }
    }
}

impl<B: Backend> SegTeacher<B> {
    /// Class logits `[batch, classes, H, W]`.
    pub fn forward(&self, skips: [Tensor<B, 4>; 4], bottleneck: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = bottleneck;
        for (k, up) in self.up.iter().enumerate() {
            x = Tensor::cat(vec![up.forward(x), skips[3 - k].clone()], 1);
        }
        self.out.forward(x)
    }
}
