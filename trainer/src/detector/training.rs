//! Detector training: focal loss on the face logit, smooth-L1 on the box and L1 on the
//! landmarks at the positive cells; Adam with a cosine schedule sized to the step count or the
//! time budget; checkpoint + resume; config next to the weights; a CSV row per interval.

use super::data::{Augment, Batch, Source, host_batch};
use super::model::{DetectorConfig, DetectorNet, LevelOutput};
use crate::checkpoint::{load_run, save, start_or_resume};
use crate::training::{accumulate, progress, read_f64s};
use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::backend::AutodiffBackend;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

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
}

/// Steps between CSV rows, checkpoints and validations.
const INTERVAL: usize = 100;
/// Steps timed before the schedule is fitted to the time budget.
const TIMING_STEPS: usize = 10;
const VAL_BATCHES: usize = 4;

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct DetectorState {
    pub steps_done: usize,
    pub planned_steps: usize,
    pub best_val_loss: Option<f64>,
    pub best_step: usize,
}

/// The loss terms of one batch: `[total, score, box, landmarks]`.
pub struct Loss<B: Backend> {
    pub total: Tensor<B, 1>,
    pub parts: Tensor<B, 1>,
}

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
    let face = targets.clone().narrow(1, 0, 1);
    let weight = targets.clone().narrow(1, 1, 1);
    let positives = face.clone().sum().clamp_min(1.0);
    let p = sigmoid(score.clone());
    let not_face = face.clone().neg().add_scalar(1.0);
    // Focal loss (γ = 2): easy background cells fade out of the sum.
    let focal = (face.clone() * p.clone().neg().add_scalar(1.0).powi_scalar(2) * log_sigmoid(score.clone())
        + not_face * p.powi_scalar(2) * log_sigmoid(score.neg()))
    .neg()
        * weight;
    let score_loss = focal.sum() / positives.clone();
    let box_loss = (smooth_l1(bbox - targets.clone().narrow(1, 2, 4)) * face.clone()).sum() / positives.clone();
    // Landmark error relative to the face's size (√(w·h) in strides, from the box target's
    // log sizes), as the NME the detector is judged by: in plain stride units a stride-32 face
    // would weigh a quarter of a stride-8 face for the same relative error.
    let per_size = targets.clone().narrow(1, 4, 2).sum_dim(1).mul_scalar(-0.5).exp();
    let kps_loss = ((kps - targets.narrow(1, 6, 10)).abs() * face * per_size).sum() / positives;
    let total = score_loss.clone() + box_loss.clone().mul_scalar(cfg.box_weight) + kps_loss.clone().mul_scalar(cfg.kps_weight);
    Loss { parts: Tensor::cat(vec![total.clone(), score_loss, box_loss, kps_loss], 0).detach(), total }
}

