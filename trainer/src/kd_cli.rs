//! `faceunlock-train distil-teacher` and `teacher-embed`: template distillation from a strong
//! face teacher (issue 26).

use crate::cli::{BACKEND, FAST_DEPTHWISE, TrainBackend, shared};
use anyhow::{Context, Result};
use burn::config::Config;
use clap::Args;
use faceunlock_core::geometry::CropSpec;
use std::path::{Path, PathBuf};
use std::time::Instant;
use trainer::kd::data::{KdData, KdSources, relative_to};
use trainer::kd::generated_id::{GeneratedIdConfig, RAMP_STEPS, TemplateSpace};
use trainer::kd::teacher::{Item, Teacher};
use trainer::kd::templates::Templates;
use trainer::kd::training::{KD_AUGMENT, KdConfig, Pacing, distil, fit_centring};
use trainer::model::mobilenet::Depthwise;
use trainer::model::{ArcMargin, EncoderConfig, ModelConfig};

#[derive(Args)]
pub struct DistilArgs {
    /// Run directory; a run already there resumes with the config it was started with (its
    /// schedule, data and weights), whatever the other flags say.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_os_t = shared("data/lfw"))]
    lfw: PathBuf,
    /// The teacher's templates of LFW (and the landmarks they were cut from).
    #[arg(long, default_value_os_t = shared("data/lfw-teacher"))]
    lfw_teacher: PathBuf,
    /// LFW Part Labels (hair/skin/background masks of folds 1-5 photos).
    #[arg(long, default_value_os_t = shared("data/lfw-parts"))]
    parts: PathBuf,
    /// Landmark cache holding the Part Labels photos (`faceunlock-train landmarks`).
    #[arg(long, default_value = "cache/lfw-landmarks.jsonl")]
    landmarks: PathBuf,
    /// Aligned faces with templates (`index.txt`, `teacher.safetensors`, `images/`); every 10th
    /// person is held out.
    #[arg(long, default_value_os_t = shared("data/faces-extra"))]
    extra: PathBuf,
    /// Generated sets for the segmentation teacher and the generated people's term (a KD-only
    /// run uses them for the term alone).
    #[arg(long)]
    synth: Vec<PathBuf>,
    /// No segmentation teacher (KD only): the ablation, and the shipped candidate since it
    /// scored higher on LFW at 51,200 and 76,800 faces (docs/ablation.md).
    #[arg(long)]
    kd_only: bool,
    /// Faces with templates the schedule is planned for.
    #[arg(long, default_value_t = 400_000)]
    images: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Generated faces per step for the segmentation teacher.
    #[arg(long, default_value_t = 8)]
    seg_batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 10.0)]
    lambda_kd: f64,
    #[arg(long, default_value_t = 1.0)]
    lambda_seg: f64,
    /// Weight of an identity loss on the embedding (0: none).
    #[arg(long, default_value_t = 0.0)]
    lambda_id: f64,
    /// The identity loss with ArcFace's angular margin (radians) instead of a softmax.
    #[arg(long)]
    arc_margin: Option<f64>,
    /// Weight of the generated people's identity term (each generated person's faces regress a
    /// template invented for them, in the directions the teacher's templates leave unused; the
    /// face teacher cannot tell them apart; 0: none). Weights of 1 and more broke the real
    /// faces' KD; 0.4 held (runs/kd-g04, docs/distillation.md). A continued run keeps its
    /// origin's term unless this is given (the new weight is ramped to from the origin's).
    #[arg(long)]
    generated_id: Option<f64>,
    /// Fraction of the faces with templates that wear a synthetic mask, still regressing the
    /// teacher's template of the bare face: the occlusion option (`embedder-masked.onnx`), as a
    /// run continued from the shipped one (docs/occlusion.md).
    #[arg(long)]
    mask_probability: Option<f64>,
    /// Continue this run (its weights, optimiser state and place in the schedule, copied into
    /// --out, the run itself left as it was) with the generated people's term, the masks and
    /// --frozen-statistics as the only changes.
    #[arg(long)]
    continue_from: Option<PathBuf>,
    /// Train the continued run's encoder on the batch-norm statistics it has reached, left as
    /// they are, so that training sees what inference sees (with the generated people's term it
    /// did not keep the run from breaking: docs/distillation.md).
    #[arg(long, requires = "continue_from")]
    frozen_statistics: bool,
    /// Landmark noise before alignment, as an NME (our detector's is 0.11 on LFW).
    #[arg(long, default_value_t = KD_AUGMENT.landmark_nme)]
    landmark_nme: f32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_os_t = shared("models/mobilenet_v2_imagenet.safetensors"))]
    imagenet: PathBuf,
    /// Stop at the first checkpoint (every 100 steps) past this many minutes; the same command
    /// resumes the schedule where it stopped.
    #[arg(long)]
    pause_after: Option<f64>,
    /// Keep the weights every this many steps (`snapshots/step-N`) for a learning curve.
    #[arg(long)]
    snapshot_every: Option<usize>,
    #[arg(long, value_enum, default_value_t = FAST_DEPTHWISE)]
    depthwise: Depthwise,
}

