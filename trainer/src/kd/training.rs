//! The distillation run: each step draws `batch_size` faces with templates (uniformly, with
//! replacement, from the step's seed: a resumed run sees exactly the faces it would have) and,
//! for the joint model, `seg_batch` generated faces. The loss is
//! `λkd·‖s − k(t − μ)‖² + λseg·CE(seg) + λid·ID + λgen·H(‖s − T_p‖)`: the student's embedding
//! against the centred template (the mirror image's template for a mirrored view; the bare
//! face's for a view wearing a synthetic mask, with the run's `mask_probability`), the
//! segmentation teacher's cross-entropy on the faces that have masks (the decoder runs on those
//! rows only: it costs as much as the encoder per image), optionally the identity loss of the ID
//! head, and optionally the generated people's identity term ([`super::generated_id`]: the
//! pseudo-Huber distance `H` to a template invented for each generated person).

use super::data::{KdData, KdFace};
use super::generated_id::{GeneratedIdConfig, TemplateSpace, person_templates, unused_directions};
use crate::checkpoint::load_run;
use crate::data::{Augment, PrepareError, Prepared, identities_tensor, images_tensor, mask_tensors, prepare_items, prepare_view, wearing_mask};
use crate::loss::{l2_normalize, seg_loss};
use crate::model::{Centring, ModelConfig, SegDistilledId};
use crate::steps::{Loss, StepPlan, StepReport, StepTask};
use crate::training::read_f64s;
use anyhow::{Context, Result};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::backend::AutodiffBackend;
use faceunlock_core::geometry::CropSpec;
use faceunlock_data::sample::SampleRef;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// The augmentation of distillation: the joint model's, plus landmark noise as large as our
/// detector's error (NME 11 % on LFW), so the student tolerates the crops the device makes.
pub const KD_AUGMENT: Augment = Augment { landmark_nme: 0.11, ..Augment::TRAIN };
/// Held-out faces validated at each checkpoint (the first of the held-out people's).
pub const VAL_FACES: usize = 320;

#[derive(Config, Debug)]
pub struct KdConfig {
    /// The Seg-Distilled-ID model with its [`Centring`] (`model.teacher`: the joint model; false:
    /// the KD-only ablation).
    pub model: ModelConfig,
    #[config(default = 10.0)]
    pub lambda_kd: f64,
    #[config(default = 1.0)]
    pub lambda_seg: f64,
    /// Weight of the ID head's loss (softmax, or ArcFace with `model.arc`); 0: none.
    #[config(default = 0.0)]
    pub lambda_id: f64,
    /// The generated people's identity term ([`super::generated_id`]);
    /// `None` (as in a config written before the term existed): none.
    pub generated_id: Option<GeneratedIdConfig>,
    /// The run this one continues (its weights, optimiser state and place in the schedule) with
    /// another loss, as `DIR at step N`; `None` for a run trained from its own start.
    pub continued_from: Option<String>,
    /// Train the encoder on its batch norms' running statistics, left as they are
    /// ([`crate::model::mobilenet::Encoder::freeze_statistics`]): for a run continued from
    /// one whose statistics have settled. `None` (as in a config written before the choice
    /// existed): no.
    pub frozen_statistics: Option<bool>,
    /// Fraction of the faces with templates that wear a synthetic mask, their target still the
    /// teacher's template of the bare face (MaskInv with the face teacher: the occlusion
    /// option). `None` (as in a config written before masks existed): none.
    pub mask_probability: Option<f64>,
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Faces with templates per step.
    #[config(default = 32)]
    pub batch_size: usize,
    /// Generated faces per step, for the segmentation teacher and the generated people's term.
    #[config(default = 8)]
    pub seg_batch: usize,
    /// Faces with templates the schedule is planned for (its cosine decay ends there).
    #[config(default = 400_000)]
    pub images: usize,
    #[config(default = 1)]
    pub seed: u64,
    #[config(default = "KD_AUGMENT")]
    pub augment: Augment,
    /// ImageNet MobileNetV2 safetensors to initialise the encoder from.
    pub imagenet: Option<String>,
}

impl KdConfig {
    /// Optimiser steps the schedule is planned for.
    pub fn steps(&self) -> usize {
        self.images.div_ceil(self.batch_size)
    }

    /// Generated faces per step: none for a KD-only run without the generated people's term.
    fn generated_per_step(&self) -> usize {
        if self.model.teacher || self.generated_id().is_some() { self.seg_batch } else { 0 }
    }

