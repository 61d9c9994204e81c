//! The detector's subcommands (teacher labels, training, export, evaluation) and those of the
//! landmark refiner that follows it.

use crate::cli::{BACKEND, TrainBackend, provenance_table, shared};
use anyhow::{Context, Result, bail};
use clap::Args;
use faceunlock_data::lfw::Lfw;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;
use trainer::detector::data::{Augment, LabelledFace, LabelledImage, Source, load_labels, load_sources, save_labels, synth_labels};
use trainer::detector::eval::{DetectorScore, generated_sources, generated_turned, score};
use faceunlock_data::low_light::Darkening;
use trainer::detector::hard_sets::{crop_sources, darkened, relabelled_by, template_box};
use faceunlock_core::geometry::CropSpec;
use trainer::landmarks::DetectorFiles;
use trainer::refiner::export::refiner_file;
use trainer::refiner::model::RefinerConfig;
use trainer::refiner::training::RefinerTrainConfig;
use trainer::detector::export::score_shift;
use trainer::detector::training::{DetectorTrainConfig, load_trained, train};
use trainer::sources::{TEST_FOLDS, TRAIN_FOLDS};

const LABELS: &str = "cache/lfw-faces.jsonl";
/// Every LFW photo is 250×250: a 256×256 input sees it unscaled.
const LFW_INPUT: [u32; 2] = [256, 256];
/// The head turn (degrees, either side) of the evaluation's profile row.
const PROFILE_YAW: [f32; 2] = [60.0, 90.0];

#[derive(Args)]
pub struct LabelArgs {
    #[arg(long, default_value_os_t = shared("data/lfw"))]
    lfw: PathBuf,
    /// The teacher.
    #[arg(long, default_value_os_t = shared("models/yunet.onnx"))]
    teacher: PathBuf,
    #[arg(long, default_value = LABELS)]
    out: PathBuf,
}

/// Run the teacher once over every LFW photo (all ten folds) and keep every face it finds.
pub fn labels(a: LabelArgs) -> Result<()> {
    let lfw = Lfw::open(&a.lfw)?;
    let all_folds: Vec<usize> = TRAIN_FOLDS.iter().chain(&TEST_FOLDS).copied().collect();
    let images: Vec<PathBuf> = lfw.people_samples(&all_folds).0.into_iter().map(|r| r.image).collect();
    let started = Instant::now();
    let found = trainer::landmarks::detect_every(&DetectorFiles::open(&a.teacher, None)?, &images, LFW_INPUT, 0.5)?;
    let labels: Vec<LabelledImage> = images
        .into_iter()
        .zip(found)
        .map(|(image, d)| LabelledImage { image, faces: d.faces.iter().map(|f| LabelledFace { face_box: f.face_box, landmarks: f.landmarks, score: f.score }).collect() })
        .collect();
    save_labels(&a.out, &labels)?;
    let faces: usize = labels.iter().map(|l| l.faces.len()).sum();
    println!("{faces} faces in {} images in {:.0} s → {}", labels.len(), started.elapsed().as_secs_f64(), a.out.display());
    Ok(())
}

/// The labelled images of LFW people in `folds`.
fn lfw_labels(lfw_root: &std::path::Path, labels: &std::path::Path, folds: &[usize]) -> Result<Vec<LabelledImage>> {
    let lfw = Lfw::open(lfw_root)?;
    let wanted: HashSet<PathBuf> = lfw.people_samples(folds).0.into_iter().map(|r| r.image).collect();
    let all = load_labels(labels)?;
    let picked: Vec<LabelledImage> = all.into_iter().filter(|l| wanted.contains(&l.image)).collect();
    if picked.len() < wanted.len() {
        bail!("{}: labels for {} of the {} images of folds {folds:?}; run `faceunlock-train detector-labels`", labels.display(), picked.len(), wanted.len());
    }
    Ok(picked)
}