/// The generated people's identity term at `weight` (none at 0), ramping in from `from_step`.
fn generated_id_term(weight: f64, from_step: usize) -> Option<GeneratedIdConfig> {
    (weight > 0.0).then(|| GeneratedIdConfig::new(weight).with_from_step(Some(from_step)).with_ramp_steps(Some(RAMP_STEPS)).with_space(Some(TemplateSpace::TeacherNull)))
}

pub fn distil_teacher(a: DistilArgs) -> Result<()> {
    if let Some(p) = a.mask_probability {
        anyhow::ensure!((0.0..=1.0).contains(&p), "--mask-probability {p}: expected a fraction in [0, 1]");
    }
    let parts = a.parts.exists().then_some((a.parts.as_path(), a.landmarks.as_path()));
    let sources = KdSources { lfw: &a.lfw, lfw_teacher: &a.lfw_teacher, parts, extra: Some(&a.extra), synth: &a.synth };
    let data = KdData::load(&sources)?;
    let masked = data.train.iter().filter(|f| f.sample.mask.is_some()).count();
    log::info!(
        "{} faces with templates ({masked} with Part Labels masks) of {} people; {} held-out faces; {} generated faces",
        data.train.len(),
        data.identities,
        data.holdout.len(),
        data.generated.len()
    );
    let saved = a.out.join(trainer::checkpoint::CONFIG_FILE);
    let cfg = if let Some(from) = &a.continue_from {
        let from_config = from.join(trainer::checkpoint::CONFIG_FILE);
        let base = KdConfig::load(&from_config).with_context(|| format!("{}: expected the distillation run's config.json", from_config.display()))?;
        let state: trainer::steps::StepState = trainer::checkpoint::saved_state(from)?;
        let generated_id = match a.generated_id {
            Some(weight) => {
                let origin_weight = base.generated_id.as_ref().map(|g| g.weight_at(state.steps_done));
                generated_id_term(weight, state.steps_done).map(|term| term.with_ramp_from(origin_weight))
            }
            None => base.generated_id.clone(),
        };
        let mask_probability = a.mask_probability.or(base.mask_probability);
        let cfg = base
            .with_generated_id(generated_id)
            .with_mask_probability(mask_probability)
            .with_continued_from(Some(format!("{} at step {}", from.display(), state.steps_done)))
            .with_frozen_statistics(a.frozen_statistics.then_some(true));
        trainer::checkpoint::continue_run(from, &a.out, &cfg)?;
        log::info!(
            "{} continues {} after step {} with the generated people's identity term {:?}, masks on {:?} of the faces, frozen statistics: {}",
            a.out.display(),
            from.display(),
            state.steps_done,
            cfg.generated_id,
            cfg.mask_probability,
            a.frozen_statistics
        );
        cfg
    } else if a.out.join("state.json").exists() {
        let cfg = KdConfig::load(&saved).with_context(|| format!("{}: expected the distillation run's config.json", saved.display()))?;
        log::info!("resuming {} with its saved config ({} images planned)", a.out.display(), cfg.images);
        cfg
    } else {
        let encoder = EncoderConfig::new().with_depthwise(a.depthwise);
        let model = ModelConfig::new(encoder, data.identities)
            .with_teacher(!a.kd_only)
            .with_arc(a.arc_margin.map(|m| ArcMargin::new().with_margin(m)))
            .with_centring(Some(fit_centring(&data)?));
        KdConfig::new(model)
            .with_lambda_kd(a.lambda_kd)
            .with_lambda_seg(a.lambda_seg)
            .with_lambda_id(a.lambda_id)
            .with_generated_id(generated_id_term(a.generated_id.unwrap_or(0.0), 0))
            .with_mask_probability(a.mask_probability)
            .with_learning_rate(a.lr)
            .with_batch_size(a.batch)
            .with_seg_batch(a.seg_batch)
            .with_images(a.images)
            .with_seed(a.seed)
            .with_augment(trainer::data::Augment { landmark_nme: a.landmark_nme, ..KD_AUGMENT })
            .with_imagenet(Some(a.imagenet.display().to_string()))
    };
    anyhow::ensure!(!cfg.model.teacher || !data.generated.is_empty() || masked > 0, "the joint model needs faces with masks: give --synth DIR or LFW Part Labels");
    log::info!("backend: {BACKEND}; {} steps of {} faces planned", cfg.steps(), cfg.batch_size);
    let pacing = Pacing { pause_after_minutes: a.pause_after, snapshot_every: a.snapshot_every, checkpoint_every: trainer::steps::INTERVAL };
    let r = distil::<TrainBackend>(&cfg, &data, &pacing, &a.out, &Default::default())?;
    println!(
        "{}: step {} of {} ({} faces seen); best validation loss {:.4} at step {}; {:.1} train img/s",
        a.out.display(),
        r.state.steps_done,
        r.state.planned_steps,
        r.state.steps_done * cfg.batch_size,
        r.state.best_val_loss.unwrap_or(f64::NAN),
        r.state.best_step,
        r.images_per_second
    );
    Ok(())
}

