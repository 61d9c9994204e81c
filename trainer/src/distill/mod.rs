//! Occlusion-robust students distilled from a trained embedder (issue 7).
//!
//! The teacher is a trained Seg-Distilled-ID run, frozen, always shown the bare face; the
//! student starts as a copy of it and is shown the same face, masked with probability
//! `mask_probability` (synthetic masks placed from the five landmarks, `faceunlock_data::masks`).
//! What the student learns from depends on the [`Method`]:
//!
//! - [`Method::MaskInv`] (template-level distillation): `λ·MSE(ℓ2 student, ℓ2 teacher)` plus
//!   ElasticFace-Arc on the student's embedding;
//! - [`Method::Triplet`] (Georgescu et al.): cross-entropy plus a triplet loss whose anchor is the
//!   student's embedding, positive the teacher's of the same face, negative the teacher's of the
//!   nearest other person in the batch;
//! - [`Method::SoftLabel`]: classic teacher-student, cross-entropy and the teacher's softened
//!   class distribution;
//! - [`Method::Combined`]: the triplet and soft-label terms together.
//!
//! The student is the shipped path only (encoder + ID head, plus the ArcFace class centres that
//! stay behind), so it exports through [`crate::export::export_onnx`] like the teacher.
//!
//! ```
//! use trainer::distill::{DistillConfig, Method};
//! use trainer::model::{EncoderConfig, ModelConfig};
//! let teacher = ModelConfig::new(EncoderConfig::new(), 3035);
//! let cfg = DistillConfig::new("runs/cpu-joint".into(), teacher).with_method(Method::MaskInv);
//! assert_eq!(cfg.weights().template_mse, 100.0);
//! ```

pub mod loss;
pub mod training;

use crate::data::Augment;
use crate::model::{Encoder, IdHead, ModelConfig, SegDistilledId};
use burn::module::Param;
use burn::prelude::*;

/// Which distillation the student gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
pub enum Method {
    MaskInv,
    Triplet,
    SoftLabel,
    Combined,
}

/// The weight of each loss term (0: term off).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossWeights {
    pub template_mse: f64,
    pub elastic_arc: f64,
    pub cross_entropy: f64,
    pub soft_label: f64,
    pub triplet: f64,
}

impl Method {
    /// The terms and weights of the method as published (MaskInv: λ = 100; Hinton's α = 0.5).
    pub fn weights(self) -> LossWeights {
        let off = LossWeights { template_mse: 0.0, elastic_arc: 0.0, cross_entropy: 0.0, soft_label: 0.0, triplet: 0.0 };
        match self {
            Method::MaskInv => LossWeights { template_mse: 100.0, elastic_arc: 1.0, ..off },
            Method::Triplet => LossWeights { cross_entropy: 1.0, triplet: 1.0, ..off },
            Method::SoftLabel => LossWeights { cross_entropy: 0.5, soft_label: 0.5, ..off },
            Method::Combined => LossWeights { cross_entropy: 0.5, soft_label: 0.5, triplet: 1.0, ..off },
        }
    }
}

#[derive(Config, Debug)]
pub struct DistillConfig {
    /// The teacher's training run directory (its config, best weights and split lists).
    pub teacher_run: String,
    /// The teacher's model (the student is a copy of its shipped path).
    pub model: ModelConfig,
    #[config(default = "Method::MaskInv")]
    pub method: Method,
    /// MaskInv's λ; `None`: the method's own.
    pub lambda: Option<f64>,
    /// Fraction of the student's faces that wear a mask (the rest are bare, as the teacher's).
    #[config(default = 0.5)]
    pub mask_probability: f64,
    /// ElasticFace-Arc scale and margin ~ N(mean, std) per sample.
    #[config(default = 64.0)]
    pub arc_scale: f64,
    #[config(default = 0.5)]
    pub arc_margin: f64,
    #[config(default = 0.0125)]
    pub arc_margin_std: f64,
    #[config(default = 0.2)]
    pub triplet_margin: f64,
    #[config(default = 4.0)]
    pub temperature: f64,
    /// A fine-tuning rate: the student starts from the trained teacher.
    #[config(default = 1e-4)]
    pub learning_rate: f64,
    #[config(default = 32)]
    pub batch_size: usize,
    #[config(default = 1)]
    pub max_epochs: usize,
    pub steps_per_epoch: Option<usize>,
    #[config(default = 1)]
    pub seed: u64,
    #[config(default = "Augment::TRAIN")]
    pub augment: Augment,
    pub time_budget_minutes: Option<f64>,
}

impl DistillConfig {
    /// The method's loss weights with λ applied.
    pub fn weights(&self) -> LossWeights {
        let w = self.method.weights();
        match self.lambda {
            Some(l) if w.template_mse > 0.0 => LossWeights { template_mse: l, ..w },
            _ => w,
        }
    }
}

/// The student: the teacher's shipped path (encoder, ID head) and ElasticFace-Arc's class
/// centres `[embedding, classes]`, which start as the teacher's classifier weights.
#[derive(Module, Debug)]
pub struct Student<B: Backend> {
    pub encoder: Encoder<B>,
    pub id_head: IdHead<B>,
    pub arc_centres: Param<Tensor<B, 2>>,
}

impl<B: Backend> Student<B> {
    /// A copy of the teacher's shipped path; the segmentation decoder is dropped.
    pub fn from_teacher(teacher: SegDistilledId<B>) -> Self {
        let arc_centres = Param::from_tensor(teacher.id_head.classify.weight.val());
        Self { encoder: teacher.encoder, id_head: teacher.id_head, arc_centres }
    }

    pub fn embed(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.id_head.embed(self.encoder.forward_top(images))
    }

    /// Trainable parameters of the shipped path (encoder + embedding layer).
    pub fn shipped_parameters(&self) -> usize {
        self.encoder.trainable_parameters() + self.id_head.embed.num_params()
    }
}

/// Whether `dir` holds a student run (its `config.json` is a [`DistillConfig`]).
pub fn is_student_run(dir: &std::path::Path) -> bool {
    DistillConfig::load(dir.join(crate::checkpoint::CONFIG_FILE)).is_ok()
}