    /// The generated people's identity term, when it has a weight.
    fn generated_id(&self) -> Option<&GeneratedIdConfig> {
        self.generated_id.as_ref().filter(|g| g.weight > 0.0)
    }

    fn centring(&self) -> &Centring {
        self.model.centring.as_ref().expect("a distillation model has its centring (checked when the run starts)")
    }
}

/// Every template the run trains on: the image and mirror rows of its faces.
fn training_templates(data: &KdData) -> impl Iterator<Item = &[f32]> {
    data.train.iter().flat_map(|f| [data.template(f, false), data.template(f, true)])
}

/// The centring of every template the run trains on.
pub fn fit_centring(data: &KdData) -> Result<Centring> {
    let rows: Vec<&[f32]> = training_templates(data).collect();
    Centring::fit(&rows).context("centring the training faces' templates")
}

/// The centred targets of every template the run trains on, row after row.
fn training_targets(data: &KdData, centring: &Centring) -> Vec<f32> {
    let mut targets = Vec::with_capacity(data.train.len() * 2 * data.dim);
    training_templates(data).for_each(|t| centring.target_into(t, &mut targets));
    targets
}

/// The generated people's identity term at one step.
#[derive(Clone, Copy)]
struct TermAtStep<'a> {
    /// Their invented templates ([`person_templates`]), row after row.
    templates: &'a [f32],
    weight: f64,
}

/// A batch made on the host: the faces with templates first, then the generated ones.
pub struct HostBatch {
    faces: Vec<Prepared>,
    /// Centred targets of the first `with_targets` faces, row after row.
    targets: Vec<f32>,
    with_targets: usize,
    /// The generated faces' invented templates, row after row, when their identity term is on.
    generated_targets: Vec<f32>,
    /// The identity term's weight at this batch's step.
    generated_weight: f64,
}

/// How a batch's faces are seen.
#[derive(Clone, Copy)]
struct Viewing {
    augment: Augment,
    /// Fraction of the faces with templates that wear a synthetic mask.
    mask_probability: f64,
}

/// Prepare `faces` (each view's target follows its mirroring, and is the bare face's when the
/// view wears a mask) and `generated` (with their people's invented templates, when the
/// identity term is on).
fn host_batch(data: &KdData, cfg: &KdConfig, faces: &[&KdFace], generated: &[&SampleRef], term: Option<TermAtStep>, viewing: Viewing, seed: u64) -> HostBatch {
    let (spec, augment) = (CropSpec::default(), viewing.augment);
    let report = |failed: Vec<PrepareError>| failed.into_iter().for_each(|e| log::warn!("skipped: {e}"));
    let (views, failed) = prepare_items(faces, seed, |f| &f.sample, |face, sample, name, rng| {
        let masked = wearing_mask(sample, name, viewing.mask_probability, rng)?;
        let (prepared, mirrored) = prepare_view(masked.as_ref().unwrap_or(sample), name, spec, augment, rng)?;
        let mut target = Vec::with_capacity(data.dim);
        cfg.centring().target_into(data.template(face, mirrored), &mut target);
        Ok((prepared, target))
    });
    report(failed);
    let (mut prepared, targets): (Vec<Prepared>, Vec<Vec<f32>>) = views.into_iter().unzip();
    let with_targets = prepared.len();
    let (extra, failed) = crate::data::prepare_refs(generated, spec, augment, seed ^ 0x5e6);
    report(failed);
    let generated_targets = match term {
        Some(TermAtStep { templates, .. }) => extra.iter().flat_map(|f| &templates[f.identity as usize * data.dim..(f.identity as usize + 1) * data.dim]).copied().collect(),
        None => Vec::new(),
    };
    prepared.extend(extra);
    HostBatch { faces: prepared, targets: targets.concat(), with_targets, generated_targets, generated_weight: term.map_or(0.0, |t| t.weight) }
}