#[derive(Args)]
pub struct TeacherEmbedArgs {
    /// The teacher ONNX (the dlib ResNet's contract).
    #[arg(long, default_value_os_t = shared("models/face-teacher.onnx"))]
    teacher: PathBuf,
    /// Root of the images; index lines are paths relative to it.
    #[arg(long)]
    root: PathBuf,
    /// Where the landmarks come from: `like:DIR` (the index and landmarks of another templates
    /// set, e.g. ../shared/data/lfw-teacher with --root ../shared/data/lfw/images),
    /// `cache:FILE` (a landmark cache from `faceunlock-train landmarks`, every image of it under
    /// the root), `synth` (the root is a generated set) or `aligned` (every .jpg/.png under the
    /// root is an aligned 128 crop).
    #[arg(long)]
    landmarks: String,
    /// Only the first N images (a check).
    #[arg(long)]
    limit: Option<usize>,
    /// Output directory: `index.txt` and `teacher.safetensors`.
    #[arg(long)]
    out: PathBuf,
}

/// The images to embed, from `--landmarks`.
fn teacher_items(root: &Path, source: &str) -> Result<Vec<Item>> {
    let item = |relative: String, landmarks| Item { relative, landmarks };
    Ok(match source.split_once(':') {
        Some(("like", dir)) => {
            let set = Templates::open(Path::new(dir))?;
            let marks = set.landmarks.with_context(|| format!("{dir}: no `landmarks` to embed its images by"))?;
            set.index.into_iter().zip(marks).map(|(r, m)| item(r, m)).collect()
        }
        Some(("cache", file)) => {
            let mut faces: Vec<_> = trainer::landmarks::load(Path::new(file))?.into_values().collect();
            faces.sort_by(|a, b| a.image.cmp(&b.image));
            faces.into_iter().map(|f| Ok(item(relative_to(&f.image, root)?, f.landmarks))).collect::<Result<_>>()?
        }
        None if source == "synth" => {
            let set = faceunlock_data::synth_set::SynthSet::open(root)?;
            set.records.iter().map(|r| item(r.image.clone(), faceunlock_core::geometry::Landmarks5(r.landmarks))).collect()
        }
        None if source == "aligned" => {
            let mut files = Vec::new();
            collect_images(root, &mut files)?;
            files.sort();
            files.into_iter().map(|f| Ok(item(relative_to(&f, root)?, CropSpec::default().template))).collect::<Result<_>>()?
        }
        _ => anyhow::bail!("--landmarks `{source}`: expected like:DIR, cache:FILE, synth or aligned"),
    })
}

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_images(&path, out)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")) {
            out.push(path);
        }
    }
    Ok(())
}

