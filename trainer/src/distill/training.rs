//! The students' training loop: the frozen teacher embeds each bare face, the student the same
//! face as it is shown (masked or bare), and the method's terms pull the two together. Same run
//! directory as the teacher's runs (config, checkpoints, best weights, metrics CSV, resume).

use super::loss::{soft_label, template_mse, triplet};
use super::{DistillConfig, LossWeights, Student};
use crate::checkpoint::{load_run, save, start_or_resume};
use crate::data::{Augment, Prepared, identities_tensor, images_tensor, prepare_each, prepare_masked_pair, prepare_refs};
use crate::eval::closed_set::read_list;
use crate::loss::{elastic_arc, id_loss, l2_normalize};
use crate::model::SegDistilledId;
use crate::training::{SYNC_EVERY, TrainState, accumulate, batches, epoch_order, load_trained, over_budget, progress, read_f64s};
use anyhow::{Context, Result};
use burn::module::{AutodiffModule, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::backend::AutodiffBackend;
use faceunlock_core::geometry::{CropSpec, Landmarks5};
use faceunlock_data::masks::MaskStyle;
use faceunlock_data::sample::SampleRef;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Names of the values a step reports, in order (the loss, each term unweighted, and the mean
/// cosine between student and teacher embeddings).
pub const STAT_NAMES: [&str; 7] = ["loss", "template_mse", "elastic_arc", "cross_entropy", "soft_label", "triplet", "cosine_to_teacher"];

/// Epoch means of [`STAT_NAMES`].
#[derive(Clone, Debug, Default)]
pub struct DistillMetrics {
    pub values: [f64; 7],
}

impl DistillMetrics {
    pub fn loss(&self) -> f64 {
        self.values[0]
    }

    /// Mean cosine between the student's and the teacher's embeddings of the same faces.
    pub fn cosine_to_teacher(&self) -> f64 {
        self.values[6]
    }
}

/// A teacher run's split list (`train.jsonl`, `val.jsonl`) as samples: the student learns
/// the teacher's identities from the teacher's images.
pub fn teacher_split(teacher_run: &Path, list: &str) -> Result<Vec<SampleRef>> {
    Ok(read_list(&teacher_run.join(list), &[])?
        .into_iter()
        .map(|item| SampleRef { image: item.image, mask: None, identity: item.identity, landmarks: item.landmarks.map(Landmarks5), yaw: None })
        .collect())
}

/// Each face bare (the teacher's view) and as the student sees it: masked with probability `p`,
/// in a style drawn per face and epoch.
fn prepare_views(items: &[&SampleRef], augment: Augment, p: f64, seed: u64) -> (Vec<(Prepared, Prepared)>, Vec<crate::data::PrepareError>) {
    prepare_each(items, seed, |sample, name, rng| {
        let style = rng.random_bool(p).then(|| MaskStyle::random(rng.random()));
        prepare_masked_pair(sample, name, CropSpec::default(), augment, style.as_ref(), rng)
    })
}

/// Per-sample ElasticFace margins ~ N(mean, std) (Box-Muller), as `[n, 1]`.
fn draw_margins<B: Backend, R: Rng>(n: usize, mean: f64, std: f64, rng: &mut R, device: &B::Device) -> Tensor<B, 2> {
    let margins: Vec<f32> = (0..n)
        .map(|_| {
            let (u, v): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
            (mean + std * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(margins, [n, 1]), device)
}

/// The teacher's embedding and class logits of the bare faces.
fn teacher_outputs<B: Backend>(teacher: &SegDistilledId<B>, bare: &[Prepared], device: &B::Device) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let embedding = teacher.embed(images_tensor(bare, CropSpec::default().size as usize, device));
    (embedding.clone(), teacher.id_head.logits(embedding))
}

/// The weighted loss of one batch, and [`STAT_NAMES`] × batch size for the epoch's sums.
fn student_step<B: Backend>(student: &Student<B>, teacher: (Tensor<B, 2>, Tensor<B, 2>), shown: &[Prepared], margins: Tensor<B, 2>, cfg: &DistillConfig, device: &B::Device) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let (teacher_embedding, teacher_logits) = teacher;
    let w: LossWeights = cfg.weights();
    let embedding = student.embed(images_tensor(shown, CropSpec::default().size as usize, device));
    let labels = identities_tensor::<B>(shown, device);
    // The classifier runs once, and only for the terms that read it.
    let logits = (w.cross_entropy > 0.0 || w.soft_label > 0.0).then(|| student.id_head.logits(embedding.clone()));
    let logits = || logits.clone().expect("computed for the terms that use it");
    let terms: [(f64, &dyn Fn() -> Tensor<B, 1>); 5] = [
        (w.template_mse, &|| template_mse(embedding.clone(), teacher_embedding.clone())),
        (w.elastic_arc, &|| elastic_arc(embedding.clone(), student.arc_centres.val(), labels.clone(), margins.clone(), cfg.arc_scale)),
        (w.cross_entropy, &|| id_loss(logits(), labels.clone())),
        (w.soft_label, &|| soft_label(logits(), teacher_logits.clone(), cfg.temperature)),
        (w.triplet, &|| triplet(embedding.clone(), teacher_embedding.clone(), labels.clone(), cfg.triplet_margin)),
    ];
    let terms = terms.map(|(weight, term)| (weight, if weight > 0.0 { term() } else { Tensor::zeros([1], device) }));
    let loss = terms.iter().map(|(w, t)| t.clone() * *w).reduce(|a, b| a + b).expect("five terms");
    let cosine = (l2_normalize(embedding.clone()) * l2_normalize(teacher_embedding)).sum_dim(1).mean();
    let n = shown.len() as f64;
    let stats = Tensor::cat([loss.clone()].into_iter().chain(terms.into_iter().map(|(_, t)| t)).chain([cosine]).collect(), 0).detach() * n;
    (loss, stats)
}

fn split_views(pairs: Vec<(Prepared, Prepared)>) -> (Vec<Prepared>, Vec<Prepared>) {
    pairs.into_iter().unzip()
}

fn to_metrics(sums: Option<Tensor<impl Backend, 1>>, images: usize) -> Result<DistillMetrics> {
    let mut m = DistillMetrics::default();
    if let Some(s) = sums {
        let v = read_f64s(s).context("reading the step sums")?;
        m.values.iter_mut().zip(v).for_each(|(m, v)| *m = v / images.max(1) as f64);
    }
    Ok(m)
}

/// The loss terms on `refs`, unaugmented, each face masked or not as `cfg.seed` draws it (the
/// same faces every epoch), margins at their mean.
pub fn validate<B: Backend>(student: &Student<B>, teacher: &SegDistilledId<B>, refs: &[SampleRef], cfg: &DistillConfig, device: &B::Device) -> Result<DistillMetrics> {
    let (mut sums, mut images) = (None, 0);
    std::thread::scope(|scope| {
        let make = |items: &[&SampleRef], seed| prepare_views(items, Augment::NONE, cfg.mask_probability, seed);
        for pairs in batches(refs, (0..refs.len()).collect(), cfg.batch_size, cfg.seed, scope, make) {
            if pairs.is_empty() {
                continue;
            }
            let (bare, shown) = split_views(pairs);
            let margins = Tensor::full([shown.len(), 1], cfg.arc_margin, device);
            let (_, stats) = student_step(student, teacher_outputs(teacher, &bare, device), &shown, margins, cfg, device);
            accumulate(&mut sums, stats);
            images += shown.len();
        }
    });
    to_metrics(sums, images)
}

pub struct DistillReport {
    pub state: TrainState,
    pub last_val: DistillMetrics,
    pub train_images_per_second: f64,
}

/// Train (or resume) a student into `dir`, from the teacher run `cfg.teacher_run`.
pub fn distill<B: AutodiffBackend>(cfg: &DistillConfig, train_refs: &[SampleRef], val_refs: &[SampleRef], dir: &Path, device: &B::Device) -> Result<DistillReport> {
    let teacher_dir = Path::new(&cfg.teacher_run);
    let (_, init) = load_trained::<B>(teacher_dir, device).with_context(|| format!("loading the teacher run {}", teacher_dir.display()))?;
    let teacher = init.valid();
    let columns: Vec<String> = ["train", "val"].iter().flat_map(|split| STAT_NAMES.iter().map(move |n| format!("{split}_{n}"))).collect();
    let header = format!("epoch,{},seconds,train_img_per_s", columns.join(","));
    let fresh = |mut student: Student<B>| -> Result<Student<B>> {
        if cfg.weights().elastic_arc > 0.0 {
            student.arc_centres = Param::from_tensor(Tensor::from_inner(class_centres(&teacher, train_refs, cfg.batch_size, device)?));
        }
        Ok(student)
    };
    let run = start_or_resume(dir, cfg, Student::from_teacher(init), fresh, AdamConfig::new().init::<B, Student<B>>(), &header, device)?;
    let (mut student, mut optim, mut csv) = (run.model, run.optim, run.csv);
    let mut state: TrainState = run.state.unwrap_or_default();
    let (mut last_val, mut throughput, mut longest_epoch) = (DistillMetrics::default(), 0.0, 0.0f64);
    let run_started = Instant::now();
    while state.epochs_done < cfg.max_epochs && !over_budget(cfg.time_budget_minutes, run_started, longest_epoch) {
        let epoch = state.epochs_done + 1;
        let order = epoch_order(train_refs.len(), cfg.batch_size, cfg.steps_per_epoch, cfg.seed, epoch);
        let bar = progress(order.len(), &format!("epoch {epoch}"));
        let started = Instant::now();
        let mut margin_rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed ^ (epoch as u64) << 40);
        let (mut sums, mut images) = (None, 0);
        std::thread::scope(|scope| {
            let make = |items: &[&SampleRef], seed| prepare_views(items, cfg.augment, cfg.mask_probability, seed);
            for (k, pairs) in batches(train_refs, order, cfg.batch_size, cfg.seed ^ (epoch as u64) << 32, scope, make).into_iter().enumerate() {
                if pairs.is_empty() {
                    continue;
                }
                let (bare, shown) = split_views(pairs);
                let (embedding, logits) = teacher_outputs(&teacher, &bare, device);
                let margins = draw_margins(shown.len(), cfg.arc_margin, cfg.arc_margin_std, &mut margin_rng, device);
                let (loss, stats) = student_step(&student, (Tensor::from_inner(embedding), Tensor::from_inner(logits)), &shown, margins, cfg, device);
                let grads = GradientsParams::from_grads(loss.backward(), &student);
                student = optim.step(cfg.learning_rate, student.clone(), grads);
                accumulate(&mut sums, stats);
                images += shown.len();
                bar.inc(shown.len() as u64);
                if k % SYNC_EVERY == SYNC_EVERY - 1 {
                    let loss = sums.as_ref().map_or(0.0, |s: &Tensor<B, 1>| s.clone().narrow(0, 0, 1).into_scalar().elem::<f64>()) / images as f64;
                    bar.set_message(format!("loss {loss:.4}"));
                    log::debug!("step {}: mean loss {loss:.4}", k + 1);
                }
            }
        });
        bar.finish_and_clear();
        let train = to_metrics(sums, images)?;
        throughput = images as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let val = validate(&student.valid(), &teacher, val_refs, cfg, device)?;
        let row: Vec<String> = train.values.iter().chain(&val.values).map(|v| format!("{v:.5}")).collect();
        writeln!(csv, "{epoch},{},{:.1},{throughput:.2}", row.join(","), started.elapsed().as_secs_f64())?;
        csv.flush()?;
        log::info!("epoch {epoch}: train loss {:.4} | val loss {:.4}, cosine to teacher {:.3} | {throughput:.1} img/s", train.loss(), val.loss(), val.cosine_to_teacher());
        longest_epoch = longest_epoch.max(started.elapsed().as_secs_f64());
        let best = state.record(epoch, val.loss());
        save(dir, &student, &optim, &state, best)?;
        last_val = val;
    }
    Ok(DistillReport { state, last_val, train_images_per_second: throughput })
}

/// ElasticFace-Arc's starting class centres: each identity's mean unit-length teacher embedding
/// over `refs` (bare, unaugmented), normalised, as `[embedding, classes]`. The teacher learnt
/// its classes through a biased softmax layer, whose weights are no centres on the sphere; an
/// identity without images gets a zero centre (cosine 0 to everything).
fn class_centres<B: Backend>(teacher: &SegDistilledId<B>, refs: &[SampleRef], batch_size: usize, device: &B::Device) -> Result<Tensor<B, 2>> {
    let [dim, classes] = teacher.id_head.classify.weight.dims();
    let mut sums = vec![0.0f32; classes * dim];
    let bar = progress(refs.len(), "centres");
    std::thread::scope(|scope| -> Result<()> {
        let make = |items: &[&SampleRef], seed| prepare_refs(items, CropSpec::default(), Augment::NONE, seed);
        for items in batches(refs, (0..refs.len()).collect(), batch_size, 0, scope, make) {
            if items.is_empty() {
                continue;
            }
            let embeddings = l2_normalize(teacher.embed(images_tensor(&items, CropSpec::default().size as usize, device)));
            let values = embeddings.into_data().convert::<f32>().to_vec::<f32>().map_err(|e| anyhow::anyhow!("reading embeddings back: {e:?}"))?;
            for (item, row) in items.iter().zip(values.chunks(dim)) {
                let id = item.identity as usize;
                anyhow::ensure!(id < classes, "identity {id} of the teacher's split list is beyond its {classes} classes");
                sums[id * dim..(id + 1) * dim].iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            bar.inc(items.len() as u64);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let centres = Tensor::<B, 2>::from_data(TensorData::new(sums, [classes, dim]), device);
    Ok(l2_normalize(centres).transpose())
}

/// A trained student (config + best weights, else the last checkpoint) from its run directory.
pub fn load_student<B: Backend>(dir: &Path, device: &B::Device) -> Result<(DistillConfig, Student<B>)> {
    load_run(dir, |cfg: &DistillConfig| Student::from_teacher(cfg.model.clone().with_teacher(false).init(device)), device)
}