/// What the detector and the refiner train on, where, and how fast.
#[derive(Args)]
pub struct StepRunArgs {
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_os_t = shared("data/lfw"))]
    lfw: PathBuf,
    #[arg(long, default_value = LABELS)]
    labels: PathBuf,
    /// Generated sets (ground-truth faces).
    #[arg(long)]
    synth: Vec<PathBuf>,
    /// `faces-extra`: its people that are not held out join the training images as aligned
    /// crops with a replicated border (faces that fill the frame).
    #[arg(long)]
    extra: Option<PathBuf>,
    /// Label the `--extra` crops with this detector's faces (e.g. ../shared/models/yunet.onnx, on
    /// each padded crop at its own size) instead of the ArcFace template's points, so that they
    /// follow the same landmark convention as the LFW labels; crops it finds no face in are left
    /// out.
    #[arg(long, requires = "extra")]
    extra_teacher: Option<PathBuf>,
    /// Wall-clock budget: the schedule is shortened to fit it.
    #[arg(long)]
    max_minutes: Option<f64>,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
pub struct TrainDetectorArgs {
    #[command(flatten)]
    run: StepRunArgs,
    #[arg(long, default_value_t = 4000)]
    steps: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Square training input side (multiple of 32).
    #[arg(long, default_value_t = 128)]
    input: usize,
    /// Depthwise kernel size of the backbone blocks.
    #[arg(long, default_value_t = 5)]
    kernel: usize,
    /// Add a top-down pathway (coarser features added to finer levels, docs/detector.md run 4);
    /// without it, the shipped detector's architecture (run 2).
    #[arg(long)]
    top_down: bool,
    /// Start from this trained detector run's weights, or from a detector it exported (an
    /// `.onnx` file such as models/detector.onnx; same architecture), instead of random ones: a
    /// second schedule, e.g. at a lower --lr or on more data.
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// Share of training inputs darkened as night frames (gamma 1.5-3, sensor noise, half lit
    /// from one side).
    #[arg(long, default_value_t = 0.0)]
    low_light: f64,
    /// Share of training inputs made grey (monochrome or infrared cameras).
    #[arg(long, default_value_t = 0.0)]
    grey: f64,
    /// Weight of the landmark term of the loss (face-size-relative L1 of the 10 coordinates).
    #[arg(long, default_value_t = DetectorTrainConfig::new(trainer::detector::model::DetectorConfig::new()).kps_weight)]
    kps_weight: f64,
    /// Run this detector (YuNet's contract, e.g. ../shared/models/yunet.onnx) on every input made
    /// from an LFW photo and learn its outputs at every cell, instead of targets built from its
    /// detections (`docs/detector.md` run 6); generated images keep their ground truth.
    #[arg(long)]
    dense_teacher: Option<PathBuf>,
}

/// About every 20th identity (LFW person, generated person) is held out for validation, chosen
/// by an FNV-1a hash of its name (stable across toolchains).
fn split_by_person(images: Vec<LabelledImage>, person: impl Fn(&LabelledImage) -> String) -> (Vec<LabelledImage>, Vec<LabelledImage>) {
    let fnv = |s: &str| s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    images.into_iter().partition(|l| !fnv(&person(l)).is_multiple_of(20))
}

/// The replicated border given to a `faces-extra` crop for training, a fraction of its size on
/// each side: the face can be placed small in the input with real-looking surroundings.
const EXTRA_PAD: f32 = 0.5;

/// The training and validation images of the detector and the refiner, decoded: LFW folds 1-5
/// with the teacher's faces (≥ `min_score`), the generated sets with their ground truth, and
/// the trainable `faces-extra` crops (training only) when asked for.
fn training_sources(a: &StepRunArgs, min_score: f32) -> Result<(Vec<Source>, Vec<Source>)> {
    let started = Instant::now();
    let lfw = lfw_labels(&a.lfw, &a.labels, &TRAIN_FOLDS)?;
    let mut extra = Vec::new();
    if let Some(dir) = &a.extra {
        let spec = CropSpec::default();
        let face_box = template_box(&lfw, &spec).context("no teacher face in LFW folds 1-5 to place the box of an aligned crop")?;
        let images: Vec<PathBuf> = trainer::kd::data::extra_trainable(dir)?.into_iter().map(|r| r.image).collect();
        extra = crop_sources(&images.iter().map(PathBuf::as_path).collect::<Vec<_>>(), &spec, face_box, 1, EXTRA_PAD)?;
        if let Some(teacher) = &a.extra_teacher {
            let (relabelled, dropped) = relabelled_by(extra, &DetectorFiles::open(teacher, None)?, min_score)?;
            log::info!("{}: {} faces-extra crops relabelled, {dropped} without a face left out", teacher.display(), relabelled.len());
            extra = relabelled;
        }
    }
    let mut sets = decoded_split(lfw, min_score, true);
    sets.0.extend(extra);
    for dir in &a.synth {
        let (train, val) = decoded_split(synth_labels(dir).with_context(|| format!("loading generated set {}", dir.display()))?, min_score, false);
        sets.0.extend(train);
        sets.1.extend(val);
    }
    log::info!("backend {BACKEND}: {} training / {} validation images decoded in {:.0} s", sets.0.len(), sets.1.len(), started.elapsed().as_secs_f64());
    Ok(sets)
}

