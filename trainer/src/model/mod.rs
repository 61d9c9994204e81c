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
        let id_head = IdHeadConfig::new(encoder.top_channels(), self.identities).with_embedding(self.embedding).with_arc(self.arc.clone()).init(device);
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
