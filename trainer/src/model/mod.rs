//! Seg-Distilled-ID: one MobileNetV2 encoder, one struct per task head.
//!
//! Only `(Encoder, IdHead)` ever leaves the trainer (see [`crate::export`]); the segmentation
//! teacher shapes the encoder during training and is dropped.

pub mod heads;
pub mod imagenet;
pub mod mobilenet;

use burn::prelude::*;
pub use heads::{ArcMargin, IdHead, IdHeadConfig, SegTeacher, SegTeacherConfig};
pub use mobilenet::{Encoder, EncoderConfig};

#[derive(Config, Debug)]
pub struct ModelConfig {
    pub encoder: EncoderConfig,
    /// Number of training identities (the ID classifier's width).
    pub identities: usize,
    #[config(default = 128)]
    pub embedding: usize,
    /// Build the segmentation teacher (false: the ID-only ablation).
    #[config(default = true)]
    pub teacher: bool,
    #[config(default = "[512, 256, 128, 64]")]
    pub decoder_widths: [usize; 4],
    /// Train the ID task with ArcFace's angular margin instead of a softmax on ReLU outputs.
    pub arc: Option<ArcMargin>,
    /// The embedding regresses a face teacher's templates, centred so (`crate::kd`): it is the
    /// layer's output (no ReLU), and the export folds the centring back into the layer's bias.
    pub centring: Option<Centring>,
}

/// How a teacher's unit templates `t` were centred into training targets `k·(t − μ)`: their
/// mean μ over the training faces and the scale k making the targets' mean length 1. The
/// teacher's vectors lie in a narrow cone; regressing them raw, a student first learns their
/// mean and stalls there.
#[derive(Config, Debug, PartialEq)]
pub struct Centring {
    pub mean: Vec<f32>,
    pub scale: f64,
}

impl Centring {
    /// The centring of `targets` (each a template, any length): μ their mean, k = 1 / E‖t − μ‖.
    pub fn fit(targets: &[&[f32]]) -> anyhow::Result<Self> {
        let dim = targets.first().map_or(0, |t| t.len());
        anyhow::ensure!(dim > 0 && targets.iter().all(|t| t.len() == dim), "centring needs templates of one non-zero length");
        let n = targets.len() as f64;
        let mut mean = vec![0.0f64; dim];
        for t in targets {
            mean.iter_mut().zip(*t).for_each(|(m, v)| *m += *v as f64 / n);
        }
        let spread = targets.iter().map(|t| t.iter().zip(&mean).map(|(v, m)| (*v as f64 - m).powi(2)).sum::<f64>().sqrt()).sum::<f64>() / n;
        anyhow::ensure!(spread > 1e-9, "the templates are all the same: nothing to centre");
        Ok(Self { mean: mean.into_iter().map(|m| m as f32).collect(), scale: 1.0 / spread })
    }

    /// The training target of template `t`, `k·(t − μ)`, appended to `out`.
    pub fn target_into(&self, t: &[f32], out: &mut Vec<f32>) {
        out.extend(t.iter().zip(&self.mean).map(|(v, m)| ((*v - *m) as f64 * self.scale) as f32));
    }

    /// `k·μ`: what turns a centred target `k·(t − μ)` back into `k·t`.
    pub fn shift(&self) -> Vec<f32> {
        self.mean.iter().map(|m| (*m as f64 * self.scale) as f32).collect()
    }

    /// `head` with `k·μ` added to its embedding layer's bias: its output `s ≈ k·(t − μ)` becomes
    /// `≈ k·t`, the teacher's template up to scale, so cosines are the teacher's again.
    pub fn fold_into<B: Backend>(&self, mut head: IdHead<B>) -> IdHead<B> {
        let device = head.embed.weight.device();
        let shift = Tensor::<B, 1>::from_floats(self.shift().as_slice(), &device);
        let bias = head.embed.bias.take().map_or(shift.clone(), |b| b.val() + shift);
        head.embed.bias = Some(burn::module::Param::from_tensor(bias));
        head
    }
}

#[derive(Module, Debug)]
pub struct SegDistilledId<B: Backend> {
    pub encoder: Encoder<B>,
    pub id_head: IdHead<B>,
    pub teacher: Option<SegTeacher<B>>,
}

pub struct Outputs<B: Backend> {
    pub embedding: Tensor<B, 2>,
    pub id_logits: Tensor<B, 2>,
    pub seg_logits: Option<Tensor<B, 4>>,
}