/// The loss of one batch: parts `[loss, kd, seg, id, cosine]` (`id` the sum of the identity
/// terms in use), the last the mean cosine between the student's shipped embedding and the
/// teacher's template.
fn batch_loss<B: Backend>(model: &SegDistilledId<B>, batch: HostBatch, cfg: &KdConfig, device: &B::Device) -> Loss<B> {
    let size = CropSpec::default().size as usize;
    let n = batch.with_targets;
    let dim = batch.targets.len() / n.max(1);
    let images = images_tensor(&batch.faces, size, device);
    let masked: Vec<usize> = (0..batch.faces.len()).filter(|i| batch.faces[*i].admissible.is_some()).collect();
    let zero = || Tensor::<B, 1>::zeros([1], device);
    let (top, seg) = match (&model.teacher, masked.is_empty()) {
        (Some(teacher), false) => {
            let features = model.encoder.forward(images);
            let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(masked.iter().map(|i| *i as i64).collect::<Vec<_>>(), [masked.len()]), device);
            let skips = features.skips.map(|s| s.select(0, rows.clone()));
            let logits = teacher.forward(skips, features.bottleneck.select(0, rows));
            let (admissible, labelled) = mask_tensors(masked.iter().map(|i| &batch.faces[*i]), size, device);
            (features.top, seg_loss(logits, admissible, labelled))
        }
        _ => (model.encoder.forward_top(images), zero()),
    };
    let all = model.id_head.embed(top);
    let generated = all.dims()[0] - n;
    let embedding = all.clone().narrow(0, 0, n);
    let targets = Tensor::<B, 2>::from_data(TensorData::new(batch.targets, [n, dim]), device);
    let kd = (embedding.clone() - targets.clone()).square().sum_dim(1).mean();
    let id = if cfg.lambda_id > 0.0 {
        let ids = identities_tensor::<B>(&batch.faces[..n], device);
        model.id_head.loss(embedding.clone(), model.id_head.logits(embedding.clone()), ids)
    } else {
        zero()
    };
    // The shipped embedding is s + k·μ (the export folds k·μ into the bias), the template k·t.
    let shift = Tensor::<B, 1>::from_floats(cfg.centring().shift().as_slice(), device).unsqueeze_dim::<2>(0);
    let generated_id = if batch.generated_targets.is_empty() || generated == 0 {
        zero()
    } else {
        let invented = Tensor::<B, 2>::from_data(TensorData::new(batch.generated_targets, [generated, dim]), device);
        pseudo_huber_distance((all.narrow(0, n, generated) - invented).square().sum_dim(1)).mean()
    };
    let cosine = (l2_normalize(embedding + shift.clone()) * l2_normalize(targets + shift)).sum_dim(1).mean();
    let total = kd.clone() * cfg.lambda_kd + seg.clone() * cfg.lambda_seg + id.clone() * cfg.lambda_id + generated_id.clone() * batch.generated_weight;
    // One `id` column for both identity terms keeps a continued run's metrics.csv one table
    // (a run has used one or the other so far).
    Loss { parts: Tensor::cat(vec![total.clone(), kd, seg, id + generated_id, cosine], 0).detach(), total }
}

/// `√(d² + 1) − 1` of squared distances `d²`: d²/2 near the target, d far from it, so a face
/// whose embedding sits far out (the student's generated faces start about 20 lengths out,
/// `docs/distillation.md`) pulls with a bounded gradient instead of one that grows with d.
fn pseudo_huber_distance<B: Backend>(squared: Tensor<B, 2>) -> Tensor<B, 2> {
    (squared + 1.0).sqrt() - 1.0
}

struct KdTask<'a> {
    cfg: &'a KdConfig,
    data: &'a KdData,
    /// The generated people's invented templates ([`person_templates`]), when their identity
    /// term is on.
    person_templates: Option<Vec<f32>>,
}

impl<B: AutodiffBackend> StepTask<B> for KdTask<'_> {
    type Model = SegDistilledId<B>;
    type Host = HostBatch;

    fn name(&self) -> &'static str {
        "distil"
    }

    fn parts(&self) -> &'static [&'static str] {
        &["loss", "kd", "seg", "id", "cosine"]
    }

    fn batch(&self, step: usize, seed: u64) -> HostBatch {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (train, generated) = (&self.data.train, &self.data.generated);
        // Faces and their augmentation are drawn first: the KD-only ablation sees exactly the
        // joint run's faces, step for step.
        let faces: Vec<&KdFace> = (0..self.cfg.batch_size).map(|_| &train[rng.random_range(0..train.len())]).collect();
        let augment_seed = rng.random();
        let extra = if generated.is_empty() { 0 } else { self.cfg.generated_per_step() };
        let generated: Vec<&SampleRef> = (0..extra).map(|_| &generated[rng.random_range(0..generated.len())]).collect();
        let term = self.person_templates.as_deref().zip(self.cfg.generated_id()).map(|(templates, term)| TermAtStep { templates, weight: term.weight_at(step) });
        let viewing = Viewing { augment: self.cfg.augment, mask_probability: self.cfg.mask_probability.unwrap_or(0.0) };
        host_batch(self.data, self.cfg, &faces, &generated, term, viewing, augment_seed)
    }

    fn loss(&self, model: &SegDistilledId<B>, batch: HostBatch, device: &B::Device) -> Loss<B> {
        batch_loss(model, batch, self.cfg, device)
    }

    /// The first [`VAL_FACES`] held-out faces, unaugmented and bare: KD loss and cosine to the
    /// teacher.
    fn validate(&self, model: &SegDistilledId<B::InnerBackend>) -> Result<Vec<f64>> {
        let device = &model.devices()[0];
        let faces: Vec<&KdFace> = self.data.holdout.iter().take(VAL_FACES).collect();
        let mut sums = [0.0; 5];
        for chunk in faces.chunks(self.cfg.batch_size) {
            let batch = host_batch(self.data, self.cfg, chunk, &[], None, Viewing { augment: Augment::NONE, mask_probability: 0.0 }, 0);
            let weight = batch.with_targets as f64 / faces.len() as f64;
            let parts = read_f64s(batch_loss(model, batch, self.cfg, device).parts)?;
            sums.iter_mut().zip(parts).for_each(|(s, p)| *s += p * weight);
        }
        Ok(sums.to_vec())
    }
}