pub fn teacher_embed(a: TeacherEmbedArgs) -> Result<()> {
    let mut items = teacher_items(&a.root, &a.landmarks)?;
    items.truncate(a.limit.unwrap_or(usize::MAX));
    anyhow::ensure!(!items.is_empty(), "no images to embed under {}", a.root.display());
    let teacher = Teacher::open(&a.teacher)?;
    let bar = indicatif::ProgressBar::new(items.len() as u64);
    let started = Instant::now();
    let set = teacher.embed_set(&a.root, &items, |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    set.save(&a.out)?;
    println!("{} images (and mirrors) embedded by {} in {:.0} s → {}", set.len(), a.teacher.display(), started.elapsed().as_secs_f64(), a.out.display());
    Ok(())
}

#[derive(Args)]
pub struct EvalTemplatesArgs {
    /// The teacher's templates of LFW (`index.txt` relative to the LFW images).
    #[arg(long, default_value_os_t = shared("data/lfw-teacher"))]
    templates: PathBuf,
    #[arg(long, default_value_os_t = shared("data/lfw"))]
    lfw: PathBuf,
    /// Calibrate the FAR thresholds on the held-out people of this faces-extra set (its own
    /// templates), as `eval --calibrate-on-extra` does for a student.
    #[arg(long)]
    calibrate_on_extra: Option<PathBuf>,
    /// Write `roc.png` and `det.png` (LFW folds 6-10 people, every pair) into this directory.
    #[arg(long)]
    curves: Option<PathBuf>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Image path → the set's template of the image (not the mirror), for the images under `root`.
fn templates_by_image(set: &Templates, root: &Path) -> std::collections::HashMap<PathBuf, Vec<f32>> {
    set.index.iter().enumerate().map(|(row, rel)| (root.join(rel), set.template(row, false).to_vec())).collect()
}

/// `eval`'s LFW protocol on a teacher's stored templates: what its student is measured against.
pub fn eval_templates(a: EvalTemplatesArgs) -> Result<()> {
    use trainer::eval::lfw::{HeldOut, lfw_open_set_on};
    use trainer::sources::{TEST_FOLDS, TRAIN_FOLDS};
    let mut templates = templates_by_image(&Templates::open(&a.templates)?, &a.lfw.join("images"));
    let held_refs = match &a.calibrate_on_extra {
        Some(dir) => {
            templates.extend(templates_by_image(&Templates::open(dir)?, &dir.join("images")));
            Some(trainer::kd::data::extra_holdout(dir)?)
        }
        None => None,
    };
    let held_out = held_refs.as_deref().zip(a.calibrate_on_extra.as_deref()).map(|(refs, dir)| HeldOut::extra(refs, dir));
    let label = a.templates.display().to_string();
    let report = lfw_open_set_on(&a.lfw, &templates, &TRAIN_FOLDS, &TEST_FOLDS, a.curves.as_deref().map(|d| (d, label.as_str())), held_out.as_ref())?;
    anyhow::ensure!(report.images_without_landmarks == 0, "{}: {} LFW images of folds 1-10 have no template", a.templates.display(), report.images_without_landmarks);
    crate::cli::print_lfw_report(&report);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
