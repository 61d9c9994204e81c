//! Detector training: focal loss on the face logit, smooth-L1 on the box and L1 on the
//! landmarks at the positive cells, through the shared step loop ([`crate::steps`]). With a
//! dense teacher the face targets of its images are its probabilities (the focal loss becomes
//! its soft-target form) and every cell regresses the teacher's outputs, weighted by the
//! square of the teacher's probability there.

use super::data::{Augment, Batch, HostBatch, Source, host_batch};
use super::teacher::DenseTeacher;
use super::model::{DetectorConfig, DetectorNet, LevelOutput};
use crate::checkpoint::{load_run, start_from_run};
use crate::steps::{Loss, StepPlan, StepReport, StepTask};
use crate::training::read_f64s;
use anyhow::{Context, Result};
use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::backend::AutodiffBackend;
use std::path::Path;

#[derive(Config, Debug)]
pub struct DetectorTrainConfig {
    pub model: DetectorConfig,
    /// Training input `[width, height]` (multiples of 32).
    #[config(default = "[128, 128]")]
    pub input: [usize; 2],
    #[config(default = 32)]
    pub batch_size: usize,
    #[config(default = 2e-3)]
    pub learning_rate: f64,
    #[config(default = 4000)]
    pub steps: usize,
    /// Wall-clock budget; the schedule is shortened to fit it (measured after a few steps).
    pub time_budget_minutes: Option<f64>,
    #[config(default = 1)]
    pub seed: u64,
    #[config(default = 1.0)]
    pub box_weight: f64,
    /// Weight of the landmark L1, measured in face sizes (summed over the 10 coordinates).
    #[config(default = 5.0)]
    pub kps_weight: f64,
    /// Teacher detections below this score are not faces to learn.
    #[config(default = 0.6)]
    pub min_teacher_score: f32,
    #[config(default = "Augment::default()")]
    pub augment: Augment,
    /// A trained detector run whose weights (best, else last) a new run starts from, or a
    /// detector exported from one (`.onnx`, [`super::import`]): a second schedule on the same
    /// architecture.
    pub init_from: Option<String>,
    /// A detector with the student's output contract (YuNet) run on every input made from a
    /// teacher-labelled image: its outputs at every cell are the targets there
    /// ([`super::teacher`]).
    pub dense_teacher: Option<String>,
}

const VAL_BATCHES: usize = 4;

fn flat<B: Backend>(t: Tensor<B, 4>) -> Tensor<B, 3> {
    let [n, c, h, w] = t.dims();
    t.reshape([n, c, h * w])
}

fn smooth_l1<B: Backend>(d: Tensor<B, 3>) -> Tensor<B, 3> {
    let a = d.abs();
    let q = a.clone().clamp_max(1.0);
    q.clone() * (a - q * 0.5)
}

pub fn loss<B: Backend>(levels: Vec<LevelOutput<B>>, targets: Tensor<B, 3>, cfg: &DetectorTrainConfig) -> Loss<B> {
    let (mut score, mut bbox, mut kps) = (Vec::new(), Vec::new(), Vec::new());
    for l in levels {
        score.push(flat(l.score));
        bbox.push(flat(l.bbox));
        kps.push(flat(l.kps));
    }
    let (score, bbox, kps) = (Tensor::cat(score, 2), Tensor::cat(bbox, 2), Tensor::cat(kps, 2));
    // The face target: 1 / 0 from labelled faces, the teacher's probability from a dense one.
    let face = targets.clone().narrow(1, 0, 1);
    let weight = targets.clone().narrow(1, 1, 1);
    let positives = face.clone().sum().clamp_min(1.0);
    let p = sigmoid(score.clone());
    let not_face = face.clone().neg().add_scalar(1.0);
    // Focal loss (γ = 2) in its soft-target form, |q − p|² · BCE(q, p): easy cells fade out of
    // the sum; for q ∈ {0, 1} the usual (1 − p)² · −log p and p² · −log(1 − p).
    let modulation = (face.clone() - p).abs().powi_scalar(2);
    let focal = ((face.clone() * log_sigmoid(score.clone()) + not_face * log_sigmoid(score.neg())) * modulation).neg() * weight;
    let score_loss = focal.sum() / positives;
    // Regressions count where the target is a face: q² (1 at labelled faces' cells, and a
    // dense teacher's background cells, q ≈ 0, whose regressions mean nothing, hardly count).
    let face = face.powi_scalar(2);
    let regressed = face.clone().sum().clamp_min(1.0);
    let box_loss = (smooth_l1(bbox - targets.clone().narrow(1, 2, 4)) * face.clone()).sum() / regressed.clone();
    // Landmark error relative to the face's size (√(w·h) in strides, from the box target's
    // log sizes), as the NME the detector is judged by: in plain stride units a stride-32 face
    // would weigh a quarter of a stride-8 face for the same relative error.
    let per_size = targets.clone().narrow(1, 4, 2).sum_dim(1).mul_scalar(-0.5).exp();
    let kps_loss = ((kps - targets.narrow(1, 6, 10)).abs() * face * per_size).sum() / regressed;
    let total = score_loss.clone() + box_loss.clone().mul_scalar(cfg.box_weight) + kps_loss.clone().mul_scalar(cfg.kps_weight);
    Loss { parts: Tensor::cat(vec![total.clone(), score_loss, box_loss, kps_loss], 0).detach(), total }
}

