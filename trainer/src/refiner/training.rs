//! Refiner training: L1 on the ten offsets (in inter-ocular distances of the template), through
//! the shared step loop ([`crate::steps`]); the landmark NME of the crop is logged beside it.

use super::data::{HostBatch, Perturb, faces, host_batch};
use super::model::{RefinerConfig, RefinerNet};
use crate::checkpoint::load_run;
use crate::detector::data::Source;
use crate::steps::{Loss, StepPlan, StepReport, StepTask};
use crate::training::read_f64s;
use anyhow::Result;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use faceunlock_core::refine::{REFINE_CROP, crop_spec};
use std::path::Path;

#[derive(Config, Debug)]
pub struct RefinerTrainConfig {
    pub model: RefinerConfig,
    #[config(default = 64)]
    pub batch_size: usize,
    #[config(default = 2e-3)]
    pub learning_rate: f64,
    #[config(default = 20000)]
    pub steps: usize,
    pub time_budget_minutes: Option<f64>,
    #[config(default = 1)]
    pub seed: u64,
    /// Teacher detections below this score are not faces to learn.
    #[config(default = 0.6)]
    pub min_teacher_score: f32,
    #[config(default = "Perturb::default()")]
    pub perturb: Perturb,
}

const VAL_BATCHES: usize = 8;

/// `[total, nme]`: the L1 over the ten offsets and the mean point distance, both in units of
/// the template's inter-ocular distance.
pub fn loss<B: Backend>(predicted: Tensor<B, 2>, targets: Tensor<B, 2>) -> Loss<B> {
    // The template's inter-ocular distance in crop widths, the same at every crop size.
    let spec = crop_spec(REFINE_CROP);
    let iod = spec.template.inter_ocular() as f64 / spec.size as f64;
    let diff = predicted - targets;
    let [n, _] = diff.dims();
    let total = diff.clone().abs().sum_dim(1).mean().div_scalar(iod).reshape([1]);
    let nme = diff.reshape([n, 5, 2]).powi_scalar(2).sum_dim(2).sqrt().mean().div_scalar(iod).reshape([1]);
    Loss { parts: Tensor::cat(vec![total.clone(), nme], 0).detach(), total }
}

struct RefinerTask<'a> {
    cfg: &'a RefinerTrainConfig,
    train: (&'a [Source], Vec<(usize, usize)>),
    val: (&'a [Source], Vec<(usize, usize)>),
}

impl RefinerTask<'_> {
    fn host(&self, (sources, faces): &(&[Source], Vec<(usize, usize)>), seed: u64) -> HostBatch {
        host_batch(sources, faces, self.cfg.model.crop as u32, &self.cfg.perturb, self.cfg.batch_size, seed)
    }
}

impl<B: AutodiffBackend> StepTask<B> for RefinerTask<'_> {
    type Model = RefinerNet<B>;
    type Host = HostBatch;

    fn name(&self) -> &'static str {
        "refiner"
    }

    fn parts(&self) -> &'static [&'static str] {
        &["loss", "nme"]
    }

    fn batch(&self, _step: usize, seed: u64) -> HostBatch {
        self.host(&self.train, seed)
    }

    fn loss(&self, model: &RefinerNet<B>, batch: HostBatch, device: &B::Device) -> Loss<B> {
        let (crops, targets) = batch.upload(self.cfg.model.crop as u32, device);
        loss(model.forward(crops), targets)
    }

    fn validate(&self, model: &RefinerNet<B::InnerBackend>) -> Result<Vec<f64>> {
        let device = &model.devices()[0];
        let mut sums = vec![0.0; 2];
        for k in 0..VAL_BATCHES {
            let (crops, targets) = self.host(&self.val, 0xdead_beef + k as u64).upload::<B::InnerBackend>(self.cfg.model.crop as u32, device);
            let parts = read_f64s(loss(model.forward(crops), targets).parts)?;
            sums.iter_mut().zip(parts).for_each(|(s, p)| *s += p / VAL_BATCHES as f64);
        }
        Ok(sums)
    }
}

/// Train (or resume) a refiner into `dir`.
pub fn train<B: AutodiffBackend>(cfg: &RefinerTrainConfig, train: &[Source], val: &[Source], dir: &Path, device: &B::Device) -> Result<StepReport> {
    let (train_faces, val_faces) = (faces(train), faces(val));
    anyhow::ensure!(!train_faces.is_empty() && !val_faces.is_empty(), "no training or validation faces");
    anyhow::ensure!(cfg.model.crop > 0 && cfg.model.crop.is_multiple_of(16), "crop side {}: expected a positive multiple of 16", cfg.model.crop);
    let plan = StepPlan { steps: cfg.steps, time_budget_minutes: cfg.time_budget_minutes, learning_rate: cfg.learning_rate, batch_size: cfg.batch_size, seed: cfg.seed, pause_after_minutes: None, snapshot_every: None, checkpoint_every: crate::steps::INTERVAL };
    let task = RefinerTask { cfg, train: (train, train_faces), val: (val, val_faces) };
    crate::steps::run(&task, &plan, cfg, cfg.model.init::<B>(device), Ok, dir, device)
}

/// Load a trained refiner (config + best weights, else the last checkpoint) from a run directory.
pub fn load_trained<B: Backend>(dir: &Path, device: &B::Device) -> Result<(RefinerTrainConfig, RefinerNet<B>)> {
    load_run(dir, |cfg: &RefinerTrainConfig| cfg.model.init::<B>(device), device)
}