/// Cosine decay from the base rate to 5 % of it over `planned` steps, after a 50-step warm-up.
fn learning_rate(cfg: &DetectorTrainConfig, step: usize, planned: usize) -> f64 {
    let warm = 50.0;
    let s = step as f64;
    if s < warm {
        return cfg.learning_rate * (s + 1.0) / warm;
    }
    let t = ((s - warm) / (planned as f64 - warm).max(1.0)).min(1.0);
    cfg.learning_rate * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// Mean loss parts over fixed validation batches.
fn validate<B: Backend>(model: &DetectorNet<B>, val: &[Source], cfg: &DetectorTrainConfig, device: &B::Device) -> Result<Vec<f64>> {
    let mut sums = vec![0.0; 4];
    for k in 0..VAL_BATCHES {
        let batch: Batch<B> = host_batch(val, cfg.input, &cfg.augment, cfg.batch_size, 0xdead_beef + k as u64).upload(cfg.input, device);
        let parts = read_f64s(loss(model.forward(batch.images), batch.targets, cfg).parts)?;
        sums.iter_mut().zip(parts).for_each(|(s, p)| *s += p / VAL_BATCHES as f64);
    }
    Ok(sums)
}

pub struct DetectorReport {
    pub state: DetectorState,
    pub images_per_second: f64,
}

/// Train (or resume) a detector into `dir`.
pub fn train<B: AutodiffBackend>(cfg: &DetectorTrainConfig, train: &[Source], val: &[Source], dir: &Path, device: &B::Device) -> Result<DetectorReport> {
    anyhow::ensure!(!train.is_empty() && !val.is_empty(), "no training or validation images");
    let header = "step,loss,score,box,landmarks,val_loss,val_score,val_box,val_landmarks,lr,img_per_s";
    let run = start_or_resume(dir, cfg, cfg.model.init::<B>(device), AdamConfig::new().init::<B, DetectorNet<B>>(), header, device)?;
    let (mut model, mut optim, mut csv) = (run.model, run.optim, run.csv);
    let mut state = run.state.unwrap_or(DetectorState { planned_steps: cfg.steps, ..Default::default() });
    if state.steps_done > 0 {
        log::info!("resuming {} after step {}", dir.display(), state.steps_done);
    }
    let started = Instant::now();
    let first = state.steps_done;
    let bar = progress(state.planned_steps, "detector");
    bar.set_position(first as u64);
    let mut sums: Option<Tensor<B, 1>> = None;
    let mut interval_start = (Instant::now(), state.steps_done);
    let mut throughput = 0.0;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let seed = cfg.seed;
        scope.spawn(move || {
            for step in first.. {
                let b = host_batch(train, cfg.input, &cfg.augment, cfg.batch_size, seed.wrapping_mul(1_000_003).wrapping_add(step as u64));
                if tx.send(b).is_err() {
                    return;
                }
            }
        });
        while state.steps_done < state.planned_steps {
            let batch: Batch<B> = rx.recv().context("the batch producer stopped")?.upload(cfg.input, device);
            let lr = learning_rate(cfg, state.steps_done, state.planned_steps);
            let out = loss(model.forward(batch.images), batch.targets, cfg);
            let grads = GradientsParams::from_grads(out.total.backward(), &model);
            model = optim.step(lr, model, grads);
            accumulate(&mut sums, out.parts);
            state.steps_done += 1;
            bar.inc(1);
            if let (Some(budget), true) = (cfg.time_budget_minutes, state.steps_done == first + TIMING_STEPS) {
                let per_step = started.elapsed().as_secs_f64() / TIMING_STEPS as f64;
                let fit = first + (budget * 60.0 / per_step) as usize;
                if fit < state.planned_steps {
                    log::info!("{per_step:.2} s/step: the {budget} min budget fits {fit} steps (of {})", state.planned_steps);
                    state.planned_steps = fit.max(state.steps_done);
                    bar.set_length(state.planned_steps as u64);
                }
            }
            if state.steps_done.is_multiple_of(INTERVAL) || state.steps_done == state.planned_steps {
                let steps = (state.steps_done - interval_start.1).max(1);
                let train_parts: Vec<f64> = sums.take().map_or(Ok(vec![0.0; 4]), read_f64s)?.iter().map(|v| v / steps as f64).collect();
                throughput = (steps * cfg.batch_size) as f64 / interval_start.0.elapsed().as_secs_f64();
                let v = validate(&model.valid(), val, cfg, &model.valid().devices()[0])?;
                let f = |x: &[f64]| x.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>().join(",");
                writeln!(csv, "{},{},{},{lr:.6},{throughput:.2}", state.steps_done, f(&train_parts), f(&v))?;
                csv.flush()?;
                bar.set_message(format!("loss {:.3} val {:.3}", train_parts[0], v[0]));
                let best = state.best_val_loss.is_none_or(|b| v[0] < b);
                if best {
                    state.best_val_loss = Some(v[0]);
                    state.best_step = state.steps_done;
                }
                save(dir, &model, &optim, &state, best)?;
                interval_start = (Instant::now(), state.steps_done);
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(DetectorReport { state, images_per_second: throughput })
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

    #[test]
    fn the_landmark_term_measures_error_relative_to_the_face_size() {
        let (small, large) = (landmark_term(2.0, 0.2), landmark_term(4.0, 0.4));
        assert!((small - 1.0).abs() < 1e-5, "10 coordinates × 0.2 / 2 = 1, got {small}");
        assert!((small - large).abs() < 1e-5, "same relative error, {small} vs {large}");
        assert!(landmark_term(4.0, 0.2) < small, "the same pixel error is smaller on a larger face");
    }
}