/// What a run needs besides its config.
pub struct Pacing {
    /// Stop at the first checkpoint past this many minutes; the same command resumes.
    pub pause_after_minutes: Option<f64>,
    pub snapshot_every: Option<usize>,
    /// Steps between checkpoints ([`crate::steps::INTERVAL`]: every few minutes on a CPU).
    pub checkpoint_every: usize,
}

/// Distil (or resume distilling) into `dir`.
pub fn distil<B: AutodiffBackend>(cfg: &KdConfig, data: &KdData, pacing: &Pacing, dir: &Path, device: &B::Device) -> Result<StepReport> {
    anyhow::ensure!(!data.train.is_empty(), "no faces with templates to distil from");
    anyhow::ensure!(!data.holdout.is_empty(), "no held-out faces to validate on (give --extra: faces-extra people are held out)");
    anyhow::ensure!(cfg.model.centring.is_some(), "the model config has no centring of the teacher's templates");
    let plan = StepPlan {
        steps: cfg.steps(),
        time_budget_minutes: None,
        learning_rate: cfg.learning_rate,
        batch_size: cfg.batch_size,
        seed: cfg.seed,
        pause_after_minutes: pacing.pause_after_minutes,
        snapshot_every: pacing.snapshot_every,
        checkpoint_every: pacing.checkpoint_every,
    };
    let fresh = |mut model: SegDistilledId<B>| -> Result<SegDistilledId<B>> {
        if let Some(path) = &cfg.imagenet {
            model.encoder = crate::model::imagenet::load_imagenet(model.encoder, Path::new(path), device)?;
        }
        Ok(model)
    };
    // Seeded, so a run's starting weights (those ImageNet does not give) are its seed's.
    B::seed(device, cfg.seed);
    let term = cfg.generated_id();
    anyhow::ensure!(term.is_none() || data.generated_people > 0, "the generated people's identity term needs generated faces (--synth)");
    let person_templates = term.map(|term| {
        let within = (term.space == Some(TemplateSpace::TeacherNull)).then(|| unused_directions(&training_targets(data, cfg.centring()), data.dim));
        if let Some(basis) = &within {
            log::info!("the generated people's templates lie in the {} of {} directions the teacher's templates leave unused", basis.ncols(), data.dim);
        }
        person_templates(data.generated_people, data.dim, within.as_ref(), cfg.seed)
    });
    let mut model = cfg.model.init::<B>(device);
    if cfg.frozen_statistics == Some(true) {
        model.encoder = model.encoder.freeze_statistics();
    }
    crate::steps::run(&KdTask { cfg, data, person_templates }, &plan, cfg, model, fresh, dir, device)
}

/// A distillation run's config and model (best weights, else the last checkpoint), or the
/// weights of `snapshot` (a file stem under the run, e.g. `snapshots/step-1500`).
pub fn load_kd_run<B: Backend>(dir: &Path, snapshot: Option<&str>, device: &B::Device) -> Result<(KdConfig, SegDistilledId<B>)> {
    match snapshot {
        None => load_run(dir, |cfg: &KdConfig| cfg.model.init::<B>(device), device),
        Some(stem) => crate::checkpoint::load_run_weights(dir, stem, |cfg: &KdConfig| cfg.model.init::<B>(device), device),
    }
}

/// Whether `dir` holds a distillation run (its `config.json` is a [`KdConfig`]).
pub fn is_kd_run(dir: &Path) -> bool {
    KdConfig::load(dir.join(crate::checkpoint::CONFIG_FILE)).is_ok()
}
