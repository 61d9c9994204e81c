//! The refiner network: a 3×3 stem and depthwise-separable blocks down to a 4×4 map at stride
//! 16, flattened (the landmarks' positions are spatial) into one linear layer of ten outputs.

use crate::detector::model::SepConv;
use crate::model::mobilenet::{ConvBn, running_statistics};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

#[derive(Config, Debug)]
pub struct RefinerConfig {
    /// Input crop side (a multiple of 16).
    #[config(default = 64)]
    pub crop: usize,
    /// Channels of the stem (stride 2) and of the stride 4, 8 and 16 stages.
    #[config(default = "[16, 32, 64, 128]")]
    pub widths: [usize; 4],
    #[config(default = 3)]
    pub kernel: usize,
}

#[derive(Module, Debug)]
pub struct RefinerNet<B: Backend> {
    pub stem: ConvBn<B>,
    /// Per stage: a strided block, then one at stride 1.
    pub blocks: Vec<SepConv<B>>,
    pub head: Linear<B>,
}

impl RefinerConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> RefinerNet<B> {
        let w = self.widths;
        let blocks = (0..3).flat_map(|i| [SepConv::new(device, w[i], w[i + 1], 2, self.kernel), SepConv::new(device, w[i + 1], w[i + 1], 1, self.kernel)]).collect();
        let side = self.crop / 16;
        RefinerNet { stem: ConvBn::new(device, 3, w[0], 3, 2, 1, true), blocks, head: LinearConfig::new(w[3] * side * side, 10).init(device) }
    }
}

impl<B: Backend> RefinerNet<B> {
    /// `crops`: `[N, 3, S, S]` normalised → `[N, 10]` landmark offsets in crop widths.
    pub fn forward(&self, crops: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = self.stem.forward(crops);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.head.forward(x.flatten(1, 3))
    }

    /// Trainable parameters (batch-norm running statistics excluded).
    pub fn trainable_parameters(&self) -> usize {
        let units = std::iter::once(&self.stem).chain(self.blocks.iter().flat_map(|b| [&b.depthwise, &b.pointwise]));
        self.num_params() - running_statistics(units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_outputs_per_crop_and_a_few_tens_of_thousands_of_weights() {
        let device = Default::default();
        let net = RefinerConfig::new().init::<burn::backend::Flex>(&device);
        assert_eq!(net.forward(Tensor::zeros([2, 3, 64, 64], &device)).dims(), [2, 10]);
        let n = net.trainable_parameters();
        assert!((20_000..250_000).contains(&n), "{n} parameters");
    }
}
