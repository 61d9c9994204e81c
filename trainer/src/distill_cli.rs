//! `faceunlock-train distill`: an occlusion-robust student from a trained run (issue 7).

use crate::cli::{BACKEND, TrainBackend};
use anyhow::{Context, Result};
use burn::config::Config;
use clap::Args;
use std::path::{Path, PathBuf};
use trainer::distill::training::{distill as distill_loop, teacher_split};
use trainer::distill::{DistillConfig, Method};
use trainer::training::TrainConfig;

#[derive(Args)]
pub struct DistillArgs {
    /// The teacher's run directory: its best weights, config and split lists (the student trains
    /// on the teacher's `train.jsonl`, validates on its `val.jsonl`).
    #[arg(long)]
    teacher: PathBuf,
    /// The student's run directory (resumes if it has a state).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum)]
    method: Method,
    /// MaskInv's λ (weight of the template MSE); default the method's (100).
    #[arg(long)]
    lambda: Option<f64>,
    /// Fraction of the student's faces that wear a synthetic mask.
    #[arg(long, default_value_t = 0.5)]
    mask_probability: f64,
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    #[arg(long)]
    steps_per_epoch: Option<usize>,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop before an epoch that would end past this many minutes.
    #[arg(long)]
    max_minutes: Option<f64>,
}

pub fn distill(a: DistillArgs) -> Result<()> {
    anyhow::ensure!((0.0..=1.0).contains(&a.mask_probability), "--mask-probability {}: expected a fraction in [0, 1]", a.mask_probability);
    let teacher_cfg_path = a.teacher.join(trainer::checkpoint::CONFIG_FILE);
    let teacher = TrainConfig::load(&teacher_cfg_path).with_context(|| format!("{}: expected the teacher run's config.json", teacher_cfg_path.display()))?;
    let cfg = DistillConfig::new(a.teacher.display().to_string(), teacher.model)
        .with_method(a.method)
        .with_lambda(a.lambda)
        .with_mask_probability(a.mask_probability)
        .with_max_epochs(a.epochs)
        .with_steps_per_epoch(a.steps_per_epoch)
        .with_batch_size(a.batch)
        .with_learning_rate(a.lr)
        .with_seed(a.seed)
        .with_time_budget_minutes(a.max_minutes);
    let (train, val) = (teacher_split(&a.teacher, "train.jsonl")?, teacher_split(&a.teacher, "val.jsonl")?);
    log::info!("backend: {BACKEND}; {:?} student of {}: {} train / {} val images", a.method, a.teacher.display(), train.len(), val.len());
    let r = distill_loop::<TrainBackend>(&cfg, &train, &val, Path::new(&a.out), &Default::default())?;
    println!(
        "done: {} epochs, best epoch {} (val loss {:.4}); last val cosine to teacher {:.3}; {:.1} train img/s",
        r.state.epochs_done,
        r.state.best_epoch,
        r.state.best_val_loss.unwrap_or(f64::NAN),
        r.last_val.cosine_to_teacher(),
        r.train_images_per_second
    );
    Ok(())
}
