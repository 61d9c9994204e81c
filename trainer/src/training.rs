//! The training loop: Adam, early stopping on validation loss, checkpoint + resume, the config
//! saved next to the weights, one CSV row per epoch, progress bars.

use crate::checkpoint::{load_run, save, start_from_run, start_or_resume};
use crate::data::{Augment, Batch, PrepareError, Prepared, collate, prepare_refs};
use crate::loss::seg_loss;
use crate::model::{ModelConfig, SegDistilledId};
use anyhow::{Context, Result};
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use faceunlock_core::geometry::CropSpec;
use faceunlock_data::classes::NUM_CLASSES;
use faceunlock_data::sample::SampleRef;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

#[derive(Config, Debug)]
pub struct TrainConfig {
    pub model: ModelConfig,
    #[config(default = 1.0)]
    pub lambda_seg: f64,
    #[config(default = 0.1)]
    pub lambda_id: f64,
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    #[config(default = 32)]
    pub batch_size: usize,
    #[config(default = 125)]
    pub max_epochs: usize,
    #[config(default = 20)]
    pub patience: usize,
    #[config(default = 1)]
    pub seed: u64,
    /// Stop an epoch after this many steps (smoke tests, budgeted runs).
    pub steps_per_epoch: Option<usize>,
    #[config(default = "Augment::TRAIN")]
    pub augment: Augment,
    /// ImageNet MobileNetV2 safetensors to initialise the encoder from.
    pub imagenet: Option<String>,
    /// A trained run whose weights (best, else last) a new run starts from instead: fine-tuning,
    /// e.g. with another ID loss. Its model must have the same shape.
    pub init_from: Option<String>,
    /// Wall-clock budget: no epoch is started that would be expected to end past it.
    pub time_budget_minutes: Option<f64>,
}

/// Training steps between reads of the running loss (each read waits for the device).
pub(crate) const SYNC_EVERY: usize = 25;

/// Where the loop stands; saved after every epoch so a run can resume.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    pub epochs_done: usize,
    pub best_val_loss: Option<f64>,
    pub best_epoch: usize,
    pub stale_epochs: usize,
}

#[derive(Clone, Debug, Default)]
pub struct EpochMetrics {
    pub loss: f64,
    pub seg: f64,
    pub id: f64,
    pub id_accuracy: f64,
    pub miou: f64,
    pub images: usize,
}

/// Build a model as the config says, from a trained run's weights or ImageNet's where given.
pub fn init_model<B: Backend>(config: &TrainConfig, device: &B::Device) -> Result<SegDistilledId<B>> {
    starting_weights(config, config.model.init::<B>(device), device)
}

/// `model` (the config's architecture) with the weights a new run starts from: a trained run's,
/// or ImageNet's encoder, where the config names them.
fn starting_weights<B: Backend>(config: &TrainConfig, mut model: SegDistilledId<B>, device: &B::Device) -> Result<SegDistilledId<B>> {
    if let Some(run) = &config.init_from {
        // The ID loss (`arc`) may change between the runs: it adds no weights.
        let shape = |m: &ModelConfig| format!("{:?}", ModelConfig { arc: None, ..m.clone() });
        return start_from_run(Path::new(run), model, |theirs: &TrainConfig| shape(&theirs.model), &shape(&config.model), device)
            .with_context(|| format!("starting from the run in {run} (only the ID loss may differ)"));
    }
    if let Some(path) = &config.imagenet {
        model.encoder = crate::model::imagenet::load_imagenet(model.encoder, Path::new(path), device)?;
    }
    Ok(model)
}

/// Loss terms and accuracy of one batch.
struct StepOut<B: Backend> {
    loss: Tensor<B, 1>,
    seg: Option<Tensor<B, 1>>,
    id: Tensor<B, 1>,
    correct: Tensor<B, 1, Int>,
    seg_logits: Option<Tensor<B, 4>>,
}

fn step<B: Backend>(model: &SegDistilledId<B>, batch: &Batch<B>, cfg: &TrainConfig) -> StepOut<B> {
    let out = model.forward(batch.images.clone());
    let id = model.id_head.loss(out.embedding.clone(), out.id_logits.clone(), batch.identities.clone());
    let correct = out.id_logits.argmax(1).squeeze_dim::<1>(1).equal(batch.identities.clone()).int().sum();
    let seg = out.seg_logits.as_ref().map(|l| seg_loss(l.clone(), batch.admissible.clone(), batch.labelled.clone()));
    let loss = match &seg {
        Some(s) => s.clone().mul_scalar(cfg.lambda_seg) + id.clone().mul_scalar(cfg.lambda_id),
        None => id.clone().mul_scalar(cfg.lambda_id),
    };
    StepOut { loss, seg, id, correct, seg_logits: out.seg_logits }
}