/// `images` split by person ([`split_by_person`]) and decoded.
fn decoded_split(images: Vec<LabelledImage>, min_score: f32, teacher_labelled: bool) -> (Vec<Source>, Vec<Source>) {
    // LFW files are `<person>/<person>_NNNN.jpg`, generated ones `images/pPPPP_vVVVVV.jpg`.
    let (train, val) = split_by_person(images, |l| {
        let name = l.image.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        name.rsplit_once(['_']).map_or(name, |(p, _)| p).to_string() + &l.image.parent().map(|p| p.display().to_string()).unwrap_or_default()
    });
    (load_sources(&train, min_score, teacher_labelled), load_sources(&val, min_score, teacher_labelled))
}

fn print_done(r: &trainer::steps::StepReport) {
    println!(
        "done: {} steps, best at step {} (val loss {:.4}); {:.1} train img/s",
        r.state.steps_done,
        r.state.best_step,
        r.state.best_val_loss.unwrap_or(f64::NAN),
        r.images_per_second
    );
}

pub fn train_detector(a: TrainDetectorArgs) -> Result<()> {
    if a.input == 0 || !a.input.is_multiple_of(32) {
        bail!("--input {}: expected a positive multiple of 32", a.input);
    }
    let cfg = DetectorTrainConfig::new(trainer::detector::model::DetectorConfig::new().with_kernel(a.kernel).with_top_down(Some(a.top_down)))
        .with_input([a.input, a.input])
        .with_batch_size(a.batch)
        .with_learning_rate(a.run.lr)
        .with_steps(a.steps)
        .with_time_budget_minutes(a.run.max_minutes)
        .with_seed(a.run.seed)
        .with_init_from(a.init_from.as_ref().map(|p| p.display().to_string()))
        .with_dense_teacher(a.dense_teacher.as_ref().map(|p| p.display().to_string()))
        .with_kps_weight(a.kps_weight)
        .with_augment(Augment { low_light: a.low_light, grey: a.grey, ..Augment::default() });
    for (flag, share) in [("--low-light", a.low_light), ("--grey", a.grey)] {
        if !(0.0..=1.0).contains(&share) {
            bail!("{flag} {share}: expected a share between 0 and 1");
        }
    }
    let (train_set, val_set) = training_sources(&a.run, cfg.min_teacher_score)?;
    print_done(&train::<TrainBackend>(&cfg, &train_set, &val_set, &a.run.out, &Default::default())?);
    Ok(())
}

#[derive(Args)]
pub struct TrainRefinerArgs {
    #[command(flatten)]
    run: StepRunArgs,
    #[arg(long, default_value_t = 20000)]
    steps: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Crop side (multiple of 16).
    #[arg(long, default_value_t = faceunlock_core::refine::REFINE_CROP as usize)]
    crop: usize,
}

pub fn train_refiner(a: TrainRefinerArgs) -> Result<()> {
    if a.crop == 0 || !a.crop.is_multiple_of(16) {
        bail!("--crop {}: expected a positive multiple of 16", a.crop);
    }
    let cfg = RefinerTrainConfig::new(RefinerConfig::new().with_crop(a.crop))
        .with_batch_size(a.batch)
        .with_learning_rate(a.run.lr)
        .with_steps(a.steps)
        .with_time_budget_minutes(a.run.max_minutes)
        .with_seed(a.run.seed);
    let (train_set, val_set) = training_sources(&a.run, cfg.min_teacher_score)?;
    print_done(&trainer::refiner::training::train::<TrainBackend>(&cfg, &train_set, &val_set, &a.run.out, &Default::default())?);
    Ok(())
}

