//! The step-based training loop (the face detector, the landmark refiner, template
//! distillation): batches made on a producer thread, Adam with a warm-up and a cosine decay over
//! the planned steps (shortened to fit a time budget, measured after a few steps), and every
//! interval a CSV row (images seen, img/s), a validation and a checkpoint; a run directory
//! holding a checkpoint resumes the same schedule exactly (each step's batch comes from its
//! index). A run may also pause after some minutes, schedule untouched, to go on in another
//! session, and keep snapshots of its weights along the way.

use crate::checkpoint::{save, start_or_resume};
use crate::training::{accumulate, progress, read_f64s};
use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Steps between CSV rows, checkpoints and validations, unless a plan says otherwise.
pub const INTERVAL: usize = 100;
/// Steps timed before the schedule is fitted to the time budget.
const TIMING_STEPS: usize = 10;
const WARMUP_STEPS: f64 = 50.0;

/// How long and how fast a run learns.
#[derive(Clone, Copy, Debug)]
pub struct StepPlan {
    pub steps: usize,
    /// Wall-clock budget; the schedule is shortened to fit it.
    pub time_budget_minutes: Option<f64>,
    pub learning_rate: f64,
    pub batch_size: usize,
    pub seed: u64,
    /// Stop at the first checkpoint past this many minutes, leaving the schedule as planned: the
    /// same command resumes it (a run longer than a session).
    pub pause_after_minutes: Option<f64>,
    /// Keep the weights every this many steps as `snapshots/step-N` (a learning curve).
    pub snapshot_every: Option<usize>,
    /// Steps between CSV rows, validations and checkpoints ([`INTERVAL`] in every run but tests).
    pub checkpoint_every: usize,
}

/// Where [`StepPlan::snapshot_every`] keeps the weights after step `step`, under a run directory.
pub fn snapshot_file(dir: &Path, step: usize) -> std::path::PathBuf {
    dir.join("snapshots").join(format!("step-{step}"))
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StepState {
    pub steps_done: usize,
    pub planned_steps: usize,
    pub best_val_loss: Option<f64>,
    pub best_step: usize,
}

/// The loss of one batch: the total to minimise and its parts for the CSV, total first.
pub struct Loss<B: Backend> {
    pub total: Tensor<B, 1>,
    pub parts: Tensor<B, 1>,
}

pub struct StepReport {
    pub state: StepState,
    pub images_per_second: f64,
}

/// What a model trained by [`run`] supplies: its batches, its loss, its validation.
pub trait StepTask<B: AutodiffBackend>: Sync {
    type Model: AutodiffModule<B>;
    /// A batch made on the host (by the producer thread).
    type Host: Send;
    /// What is trained, for the progress bar.
    fn name(&self) -> &'static str;
    /// CSV names of the loss parts, `loss` (the total) first.
    fn parts(&self) -> &'static [&'static str];
    /// The batch of optimiser step `step` (counted from the run's start), drawn from `seed`.
    fn batch(&self, step: usize, seed: u64) -> Self::Host;
    fn loss(&self, model: &Self::Model, batch: Self::Host, device: &B::Device) -> Loss<B>;
    /// Mean loss parts over fixed validation batches.
    fn validate(&self, model: &<Self::Model as AutodiffModule<B>>::InnerModule) -> Result<Vec<f64>>;
}

