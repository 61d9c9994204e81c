//! The two task heads on the shared encoder: the identification head that ships, and the
//! segmentation teacher that is thrown away after training.

use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use crate::loss::{elastic_arc, id_loss, l2_normalize, unit_columns};

/// Global average pool → Linear(top → 128) + ReLU (the embedding) → Linear(128 → N) logits;
/// with an [`ArcMargin`], no ReLU and the logits are scaled cosines to the classifier's columns.
#[derive(Module, Debug)]
pub struct IdHead<B: Backend> {
    pub embed: Linear<B>,
    pub classify: Linear<B>,
    /// Not stored with the weights (the run's `config.json` says it), so checkpoints saved before
    /// the field existed load.
    #[module(skip)]
    pub arc: Option<ArcMargin>,
    /// No ReLU on the embedding even without a margin (a head that regresses a teacher's
    /// templates, which have both signs). Not stored with the weights, as `arc`.
    #[module(skip)]
    pub linear: bool,
}

/// ArcFace's additive angular margin (Deng et al. 2019): the embedding is not passed through a
/// ReLU, identities are scored by `scale · cos θ` to the classifier's columns (its bias unused),
/// and in training the true class's angle is widened by `margin` (radians).
#[derive(Config, Debug, PartialEq)]
pub struct ArcMargin {
    #[config(default = 30.0)]
    pub scale: f64,
    #[config(default = 0.3)]
    pub margin: f64,
}

impl ArcMargin {
    /// ArcFace's training loss of `embedding` (`[n, dim]`) against class `centres`
    /// (`[dim, classes]`): [`elastic_arc`] with this one margin for every sample.
    pub fn loss<B: Backend>(&self, embedding: Tensor<B, 2>, centres: Tensor<B, 2>, identities: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        let margins = Tensor::full([embedding.dims()[0], 1], self.margin, &embedding.device());
        elastic_arc(embedding, centres, identities, margins, self.scale)
    }
}

#[derive(Config, Debug)]
pub struct IdHeadConfig {
    pub in_channels: usize,
    pub classes: usize,
    #[config(default = 128)]
    pub embedding: usize,
    pub arc: Option<ArcMargin>,
    /// The embedding is the layer's output, without a ReLU, whatever the ID loss.
    #[config(default = false)]
    pub linear: bool,
}

impl IdHeadConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> IdHead<B> {
        IdHead {
            embed: LinearConfig::new(self.in_channels, self.embedding).init(device),
            classify: LinearConfig::new(self.embedding, self.classes).init(device),
            arc: self.arc.clone(),
            linear: self.linear,
        }
    }
}

impl<B: Backend> IdHead<B> {
    pub fn embedding_dim(&self) -> usize {
        self.embed.weight.dims()[1]
    }

    /// Whether the embedding passes through a ReLU: only for a softmax head that is not
    /// [`IdHead::linear`] (an angular margin needs both signs).
    pub fn has_relu(&self) -> bool {
        self.arc.is_none() && !self.linear
    }

    /// The embedding, `[batch, 128]`: after the ReLU, or the layer's output (see [`IdHead::has_relu`]).
    pub fn embed(&self, top: Tensor<B, 4>) -> Tensor<B, 2> {
        let pooled = adaptive_avg_pool2d(top, [1, 1]).flatten::<2>(1, 3);
        let embedding = self.embed.forward(pooled);
        if self.has_relu() { relu(embedding) } else { embedding }
    }

    /// Identity scores (no margin): the classifier's logits, or `scale · cos θ`.
    pub fn logits(&self, embedding: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.arc {
            None => self.classify.forward(embedding),
            Some(arc) => l2_normalize(embedding).matmul(unit_columns(self.classify.weight.val())) * arc.scale,
        }
    }

    /// The training loss of the ID task: softmax cross-entropy of `logits` (this head's, of
    /// `embedding`), or ArcFace's.
    pub fn loss(&self, embedding: Tensor<B, 2>, logits: Tensor<B, 2>, identities: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        match &self.arc {
            None => id_loss(logits, identities),
            Some(arc) => arc.loss(embedding, self.classify.weight.val(), identities),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::tests::{B, ids};

    fn head(arc: Option<ArcMargin>) -> IdHead<B> {
        IdHeadConfig::new(8, 5).with_embedding(4).with_arc(arc).init(&Default::default())
    }

    fn top() -> Tensor<B, 4> {
        Tensor::random([6, 8, 2, 2], burn::tensor::Distribution::Normal(0.0, 1.0), &Default::default())
    }

    #[test]
    fn an_arc_head_keeps_the_sign_and_scores_scaled_cosines() {
        let arc = ArcMargin::new().with_scale(10.0).with_margin(0.4);
        let mut h = head(Some(arc.clone()));
        let x = top();
        let embedding = h.embed(x.clone());
        assert!(embedding.clone().lower_elem(0.0).any().into_scalar(), "no ReLU on the embedding");
        let logits = h.logits(embedding.clone());
        assert!(logits.clone().abs().max().into_scalar() <= 10.0 + 1e-4, "|s·cos θ| ≤ s");
        let labels = ids(vec![0, 1, 2, 3, 4, 0]);
        let with_margin: f32 = h.loss(embedding.clone(), logits.clone(), labels.clone()).into_scalar();
        let plain: f32 = id_loss(logits.clone(), labels.clone()).into_scalar();
        assert!(with_margin > plain, "the margin makes the true class harder: {with_margin} vs {plain}");
        h.arc = Some(arc.with_margin(0.0));
        let no_margin: f32 = h.loss(embedding, logits, labels).into_scalar();
        assert!((no_margin - plain).abs() < 1e-4, "margin 0 is a softmax on s·cos θ: {no_margin} vs {plain}");
    }

    #[test]
    fn a_softmax_head_embeds_through_a_relu() {
        let h = head(None);
        let embedding = h.embed(top());
        assert!(embedding.clone().greater_equal_elem(0.0).all().into_scalar());
        let logits = h.logits(embedding.clone());
        let expected = h.classify.forward(embedding);
        assert!(logits.equal(expected).all().into_scalar());
    }
}