#[derive(Args)]
pub struct ExportRefinerArgs {
    #[arg(long)]
    run: PathBuf,
    #[arg(long)]
    out: PathBuf,
}

pub fn export_refiner(a: ExportRefinerArgs) -> Result<()> {
    let (cfg, net) = trainer::refiner::training::load_trained::<burn::backend::Flex>(&a.run, &Default::default())?;
    crate::cli::write_model(&a.out, &trainer::refiner::export::export_refiner(&net, cfg.model.crop), net.trainable_parameters())
}

#[derive(Args)]
pub struct ExportDetectorArgs {
    #[arg(long)]
    run: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// The trained net's score threshold (tuned with `eval-detector --threshold` on folds 1-5)
    /// that the exported model's score maps onto the firmware's default threshold.
    #[arg(long, default_value_t = firmware_threshold())]
    threshold: f32,
}

/// The firmware's default detector score threshold.
fn firmware_threshold() -> f32 {
    faceunlock::config::DetectorConfig::default().score_threshold
}

pub fn export_detector(a: ExportDetectorArgs) -> Result<()> {
    let (_, net) = load_trained::<burn::backend::Flex>(&a.run, &Default::default())?;
    if !(a.threshold > 0.0 && a.threshold < 1.0) {
        bail!("--threshold {}: expected a probability strictly between 0 and 1", a.threshold);
    }
    let shift = score_shift(a.threshold, firmware_threshold());
    if shift != 0.0 {
        println!("score calibrated: the firmware's {} is the trained net's {} (logit shift {shift:+.4})", firmware_threshold(), a.threshold);
    }
    crate::cli::write_model(&a.out, &trainer::detector::export::export_detector(&net, shift), net.trainable_parameters())
}

#[derive(Args)]
pub struct EvalDetectorArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_os_t = shared("data/lfw"))]
    lfw: PathBuf,
    /// The teacher's faces on LFW (`detector-labels`).
    #[arg(long, default_value = LABELS)]
    labels: PathBuf,
    /// The teacher, scored on the generated set too when present.
    #[arg(long, default_value_os_t = shared("models/yunet.onnx"))]
    teacher: PathBuf,
    /// Detector input `width,height` for the LFW photos (250×250; default 256,256: unscaled).
    #[arg(long, value_delimiter = ',', default_values_t = LFW_INPUT)]
    input: Vec<u32>,
    /// Score threshold of the evaluated detector (default: the firmware's).
    #[arg(long, default_value_t = firmware_threshold())]
    threshold: f32,
    /// Teacher faces below this score are not counted as faces to find.
    #[arg(long, default_value_t = 0.6)]
    teacher_threshold: f32,
    /// LFW folds to score on (1-5 were trained on; tune there, report 6-10).
    #[arg(long, value_delimiter = ',', default_values_t = TEST_FOLDS.to_vec())]
    folds: Vec<usize>,
    /// Generated people (seed `--generated-seed`, never trained on) × 4 random views; 0 scores
    /// LFW only.
    #[arg(long, default_value_t = 150)]
    generated_people: u32,
    #[arg(long, default_value_t = 2000)]
    generated_seed: u64,
    /// `faces-extra`: the aligned crops of its held-out people (never trained on) are scored as
    /// frames, as they are and enlarged 2×: faces that fill the frame. Skipped when absent.
    #[arg(long, default_value_os_t = shared("data/faces-extra"))]
    extra: PathBuf,
    /// Score the detector alone, without the firmware's retry of frames without a face on the
    /// frame padded by a quarter of its size on each side.
    #[arg(long)]
    no_pad_retry: bool,
    /// The retry also looks again at frames with a face wider than this share of the frame's
    /// shorter side (default: the firmware's; above 1, never).
    #[arg(long, default_value_t = faceunlock::pad_retry::LARGE_FACE_FRACTION)]
    large_face_fraction: f32,
    /// A landmark refiner (`export-refiner`) to follow the detector with.
    #[arg(long)]
    refiner: Option<PathBuf>,
    /// Refiner passes, each cropping on the previous one's landmarks.
    #[arg(long, default_value_t = 1)]
    passes: u32,
    /// Record the model and these results as `[detector]` (and the refiner as `[refiner]`) of
    /// this manifest.
    #[arg(long)]
    manifest: Option<PathBuf>,
    #[arg(long = "provenance")]
    provenance: Vec<String>,
    /// `key=value` provenance of the refiner's manifest entry.
    #[arg(long = "refiner-provenance")]
    refiner_provenance: Vec<String>,
}