/// The detector as a [`StepTask`]: augmented batches of `train`, validated on `val`.
struct DetectorTask<'a> {
    cfg: &'a DetectorTrainConfig,
    train: &'a [Source],
    val: &'a [Source],
    teacher: Option<DenseTeacher>,
}

impl<B: AutodiffBackend> StepTask<B> for DetectorTask<'_> {
    type Model = DetectorNet<B>;
    type Host = HostBatch;

    fn name(&self) -> &'static str {
        "detector"
    }

    fn parts(&self) -> &'static [&'static str] {
        &["loss", "score", "box", "landmarks"]
    }

    fn batch(&self, _step: usize, seed: u64) -> HostBatch {
        host_batch(self.train, self.cfg.input, &self.cfg.augment, self.teacher.as_ref(), self.cfg.batch_size, seed)
    }

    fn loss(&self, model: &DetectorNet<B>, batch: HostBatch, device: &B::Device) -> Loss<B> {
        let batch: Batch<B> = batch.upload(self.cfg.input, device);
        loss(model.forward(batch.images), batch.targets, self.cfg)
    }

    fn validate(&self, model: &DetectorNet<B::InnerBackend>) -> Result<Vec<f64>> {
        let device = &model.devices()[0];
        let mut sums = vec![0.0; 4];
        for k in 0..VAL_BATCHES {
            let batch: Batch<B::InnerBackend> = host_batch(self.val, self.cfg.input, &self.cfg.augment, self.teacher.as_ref(), self.cfg.batch_size, 0xdead_beef + k as u64).upload(self.cfg.input, device);
            let parts = read_f64s(loss(model.forward(batch.images), batch.targets, self.cfg).parts)?;
            sums.iter_mut().zip(parts).for_each(|(s, p)| *s += p / VAL_BATCHES as f64);
        }
        Ok(sums)
    }
}

/// Train (or resume) a detector into `dir`.
pub fn train<B: AutodiffBackend>(cfg: &DetectorTrainConfig, train: &[Source], val: &[Source], dir: &Path, device: &B::Device) -> Result<StepReport> {
    anyhow::ensure!(!train.is_empty() && !val.is_empty(), "no training or validation images");
    let plan = StepPlan { steps: cfg.steps, time_budget_minutes: cfg.time_budget_minutes, learning_rate: cfg.learning_rate, batch_size: cfg.batch_size, seed: cfg.seed, pause_after_minutes: None, snapshot_every: None, checkpoint_every: crate::steps::INTERVAL };
    let teacher = cfg.dense_teacher.as_deref().map(|path| DenseTeacher::open(Path::new(path), cfg.input)).transpose()?;
    let task = DetectorTask { cfg, train, val, teacher };
    let fresh = |model: DetectorNet<B>| match &cfg.init_from {
        // An exported detector: its batch norms are calibrated on a training batch, in inference.
        Some(file) if Path::new(file).is_file() => {
            let images = StepTask::<B>::batch(&task, 0, cfg.seed ^ 0xca1b).upload::<B::InnerBackend>(cfg.input, device).images;
            super::import::trainable_from_file(model, Path::new(file), images)
        }
        Some(run) => start_from_run(Path::new(run), model, |theirs: &DetectorTrainConfig| format!("{:?}", theirs.model), &format!("{:?}", cfg.model), device)
            .with_context(|| format!("starting from the detector run in {run} (its --kernel and --top-down must be this run's)")),
        None => Ok(model),
    };
    crate::steps::run(&task, &plan, cfg, cfg.model.init::<B>(device), fresh, dir, device)
}