/// One optimiser step on `batch`; the step's losses, for the caller to read when it chooses.
fn optimise<B: AutodiffBackend, O: Optimizer<SegDistilledId<B>, B>>(model: SegDistilledId<B>, optim: &mut O, batch: &Batch<B>, cfg: &TrainConfig) -> (SegDistilledId<B>, StepOut<B>) {
    let out = step(&model, batch, cfg);
    let grads = GradientsParams::from_grads(out.loss.clone().backward(), &model);
    (optim.step(cfg.learning_rate, model, grads), out)
}

/// Add `t` to a running sum kept on the device (no wait).
pub(crate) fn accumulate<B: Backend>(sum: &mut Option<Tensor<B, 1>>, t: Tensor<B, 1>) {
    *sum = Some(match sum.take() {
        Some(s) => s + t,
        None => t,
    });
}

/// The stats one step adds to an epoch's sums: `[loss, seg, id] × images, correct`.
fn step_stats<B: Backend>(out: &StepOut<B>, images: usize, device: &B::Device) -> Tensor<B, 1> {
    let n = images as f64;
    let seg = out.seg.clone().unwrap_or_else(|| Tensor::zeros([1], device));
    Tensor::cat(vec![out.loss.clone() * n, seg * n, out.id.clone() * n, out.correct.clone().float()], 0).detach()
}

/// A small tensor's values, read back from the device (one wait).
pub(crate) fn read_f64s<B: Backend>(t: Tensor<B, 1>) -> Result<Vec<f64>> {
    t.into_data().convert::<f64>().to_vec::<f64>().map_err(|e| anyhow::anyhow!("reading values back from the device: {e:?}"))
}

/// Per-class intersection and union over pixels with exactly one admissible class, as one
/// `[2 × classes]` tensor left on the device.
fn iou_counts<B: Backend>(logits: Tensor<B, 4>, batch: &Batch<B>) -> Tensor<B, 1> {
    let single = batch.admissible.clone().sum_dim(1).equal_elem(1.0).float();
    let pred = logits.argmax(1);
    let (mut inter, mut union) = (Vec::with_capacity(NUM_CLASSES), Vec::with_capacity(NUM_CLASSES));
    for c in 0..NUM_CLASSES {
        let p = pred.clone().equal_elem(c as i64).float() * single.clone();
        let t = batch.admissible.clone().narrow(1, c, 1) * single.clone();
        inter.push((p.clone() * t.clone()).sum());
        union.push(p.max_pair(t).sum());
    }
    Tensor::cat(inter.into_iter().chain(union).collect(), 0)
}

/// Batches of `refs` in `order`, each made by `make(items, batch seed)` on a worker thread one
/// batch ahead of the consumer.
pub(crate) fn batches<'a, T: Send + 'a>(
    refs: &'a [SampleRef],
    order: Vec<usize>,
    batch_size: usize,
    seed: u64,
    scope: &'a std::thread::Scope<'a, '_>,
    make: impl Fn(&[&SampleRef], u64) -> (Vec<T>, Vec<PrepareError>) + Send + 'a,
) -> std::sync::mpsc::Receiver<Vec<T>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    scope.spawn(move || {
        for (k, chunk) in order.chunks(batch_size).enumerate() {
            let items: Vec<&SampleRef> = chunk.iter().map(|i| &refs[*i]).collect();
            let (ok, failed) = make(&items, seed.wrapping_add(k as u64 * 7919));
            for e in failed {
                log::warn!("skipped: {e}");
            }
            if tx.send(ok).is_err() {
                return;
            }
        }
    });
    rx
}

/// Prepared crops of `refs` for the joint model, batch by batch (see [`batches`]).
fn crop_batches<'a>(refs: &'a [SampleRef], order: Vec<usize>, batch_size: usize, augment: Augment, seed: u64, scope: &'a std::thread::Scope<'a, '_>) -> std::sync::mpsc::Receiver<Vec<Prepared>> {
    batches(refs, order, batch_size, seed, scope, move |items, seed| prepare_refs(items, CropSpec::default(), augment, seed))
}

/// An epoch's sample order: shuffled by `(seed, epoch)`, whole batches only (one batch shape per
/// run: GPU kernels are tuned per shape), at most `steps` batches.
pub(crate) fn epoch_order(len: usize, batch_size: usize, steps: Option<usize>, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(epoch as u64)));
    let whole = (order.len() / batch_size).max(1) * batch_size;
    order.truncate(steps.map_or(whole, |steps| whole.min(steps * batch_size)));
    order
}

