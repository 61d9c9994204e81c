//! A small YuNet-compatible face detector: depthwise-separable backbone (5×5 depthwise kernels
//! for a wide receptive field at little cost) with one head per stride 8, 16 and 32, each giving
//! a face logit, a box and five landmarks per cell in the layout of [`faceunlock_core::grid`].
//! Optionally (`top_down`, as YuNet's tiny FPN) each finer level adds the coarser level's
//! features, projected by a 1×1 convolution and upsampled 2× (nearest), before its head.

use crate::model::mobilenet::{ConvBn, running_statistics};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;

/// One depthwise-separable block: `k×k` depthwise (stride 1 or 2) + 1×1 pointwise, both
/// batch-normed with ReLU6.
#[derive(Module, Debug)]
pub struct SepConv<B: Backend> {
    pub depthwise: ConvBn<B>,
    pub pointwise: ConvBn<B>,
}

impl<B: Backend> SepConv<B> {
    pub fn new(device: &B::Device, cin: usize, cout: usize, stride: usize, kernel: usize) -> Self {
        Self { depthwise: ConvBn::new(device, cin, cin, kernel, stride, cin, true), pointwise: ConvBn::new(device, cin, cout, 1, 1, 1, true) }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.pointwise.forward(self.depthwise.forward(x))
    }
}

/// The per-level head: a 3×3 depthwise context layer, then 1×1 convolutions to the face logit
/// (1 channel), the box (4) and the landmarks (10).
#[derive(Module, Debug)]
pub struct LevelHead<B: Backend> {
    pub context: ConvBn<B>,
    pub score: Conv2d<B>,
    pub bbox: Conv2d<B>,
    pub kps: Conv2d<B>,
}

impl<B: Backend> LevelHead<B> {
    fn new(device: &B::Device, channels: usize) -> Self {
        let out = |n: usize| Conv2dConfig::new([channels, n], [1, 1]).init(device);
        Self { context: ConvBn::new(device, channels, channels, 3, 1, channels, true), score: out(1), bbox: out(4), kps: out(10) }
    }
}

/// Raw outputs of one level: `[N, 1, H, W]` logits, `[N, 4, H, W]`, `[N, 10, H, W]`.
pub struct LevelOutput<B: Backend> {
    pub score: Tensor<B, 4>,
    pub bbox: Tensor<B, 4>,
    pub kps: Tensor<B, 4>,
}

#[derive(Config, Debug)]
pub struct DetectorConfig {
    /// Channels of the stem (stride 2) and of the stride 4, 8, 16 and 32 stages.
    #[config(default = "[16, 32, 64, 96, 128]")]
    pub widths: [usize; 5],
    /// Depthwise blocks per stage after the first (strided) one, for strides 4, 8, 16, 32.
    #[config(default = "[1, 2, 1, 1]")]
    pub extra_blocks: [usize; 4],
    #[config(default = 5)]
    pub kernel: usize,
    /// Top-down pathway: strides 16 and 8 add the coarser level's projected, upsampled features.
    /// Off unless `Some(true)`: the shipped detector's architecture (`docs/detector.md` run 2).
    /// An `Option` so that configurations saved before it existed still load (as `None`).
    pub top_down: Option<bool>,
}

#[derive(Module, Debug)]
pub struct DetectorNet<B: Backend> {
    pub stem: ConvBn<B>,
    /// Stages at strides 4, 8, 16, 32; the last three feed the heads.
    pub stages: Vec<Vec<SepConv<B>>>,
    pub heads: Vec<LevelHead<B>>,
    /// 1×1 projections (batch-normed, linear) of the stride-16 and stride-32 features to the
    /// widths of strides 8 and 16; empty without the top-down pathway.
    pub top_down: Vec<ConvBn<B>>,
}

impl DetectorConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> DetectorNet<B> {
        let w = self.widths;
        let stages = (0..4)
            .map(|i| {
                let mut blocks = vec![SepConv::new(device, w[i], w[i + 1], 2, self.kernel)];
                blocks.extend((0..self.extra_blocks[i]).map(|_| SepConv::new(device, w[i + 1], w[i + 1], 1, self.kernel)));
                blocks
            })
            .collect();
        let top_down = if self.top_down == Some(true) { (2..4).map(|i| ConvBn::new(device, w[i + 1], w[i], 1, 1, 1, false)).collect() } else { Vec::new() };
        DetectorNet { stem: ConvBn::new(device, 3, w[0], 3, 2, 1, true), stages, heads: w[2..].iter().map(|c| LevelHead::new(device, *c)).collect(), top_down }
    }
}