/// Load a trained detector (config + best weights, else the last checkpoint) from a run directory.
pub fn load_trained<B: Backend>(dir: &Path, device: &B::Device) -> Result<(DetectorTrainConfig, DetectorNet<B>)> {
    load_run(dir, |cfg: &DetectorTrainConfig| cfg.model.init::<B>(device), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    type B = burn::backend::Flex;

    /// One positive cell of a face `size` strides wide whose every landmark coordinate is off by
    /// `error` strides: the landmark term of the loss.
    fn landmark_term(size: f32, error: f32) -> f32 {
        let device = Default::default();
        let cell = |c: usize, v: f32| Tensor::<B, 4>::full([1, c, 1, 1], v, &device);
        let level = LevelOutput { score: cell(1, 0.0), bbox: cell(4, 0.0), kps: cell(10, error) };
        let mut t = vec![1.0, 1.0, 0.0, 0.0, size.ln(), size.ln()];
        t.extend([0.0; 10]);
        let targets = Tensor::<B, 3>::from_data(TensorData::new(t, [1, 16, 1]), &device);
        loss(vec![level], targets, &DetectorTrainConfig::new(DetectorConfig::new())).parts.into_data().to_vec::<f32>().unwrap()[3]
    }

    /// The face term of one cell whose target is `q`, at predicted probability `p`.
    fn face_term(q: f32, p: f32) -> f32 {
        let device = Default::default();
        let cell = |c: usize, v: f32| Tensor::<B, 4>::full([1, c, 1, 1], v, &device);
        let level = LevelOutput { score: cell(1, (p / (1.0 - p)).ln()), bbox: cell(4, 0.0), kps: cell(10, 0.0) };
        let mut t = vec![q, 1.0];
        t.extend([0.0; 14]);
        let targets = Tensor::<B, 3>::from_data(TensorData::new(t, [1, 16, 1]), &device);
        loss(vec![level], targets, &DetectorTrainConfig::new(DetectorConfig::new())).parts.into_data().to_vec::<f32>().unwrap()[1]
    }

    #[test]
    fn a_soft_face_target_is_learnt_as_that_probability_and_a_hard_one_as_focal_loss() {
        assert!(face_term(0.3, 0.3) < 1e-7, "no loss at the teacher's probability");
        assert!(face_term(0.3, 0.2) > 1e-4 && face_term(0.3, 0.4) > 1e-4);
        // q = 1: (1 − p)² · −ln p over one positive; q = 0: p² · −ln(1 − p) (over at least 1).
        assert!((face_term(1.0, 0.8) - 0.04 * -(0.8f32).ln()).abs() < 1e-5, "{}", face_term(1.0, 0.8));
        assert!((face_term(0.0, 0.1) - 0.01 * -(0.9f32).ln()).abs() < 1e-6, "{}", face_term(0.0, 0.1));
    }

    #[test]
    fn the_landmark_term_measures_error_relative_to_the_face_size() {
        let (small, large) = (landmark_term(2.0, 0.2), landmark_term(4.0, 0.4));
        assert!((small - 1.0).abs() < 1e-5, "10 coordinates × 0.2 / 2 = 1, got {small}");
        assert!((small - large).abs() < 1e-5, "same relative error, {small} vs {large}");
        assert!(landmark_term(4.0, 0.2) < small, "the same pixel error is smaller on a larger face");
    }
}