/// Whether another epoch as long as the longest so far would end past `budget_minutes`.
pub(crate) fn over_budget(budget_minutes: Option<f64>, started: Instant, longest_epoch_s: f64) -> bool {
    let Some(budget) = budget_minutes else { return false };
    let over = started.elapsed().as_secs_f64() + longest_epoch_s > budget * 60.0;
    if over {
        log::info!("stopping: another epoch (~{longest_epoch_s:.0} s) would exceed the {budget} min budget");
    }
    over
}

impl TrainState {
    /// Record epoch `epoch`'s validation loss; true when it is the best so far.
    pub fn record(&mut self, epoch: usize, val_loss: f64) -> bool {
        self.epochs_done = epoch;
        let best = self.best_val_loss.is_none_or(|b| val_loss < b);
        if best {
            self.best_val_loss = Some(val_loss);
            self.best_epoch = epoch;
            self.stale_epochs = 0;
        } else {
            self.stale_epochs += 1;
        }
        best
    }
}

pub(crate) fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// Evaluate on `refs` without augmentation. Sums stay on the device; one read at the end.
pub fn validate<B: Backend>(model: &SegDistilledId<B>, refs: &[SampleRef], cfg: &TrainConfig, device: &B::Device) -> Result<EpochMetrics> {
    let mut m = EpochMetrics::default();
    let (mut sums, mut ious) = (None, None);
    std::thread::scope(|scope| {
        for items in crop_batches(refs, (0..refs.len()).collect(), cfg.batch_size, Augment::NONE, cfg.seed, scope) {
            if items.is_empty() {
                continue;
            }
            let batch = collate::<B>(&items, CropSpec::default().size as usize, device);
            let out = step(model, &batch, cfg);
            accumulate(&mut sums, step_stats(&out, batch.len, device));
            if let Some(logits) = out.seg_logits {
                accumulate(&mut ious, iou_counts(logits, &batch));
            }
            m.images += batch.len;
        }
    });
    let n = m.images.max(1) as f64;
    let [loss, seg, id, correct] = sums.map_or(Ok([0.0; 4]), |s| read_f64s(s).map(|v| [v[0], v[1], v[2], v[3]])).context("reading the validation sums")?;
    (m.loss, m.seg, m.id, m.id_accuracy) = (loss / n, seg / n, id / n, correct / n);
    let counts = ious.map_or(Ok(vec![]), read_f64s).context("reading the validation IoU counts")?;
    let (inter, union) = counts.split_at(counts.len() / 2);
    let per_class: Vec<f64> = inter.iter().zip(union).filter(|(_, u)| **u > 0.0).map(|(i, u)| i / u).collect();
    m.miou = if per_class.is_empty() { 0.0 } else { per_class.iter().sum::<f64>() / per_class.len() as f64 };
    Ok(m)
}

pub struct TrainReport {
    pub state: TrainState,
    pub last_val: EpochMetrics,
    pub train_images_per_second: f64,
}