impl ModelConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> SegDistilledId<B> {
        let encoder = self.encoder.init::<B>(device);
        let id_head = IdHeadConfig::new(encoder.top_channels(), self.identities).with_embedding(self.embedding).with_arc(self.arc.clone()).with_linear(self.centring.is_some()).init(device);
        let teacher = self.teacher.then(|| {
            let (skips, bottleneck) = encoder.tap_channels();
            SegTeacherConfig::new(faceunlock_data::classes::NUM_CLASSES, skips, bottleneck)
                .with_widths(self.decoder_widths)
                .init(device)
        });
        SegDistilledId { encoder, id_head, teacher }
    }
}

impl<B: Backend> SegDistilledId<B> {
    pub fn forward(&self, images: Tensor<B, 4>) -> Outputs<B> {
        let (top, seg_logits) = match &self.teacher {
            Some(teacher) => {
                let f = self.encoder.forward(images);
                (f.top, Some(teacher.forward(f.skips, f.bottleneck)))
            }
            None => (self.encoder.forward_top(images), None),
        };
        let embedding = self.id_head.embed(top);
        Outputs { id_logits: self.id_head.logits(embedding.clone()), embedding, seg_logits }
    }

    /// The embedding alone, through the path that ships.
    pub fn embed(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.id_head.embed(self.encoder.forward_top(images))
    }

    /// Trainable parameters of the shipped path (encoder + embedding layer, no classifier).
    pub fn shipped_parameters(&self) -> usize {
        self.encoder.trainable_parameters() + self.id_head.embed.num_params()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_targets_have_zero_mean_and_unit_mean_length_and_the_fold_restores_the_template() {
        let raw: Vec<Vec<f32>> = vec![vec![1.0, 0.2, 0.1], vec![0.9, -0.1, 0.3], vec![0.95, 0.05, -0.2], vec![1.1, 0.1, 0.0]];
        let c = Centring::fit(&raw.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap();
        let targets: Vec<Vec<f32>> = raw.iter().map(|t| { let mut out = vec![]; c.target_into(t, &mut out); out }).collect();
        for d in 0..3 {
            let mean: f32 = targets.iter().map(|t| t[d]).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6, "dimension {d} keeps a mean of {mean}");
        }
        let mean_length: f32 = targets.iter().map(|t| t.iter().map(|v| v * v).sum::<f32>().sqrt()).sum::<f32>() / 4.0;
        assert!((mean_length - 1.0).abs() < 1e-5, "{mean_length}");
        // A head that outputs the centred target exactly gives k·t once the centring is folded in.
        type B = burn::backend::Flex;
        let device = Default::default();
        let mut head = IdHeadConfig::new(3, 2).with_embedding(3).with_linear(true).init::<B>(&device);
        head.embed.weight = burn::module::Param::from_tensor(Tensor::eye(3, &device));
        head.embed.bias = Some(burn::module::Param::from_tensor(Tensor::zeros([3], &device)));
        let folded = c.fold_into(head);
        let out: Vec<f32> = folded.embed.forward(Tensor::<B, 2>::from_floats([[targets[1][0], targets[1][1], targets[1][2]]], &device)).into_data().to_vec().unwrap();
        for (o, t) in out.iter().zip(&raw[1]) {
            assert!((o - c.scale as f32 * t).abs() < 1e-5, "{out:?} vs k·{:?}", raw[1]);
        }
    }

    #[test]
    fn identical_templates_cannot_be_centred() {
        let t = [0.6f32, 0.8];
        assert!(Centring::fit(&[&t[..], &t[..]]).is_err());
        assert!(Centring::fit(&[]).is_err());
    }

    #[test]
    fn a_configuration_saved_before_the_arc_margin_loads_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let old = r#"{"encoder": {"width": 1.0, "depthwise": "Grouped"}, "identities": 3035, "embedding": 128, "teacher": false, "decoder_widths": [512, 256, 128, 64]}"#;
        std::fs::write(&path, old).unwrap();
        let cfg = ModelConfig::load(&path).unwrap();
        assert_eq!(cfg.arc, None);
        let saved = dir.path().join("new.json");
        cfg.with_arc(Some(ArcMargin::new())).save(&saved).unwrap();
        assert_eq!(ModelConfig::load(&saved).unwrap().arc, Some(ArcMargin { scale: 30.0, margin: 0.3 }));
    }
}