/// Cosine decay from `base` to 5 % of it over `planned` steps, after a warm-up.
pub fn learning_rate(base: f64, step: usize, planned: usize) -> f64 {
    let s = step as f64;
    if s < WARMUP_STEPS {
        return base * (s + 1.0) / WARMUP_STEPS;
    }
    let t = ((s - WARMUP_STEPS) / (planned as f64 - WARMUP_STEPS).max(1.0)).min(1.0);
    base * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// Train (or resume) `model` on `task` into `dir`, saving `cfg` next to the weights; a new run
/// starts from `fresh(model)` (see `checkpoint::start_or_resume`).
pub fn run<B, T, C>(task: &T, plan: &StepPlan, cfg: &C, model: T::Model, fresh: impl FnOnce(T::Model) -> Result<T::Model>, dir: &Path, device: &B::Device) -> Result<StepReport>
where
    B: AutodiffBackend,
    T: StepTask<B>,
    C: burn::config::Config,
{
    if let Some(every) = plan.snapshot_every {
        anyhow::ensure!(every > 0 && every.is_multiple_of(plan.checkpoint_every), "snapshots every {every} steps: expected a multiple of the checkpoint interval, {}", plan.checkpoint_every);
    }
    let parts = task.parts();
    let header = format!("step,images,{},{},lr,img_per_s", parts.join(","), parts.iter().map(|p| format!("val_{p}")).collect::<Vec<_>>().join(","));
    let opened = start_or_resume(dir, cfg, model, fresh, AdamConfig::new().init::<B, T::Model>(), &header, device)?;
    let (mut model, mut optim, mut csv) = (opened.model, opened.optim, opened.csv);
    let mut state = opened.state.unwrap_or(StepState { planned_steps: plan.steps, ..Default::default() });
    if state.steps_done > 0 {
        log::info!("resuming {} after step {}", dir.display(), state.steps_done);
    }
    let started = Instant::now();
    let first = state.steps_done;
    let bar = progress(state.planned_steps, task.name());
    bar.set_position(first as u64);
    let mut sums: Option<Tensor<B, 1>> = None;
    let mut interval_start = (Instant::now(), state.steps_done);
    let mut throughput = 0.0;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        scope.spawn(move || {
            for step in first.. {
                if tx.send(task.batch(step, plan.seed.wrapping_mul(1_000_003).wrapping_add(step as u64))).is_err() {
                    return;
                }
            }
        });
        while state.steps_done < state.planned_steps {
            let batch = rx.recv().context("the batch producer stopped")?;
            let lr = learning_rate(plan.learning_rate, state.steps_done, state.planned_steps);
            let out = task.loss(&model, batch, device);
            let grads = GradientsParams::from_grads(out.total.backward(), &model);
            model = optim.step(lr, model, grads);
            accumulate(&mut sums, out.parts);
            state.steps_done += 1;
            bar.inc(1);
            if let (Some(budget), true) = (plan.time_budget_minutes, state.steps_done == first + TIMING_STEPS) {
                let per_step = started.elapsed().as_secs_f64() / TIMING_STEPS as f64;
                let fit = first + (budget * 60.0 / per_step) as usize;
                if fit < state.planned_steps {
                    log::info!("{per_step:.2} s/step: the {budget} min budget fits {fit} steps (of {})", state.planned_steps);
                    state.planned_steps = fit.max(state.steps_done);
                    bar.set_length(state.planned_steps as u64);
                }
            }
            if state.steps_done.is_multiple_of(plan.checkpoint_every) || state.steps_done == state.planned_steps {
                let steps = (state.steps_done - interval_start.1).max(1);
                let train_parts: Vec<f64> = sums.take().map_or(Ok(vec![0.0; parts.len()]), read_f64s)?.iter().map(|v| v / steps as f64).collect();
                throughput = (steps * plan.batch_size) as f64 / interval_start.0.elapsed().as_secs_f64();
                let v = task.validate(&model.valid())?;
                let f = |x: &[f64]| x.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>().join(",");
                writeln!(csv, "{},{},{},{},{lr:.6},{throughput:.2}", state.steps_done, state.steps_done * plan.batch_size, f(&train_parts), f(&v))?;
                csv.flush()?;
                bar.set_message(format!("loss {:.3} val {:.3}", train_parts[0], v[0]));
                let best = state.best_val_loss.is_none_or(|b| v[0] < b);
                if best {
                    state.best_val_loss = Some(v[0]);
                    state.best_step = state.steps_done;
                }
                if plan.snapshot_every.is_some_and(|every| state.steps_done.is_multiple_of(every)) {
                    let file = snapshot_file(dir, state.steps_done);
                    std::fs::create_dir_all(dir.join("snapshots")).with_context(|| format!("creating {}", dir.join("snapshots").display()))?;
                    model.clone().save_file(&file, &crate::checkpoint::recorder()).with_context(|| format!("saving the snapshot {}", file.display()))?;
                }
                save(dir, &model, &optim, &state, best)?;
                interval_start = (Instant::now(), state.steps_done);
                if plan.pause_after_minutes.is_some_and(|m| started.elapsed().as_secs_f64() > m * 60.0) && state.steps_done < state.planned_steps {
                    log::info!("pausing after step {} of {} ({} images): the same command resumes the schedule", state.steps_done, state.planned_steps, state.steps_done * plan.batch_size);
                    break;
                }
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(StepReport { state, images_per_second: throughput })
}

#[cfg(test)]
mod tests {
    use super::learning_rate;

    #[test]
    fn the_rate_warms_up_peaks_and_decays_to_five_percent() {
        assert!(learning_rate(1.0, 0, 1000) < 0.05);
        assert!((learning_rate(1.0, 50, 1000) - 1.0).abs() < 1e-9);
        assert!((learning_rate(1.0, 1000, 1000) - 0.05).abs() < 1e-9);
        assert!(learning_rate(1.0, 500, 1000) < learning_rate(1.0, 200, 1000));
    }
}