/// Train (or resume training) into `dir`.
pub fn train<B: AutodiffBackend>(cfg: &TrainConfig, train_refs: &[SampleRef], val_refs: &[SampleRef], dir: &Path, device: &B::Device) -> Result<TrainReport> {
    let header = "epoch,train_loss,train_seg,train_id,train_id_acc,val_loss,val_seg,val_id,val_id_acc,val_miou,seconds,train_img_per_s";
    let fresh = |model| starting_weights(cfg, model, device);
    let run = start_or_resume(dir, cfg, cfg.model.init::<B>(device), fresh, AdamConfig::new().init::<B, SegDistilledId<B>>(), header, device)?;
    let (mut model, mut optim, mut csv) = (run.model, run.optim, run.csv);
    let mut state: TrainState = run.state.unwrap_or_default();
    if state.epochs_done > 0 {
        log::info!("resuming {} after epoch {}", dir.display(), state.epochs_done);
    }
    let size = CropSpec::default().size as usize;
    let mut last_val = EpochMetrics::default();
    let mut throughput = 0.0;
    let run_started = Instant::now();
    let mut longest_epoch = 0.0f64;
    while state.epochs_done < cfg.max_epochs && state.stale_epochs < cfg.patience {
        if over_budget(cfg.time_budget_minutes, run_started, longest_epoch) {
            break;
        }
        let epoch = state.epochs_done + 1;
        let order = epoch_order(train_refs.len(), cfg.batch_size, cfg.steps_per_epoch, cfg.seed, epoch);
        let bar = progress(order.len(), &format!("epoch {epoch}"));
        let started = Instant::now();
        let mut tm = EpochMetrics::default();
        // Sums of [loss, seg, id] × images and correct predictions, kept on the device so a step
        // never waits for the GPU; read every `SYNC_EVERY` steps for the progress bar.
        let mut sums: Option<Tensor<B, 1>> = None;
        std::thread::scope(|scope| {
            let seed = cfg.seed ^ (epoch as u64) << 32;
            for (k, items) in crop_batches(train_refs, order, cfg.batch_size, cfg.augment, seed, scope).into_iter().enumerate() {
                if items.is_empty() {
                    continue;
                }
                let batch = collate::<B>(&items, size, device);
                let out;
                (model, out) = optimise(model.clone(), &mut optim, &batch, cfg);
                accumulate(&mut sums, step_stats(&out, batch.len, device));
                tm.images += batch.len;
                bar.inc(batch.len as u64);
                if k % SYNC_EVERY == SYNC_EVERY - 1 {
                    let loss = sums.as_ref().map_or(0.0, |s| s.clone().narrow(0, 0, 1).into_scalar().elem::<f64>()) / tm.images as f64;
                    bar.set_message(format!("loss {loss:.4}"));
                }
            }
        });
        let [loss, seg, id, correct] = sums.map_or(Ok([0.0; 4]), |s| read_f64s(s).map(|v| [v[0], v[1], v[2], v[3]])).context("reading the epoch's losses")?;
        (tm.loss, tm.seg, tm.id) = (loss, seg, id);
        bar.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();
        throughput = tm.images as f64 / train_seconds.max(1e-9);
        let n = tm.images.max(1) as f64;
        let val = validate(&model.valid(), val_refs, cfg, &model.valid().devices()[0])?;
        writeln!(
            csv,
            "{epoch},{:.5},{:.5},{:.5},{:.4},{:.5},{:.5},{:.5},{:.4},{:.4},{:.1},{:.2}",
            tm.loss / n,
            tm.seg / n,
            tm.id / n,
            correct / n,
            val.loss,
            val.seg,
            val.id,
            val.id_accuracy,
            val.miou,
            started.elapsed().as_secs_f64(),
            throughput
        )?;
        csv.flush()?;
        log::info!(
            "epoch {epoch}: train loss {:.4} | val loss {:.4}, id acc {:.3}, mIoU {:.3} | {throughput:.1} img/s",
            tm.loss / n,
            val.loss,
            val.id_accuracy,
            val.miou
        );
        longest_epoch = longest_epoch.max(started.elapsed().as_secs_f64());
        let best = state.record(epoch, val.loss);
        save(dir, &model, &optim, &state, best)?;
        last_val = val;
    }
    Ok(TrainReport { state, last_val, train_images_per_second: throughput })
}

/// Training throughput of the model alone: `steps` optimiser steps on random batches (no data
/// loading) after `warmup` steps (kernel compilation, autotuning). Returns images per second.
pub fn bench_steps<B: AutodiffBackend>(cfg: &TrainConfig, steps: usize, warmup: usize, device: &B::Device) -> Result<f64> {
    use rand::Rng;
    let size = CropSpec::default().size as usize;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let items: Vec<Prepared> = (0..cfg.batch_size)
        .map(|_| Prepared {
            image: (0..3 * size * size).map(|_| rng.random_range(-2.0..2.0)).collect(),
            admissible: cfg.model.teacher.then(|| (0..size * size).map(|_| 1u16 << rng.random_range(0..NUM_CLASSES)).collect()),
            identity: rng.random_range(0..cfg.model.identities as u32),
        })
        .collect();
    let batch = collate::<B>(&items, size, device);
    let mut model = init_model::<B>(cfg, device)?;
    let mut optim = AdamConfig::new().init::<B, SegDistilledId<B>>();
    // Only the last loss is read: the steps queue on the device as they do in training.
    let mut run = |count: usize| -> Result<()> {
        let mut last = None;
        for _ in 0..count {
            let out;
            (model, out) = optimise(model.clone(), &mut optim, &batch, cfg);
            last = Some(out.loss);
        }
        let loss = last.map_or(0.0, |l| l.into_scalar().elem::<f64>());
        anyhow::ensure!(loss.is_finite(), "the loss became {loss}");
        Ok(())
    };
    run(warmup)?;
    let started = Instant::now();
    run(steps)?;
    Ok((steps * cfg.batch_size) as f64 / started.elapsed().as_secs_f64())
}

/// Load a trained model (config + best weights, else the last checkpoint) from a run directory.
pub fn load_trained<B: Backend>(dir: &Path, device: &B::Device) -> Result<(TrainConfig, SegDistilledId<B>)> {
    load_run(dir, |cfg: &TrainConfig| cfg.model.init::<B>(device), device)
}