/// The firmware's default detector input `[width, height]`.
fn device_input() -> [u32; 2] {
    faceunlock::config::DetectorConfig::default().input_size
}

fn print_score(what: &str, s: &DetectorScore) {
    println!(
        "{what}: recall {:.4} ({} of {} faces in {} images), landmark NME mean {:.4} / median {:.4} of the inter-ocular distance, {} unmatched detections",
        s.recall, s.matched, s.reference_faces, s.images, s.mean_nme, s.median_nme, s.unmatched_detections
    );
    let bias = s.landmark_bias.map(|[x, y]| format!("({x:+.3}, {y:+.3})"));
    println!("  landmark bias (eye line, across; inter-ocular units) left eye, right eye, nose, mouth left, mouth right: {}", bias.join(" "));
    for sub in &s.subsets {
        println!("  {}: recall {:.4} ({} of {}), NME mean {:.4} / median {:.4}", sub.what, sub.recall, sub.matched, sub.reference_faces, sub.mean_nme, sub.median_nme);
    }
}

fn file_name(path: &std::path::Path) -> Result<String> {
    Ok(path.file_name().and_then(|n| n.to_str()).with_context(|| format!("{}: no file name", path.display()))?.to_string())
}

pub fn eval_detector(a: EvalDetectorArgs) -> Result<()> {
    let lfw_input: [u32; 2] = match a.input[..] {
        [w, h] if w > 0 && h > 0 && w.is_multiple_of(32) && h.is_multiple_of(32) => [w, h],
        _ => bail!("--input {:?}: expected width,height, both positive multiples of 32", a.input),
    };
    if a.manifest.is_some() && a.generated_people == 0 {
        bail!("--manifest with --generated-people 0: the manifest records the score on generated faces; evaluate at least one generated person");
    }
    if a.manifest.is_some() && lfw_input != LFW_INPUT {
        bail!("--manifest with --input {lfw_input:?}: the manifest records the score at the LFW input {LFW_INPUT:?}");
    }
    let refiner = a.refiner.as_deref().map(|p| refiner_file(p, a.passes)).transpose()?;
    let entry = refiner.as_ref().map(|r| r.entry.clone());
    let with_retry = |files: DetectorFiles| if a.no_pad_retry { files } else { files.with_pad_retry(faceunlock::config::DetectorConfig::default().min_face_px, a.large_face_fraction) };
    let detector = with_retry(DetectorFiles::open(&a.model, refiner)?);
    let teacher = a.teacher.exists().then(|| DetectorFiles::open(&a.teacher, None).map(with_retry)).transpose()?;
    match a.no_pad_retry {
        true => println!("pad retry: off"),
        false => println!("pad retry of frames without a face or with one wider than {} of the frame's shorter side: on", a.large_face_fraction),
    }
    let mut rows = Vec::new();
    let mut row = |what: String, sources: &[Source], size: [u32; 2], with_teacher: bool| -> Result<DetectorScore> {
        let ours = score(&detector, size, a.threshold, sources)?;
        print_score(&what, &ours);
        let theirs = match &teacher {
            Some(t) if with_teacher => Some(score(t, size, a.teacher_threshold, sources)?),
            _ => None,
        };
        if let Some(t) = &theirs {
            print_score("  the teacher on the same images", t);
        }
        rows.push((what, ours.clone(), theirs));
        Ok(ours)
    };
    let lfw = load_sources(&lfw_labels(&a.lfw, &a.labels, &a.folds)?, a.teacher_threshold, true);
    let lfw_score = row(format!("LFW folds {:?} vs the teacher", a.folds), &lfw, lfw_input, false)?;
    let night = Darkening::NIGHT;
    row(format!("the same photos darkened (gamma {}, noise σ {} levels)", night.gamma, night.noise), &darkened(&lfw, night, 27), lfw_input, true)?;
    drop(lfw);
    if a.extra.exists() {
        let spec = CropSpec::default();
        let calibration = lfw_labels(&a.lfw, &a.labels, &TRAIN_FOLDS)?;
        let face_box = template_box(&calibration, &spec).context("no teacher face in LFW folds 1-5 to place the box of an aligned crop")?;
        println!("the teacher's box on the {}-px template (median over LFW folds 1-5): {face_box:.1?}", spec.size);
        let held: Vec<PathBuf> = trainer::kd::data::extra_holdout(&a.extra)?.into_iter().map(|r| r.image).collect();
        let paths: Vec<&std::path::Path> = held.iter().map(PathBuf::as_path).collect();
        for zoom in [1, 2] {
            let crops = crop_sources(&paths, &spec, face_box, zoom, 0.0)?;
            row(format!("{} held-out faces-extra crops as {s}×{s} frames", crops.len(), s = spec.size * zoom), &crops, device_input(), true)?;
        }
    } else {
        println!("SKIPPED tight crops: {} not found", a.extra.display());
    }
    let generated = generated_sources(a.generated_seed, 0, a.generated_people, 4);
    let mut gen_score = DetectorScore::default();
    if !generated.is_empty() {
        gen_score = row("generated faces vs ground truth".into(), &generated, device_input(), true)?;
        let turned = generated_turned(a.generated_seed, 0, a.generated_people, 4, PROFILE_YAW);
        row(format!("generated heads at |yaw| {}-{}° vs ground truth", PROFILE_YAW[0], PROFILE_YAW[1]), &turned, device_input(), true)?;
    }
    println!("\n| | images | recall of the named/only face | NME mean / median | teacher: recall | NME mean / median |\n|---|---|---|---|---|---|");
    for (what, ours, theirs) in &rows {
        let named = |s: &DetectorScore| s.subsets.first().map(|n| format!("{:.2} % | {:.1} % / {:.1} %", 100.0 * n.recall, 100.0 * n.mean_nme, 100.0 * n.median_nme));
        let theirs = theirs.as_ref().and_then(named).unwrap_or_else(|| "(the reference) | ".into());
        println!("| {what} | {} | {} | {theirs} |", ours.images, named(ours).unwrap_or_default());
    }
    if let Some(path) = &a.manifest {
        use faceunlock_core::contract::{DetectorEntry, Manifest, RefinerEntry, TensorSpec, sha256_file};
        let mut manifest = if path.exists() { Manifest::load(path)? } else { Manifest::default() };
        let [w, h] = device_input();
        let mut prov = provenance_table(&a.provenance)?;
        let mut metrics = toml::Table::new();
        for (key, s) in [("lfw_test_folds_vs_teacher", &lfw_score), ("generated_vs_ground_truth", &gen_score)] {
            metrics.insert(key.into(), toml::Value::try_from(s)?);
        }
        let mut hard_rows = Vec::new();
        for (what, ours, _) in &rows {
            let mut t = toml::Table::new();
            t.insert("what".into(), toml::Value::String(what.clone()));
            t.insert("score".into(), toml::Value::try_from(ours)?);
            hard_rows.push(toml::Value::Table(t));
        }
        metrics.insert("rows".into(), toml::Value::Array(hard_rows));
        metrics.insert("pad_retry".into(), toml::Value::Boolean(!a.no_pad_retry));
        metrics.insert("score_threshold".into(), toml::Value::Float(a.threshold as f64));
        prov.insert("metrics".into(), toml::Value::Table(metrics));
        if let Some(entry) = entry {
            prov.insert("refined_by".into(), toml::Value::String(entry.file.clone()));
            manifest.refiner = Some(RefinerEntry { provenance: provenance_table(&a.refiner_provenance)?, ..entry });
        }
        manifest.detector = Some(DetectorEntry {
            file: file_name(&a.model)?,
            sha256: sha256_file(&a.model)?,
            input: TensorSpec { name: trainer::detector::export::INPUT_NAME.into(), shape: vec![1, 3, h as usize, w as usize] },
            provenance: prov,
        });
        faceunlock_data::error::write_atomic(path, toml::to_string_pretty(&manifest)?.as_bytes())?;
        println!("recorded in {}", path.display());
    }
    Ok(())
}