/// Nearest-neighbour 2× upsampling (ONNX `Resize`, nearest, asymmetric, floor).
fn upsample2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h, 1, w, 1]).expand([n, c, h, 2, w, 2]).reshape([n, c, 2 * h, 2 * w])
}

/// Raw BGR 0..255 pixels to the network's range (also a graph node in the export).
pub const PIXEL_SCALE: f32 = 1.0 / 128.0;
pub const PIXEL_OFFSET: f32 = -1.0;

impl<B: Backend> DetectorNet<B> {
    /// `image`: `[N, 3, H, W]` BGR 0..255, H and W multiples of 32.
    pub fn forward(&self, image: Tensor<B, 4>) -> Vec<LevelOutput<B>> {
        self.forward_showing(image, &mut |_, _| {})
    }

    /// [`Self::forward`], showing `see` each batch-normed unit with its input, in the order the
    /// export writes them: stem, stage blocks (depthwise, pointwise), top-down projections
    /// (coarse to fine), head contexts.
    pub fn forward_showing(&self, image: Tensor<B, 4>, see: &mut impl FnMut(&ConvBn<B>, &Tensor<B, 4>)) -> Vec<LevelOutput<B>> {
        let mut unit = |u: &ConvBn<B>, x: Tensor<B, 4>| {
            see(u, &x);
            u.forward(x)
        };
        let mut x = unit(&self.stem, image.mul_scalar(PIXEL_SCALE).add_scalar(PIXEL_OFFSET));
        let mut features = Vec::with_capacity(3);
        for (i, stage) in self.stages.iter().enumerate() {
            for block in stage {
                let y = unit(&block.depthwise, x);
                x = unit(&block.pointwise, y);
            }
            if i >= 1 {
                features.push(x.clone());
            }
        }
        // Coarse to fine: stride 16 adds stride 32's features, then stride 8 adds the result.
        for (i, project) in self.top_down.iter().enumerate().rev() {
            let coarser = upsample2(unit(project, features[i + 1].clone()));
            features[i] = features[i].clone() + coarser;
        }
        features
            .into_iter()
            .zip(&self.heads)
            .map(|(x, head)| {
                let c = unit(&head.context, x);
                LevelOutput { score: head.score.forward(c.clone()), bbox: head.bbox.forward(c.clone()), kps: head.kps.forward(c) }
            })
            .collect()
    }

    /// Trainable parameters (batch-norm running statistics excluded).
    pub fn trainable_parameters(&self) -> usize {
        let units = std::iter::once(&self.stem)
            .chain(self.stages.iter().flatten().flat_map(|b| [&b.depthwise, &b.pointwise]))
            .chain(self.heads.iter().map(|h| &h.context))
            .chain(&self.top_down);
        self.num_params() - running_statistics(units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_have_the_yunet_grid_sizes_and_the_model_fits_the_size_budget() {
        let device = Default::default();
        for top_down in [false, true] {
            let net = DetectorConfig::new().with_top_down(Some(top_down)).init::<burn::backend::Flex>(&device);
            let out = net.forward(Tensor::zeros([2, 3, 160, 96], &device));
            let dims: Vec<_> = out.iter().map(|l| (l.score.dims(), l.bbox.dims()[1], l.kps.dims()[1])).collect();
            assert_eq!(dims, vec![([2, 1, 20, 12], 4, 10), ([2, 1, 10, 6], 4, 10), ([2, 1, 5, 3], 4, 10)]);
            // ≤ 1 MB as f32 (issue 6).
            assert!(net.trainable_parameters() * 4 < 1_000_000, "{} parameters", net.trainable_parameters());
        }
    }

    #[test]
    fn a_configuration_saved_before_the_top_down_pathway_loads_without_it() {
        let saved = r#"{"widths": [16, 32, 64, 96, 128], "extra_blocks": [1, 2, 1, 1], "kernel": 5}"#;
        let cfg: DetectorConfig = serde_json::from_str(saved).unwrap();
        assert_eq!(cfg.top_down, None);
        assert!(cfg.init::<burn::backend::Flex>(&Default::default()).top_down.is_empty());
    }

    #[test]
    fn upsampling_repeats_each_cell_in_a_2x2_block() {
        let device = Default::default();
        let x = Tensor::<burn::backend::Flex, 4>::from_data([[[[1.0, 2.0], [3.0, 4.0]]]], &device);
        let up: Vec<f32> = upsample2(x).into_data().to_vec().unwrap();
        assert_eq!(up, vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0]);
    }
}
