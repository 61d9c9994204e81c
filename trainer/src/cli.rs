//! The subcommands of `faceunlock-train`: argument structs and the thin glue to the library.

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use faceunlock_data::lfw::Lfw;
use faceunlock_data::lfw_parts::{LfwParts, Split};
use faceunlock_data::sheet::{self, ClassFrequency};
use faceunlock_data::synth::{Generator, writer::write_dataset};
use std::path::{Path, PathBuf};
use std::time::Instant;
use trainer::model::mobilenet::Depthwise;
use trainer::model::{ArcMargin, EncoderConfig, ModelConfig};
use trainer::sources::{Pool, TRAIN_FOLDS, TEST_FOLDS, save_list, split};
use trainer::training::{TrainConfig, load_trained, train as train_loop};

pub(crate) fn shared(rel: &str) -> PathBuf {
    faceunlock_data::shared_root().join(rel)
}

#[derive(Args)]
pub struct SynthArgs {
    #[arg(long, default_value_t = 67)]
    people: u32,
    #[arg(long, default_value_t = 180)]
    views: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
    /// Fraction of views with an occluder (mask, hand, cap).
    #[arg(long, default_value_t = 0.15)]
    occlusion: f64,
}

pub fn synth(a: SynthArgs) -> Result<()> {
    if a.people == 0 || a.views == 0 {
        bail!("--people and --views must be at least 1");
    }
    let generator = Generator { occlusion_rate: a.occlusion, ..Generator::new(a.seed) };
    let total = (a.people * a.views) as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}").expect("valid template"));
    let started = Instant::now();
    write_dataset(&generator, a.people, a.views, &a.out, &|n| bar.set_position(n as u64)).with_context(|| format!("writing {}", a.out.display()))?;
    bar.finish_and_clear();
    let s = started.elapsed().as_secs_f64();
    println!("wrote {total} images of {} people to {} in {s:.1} s ({:.1} img/s)", a.people, a.out.display(), total as f64 / s);
    Ok(())
}

pub fn sheets(seed: u64, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let g = Generator::new(seed);
    for (name, img) in [("synth_poses.png", sheet::pose_sheet(&g, 0)), ("synth_people.png", sheet::people_sheet(&g, 0)), ("synth_masks.png", sheet::mask_sheet(&g, 20))] {
        let path = out.join(name);
        img.save(&path).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

pub fn class_stats(seed: u64, images: u32) -> String {
    use rayon::prelude::*;
    let g = Generator::new(seed);
    let views = 20;
    let people = images.div_ceil(views);
    let masks: Vec<_> = (0..images).into_par_iter().map(|i| g.render(&g.identity(i / views), &g.view(i / views, i % views)).mask).collect();
    let mut freq = ClassFrequency::default();
    masks.iter().for_each(|m| freq.add(m));
    format!("{images} generated images ({people} people × up to {views} views, seed {seed})\n\n{}", freq.table())
}

#[derive(Args)]
pub struct MaskSheetArgs {
    #[arg(long, default_value = "cache/lfw-landmarks.jsonl")]
    landmarks: PathBuf,
    /// Photos on the sheet, spread evenly over the cache.
    #[arg(long, default_value_t = 12)]
    count: usize,
    /// Mask seed (as `eval --masks`).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
}

pub fn mask_sheet(a: MaskSheetArgs) -> Result<()> {
    use faceunlock_data::masks::{MaskStyle, draw_mask};
    let mut faces: Vec<_> = trainer::landmarks::load(&a.landmarks)?.into_values().collect();
    faces.sort_by(|x, y| x.image.cmp(&y.image));
    let step = (faces.len() / a.count.max(1)).max(1);
    let cells = faces
        .iter()
        .step_by(step)
        .take(a.count)
        .map(|f| {
            let bare = image::open(&f.image).with_context(|| format!("decoding {}", f.image.display()))?.to_rgb8();
            let mut masked = bare.clone();
            draw_mask(&mut masked, &f.landmarks, &MaskStyle::for_file(&f.image, a.seed)).with_context(|| format!("masking {}", f.image.display()))?;
            Ok((bare, masked))
        })
        .collect::<Result<Vec<(image::RgbImage, image::RgbImage)>>>()?;
    // One cell size for the sheet: the first photo's.
    let (w, h) = cells.first().map_or((1, 1), |c| c.0.dimensions());
    let fit = |img: image::RgbImage| if img.dimensions() == (w, h) { img } else { image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle) };
    let cells: Vec<_> = cells.into_iter().map(|(bare, masked)| (fit(bare), fit(masked))).collect();
    sheet::side_by_side(&cells, 4).save(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote {} ({} photos)", a.out.display(), cells.len());
    Ok(())
}

#[derive(Args)]
pub struct LandmarkArgs {
    #[arg(long, default_value_os_t = shared("data/lfw"))]
    lfw: PathBuf,
    #[arg(long, default_value_os_t = shared("data/lfw-parts"))]
    parts: PathBuf,
    #[arg(long, default_value_os_t = shared("models/yunet.onnx"))]
    detector: PathBuf,
    /// A landmark refiner (`export-refiner`) to follow the detector with.
    #[arg(long)]
    refiner: Option<PathBuf>,
    /// Refiner passes, each cropping on the previous one's landmarks.
    #[arg(long, default_value_t = 1)]
    passes: u32,
    #[arg(long, default_value = "cache/lfw-landmarks.jsonl")]
    out: PathBuf,
}

pub fn landmarks(a: LandmarkArgs) -> Result<()> {
    let lfw = Lfw::open(&a.lfw)?;
    let all_folds: Vec<usize> = TRAIN_FOLDS.iter().chain(&TEST_FOLDS).copied().collect();
    let mut images: Vec<PathBuf> = lfw.people_samples(&all_folds).0.into_iter().map(|r| r.image).collect();
    if a.parts.exists() {
        let parts = LfwParts::open(&a.parts)?;
        for split in [Split::Train, Split::Validation, Split::Test] {
            images.extend(parts.samples(split)?.0.into_iter().map(|r| r.image));
        }
    }
    let started = Instant::now();
    let refiner = a.refiner.as_deref().map(|p| trainer::refiner::export::refiner_file(p, a.passes)).transpose()?;
    let (found, missed) = trainer::landmarks::detect_all(&trainer::landmarks::DetectorFiles::open(&a.detector, refiner)?, &images, [256, 256])?;
    trainer::landmarks::save(&a.out, &found)?;
    println!(
        "{} of {} images have a face ({} without) in {:.0} s → {}",
        found.len(),
        images.len(),
        missed.len(),
        started.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct PackArgs {
    #[arg(long, default_value_os_t = shared("data/lfw"))]
    lfw: PathBuf,
    #[arg(long, default_value_os_t = shared("data/lfw-parts"))]
    parts: PathBuf,
    #[arg(long, default_value = "cache/lfw-landmarks.jsonl")]
    landmarks: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Side of the packed crops (the 128 crop's template fills the middle 75 %).
    #[arg(long, default_value_t = 160)]
    size: u32,
    #[arg(long, default_value_t = 85)]
    quality: u8,
}

/// Pack the training people of LFW (folds 1-5) and their part labels into compact crops.
pub fn pack(a: PackArgs) -> Result<()> {
    use rayon::prelude::*;
    let faces = trainer::landmarks::load(&a.landmarks)?;
    let mut pool = Pool::default();
    pool.add_lfw(&a.lfw, a.parts.exists().then_some(a.parts.as_path()), &faces)?;
    faceunlock_data::packed::create_dirs(&a.out)?;
    let records: Vec<_> = pool
        .samples
        .par_iter()
        .enumerate()
        .map(|(i, r)| {
            let sample = r.load()?;
            faceunlock_data::packed::write_record(&a.out, i, &sample, a.size, a.quality)
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    faceunlock_data::packed::write_index(&a.out, &records)?;
    println!(
        "packed {} samples of {} identities ({} without landmarks) into {} ({:.1} MB)",
        records.len(),
        pool.identities,
        pool.missing_landmarks,
        a.out.display(),
        faceunlock_data::packed::size_on_disk(&a.out) as f64 / 1e6
    );
    Ok(())
}

#[derive(Args)]
pub struct TrainArgs {
    /// Run directory (config, checkpoints, metrics.csv, splits); resumes if it has a state.
    #[arg(long)]
    out: PathBuf,
    /// Generated set(s) to train on.
    #[arg(long)]
    synth: Vec<PathBuf>,
    /// Packed sets (from `faceunlock-train pack`) to train on.
    #[arg(long)]
    packed: Vec<PathBuf>,
    /// LFW root; people of folds 1-5 are trained on.
    #[arg(long)]
    lfw: Option<PathBuf>,
    /// LFW Part Labels root (masks for folds 1-5 people).
    #[arg(long)]
    parts: Option<PathBuf>,
    /// Landmark cache from `faceunlock-train landmarks` (needed with --lfw).
    #[arg(long, default_value = "cache/lfw-landmarks.jsonl")]
    landmarks: PathBuf,
    #[arg(long, default_value_os_t = shared("models/mobilenet_v2_imagenet.safetensors"))]
    imagenet: PathBuf,
    /// Start from random weights instead of ImageNet.
    #[arg(long)]
    no_imagenet: bool,
    /// The ablation: no segmentation teacher.
    #[arg(long)]
    id_only: bool,
    /// Train identities with ArcFace's angular margin (radians, e.g. 0.3) instead of a softmax on
    /// ReLU outputs; the exported embedding then has no ReLU.
    #[arg(long)]
    arc_margin: Option<f64>,
    /// ArcFace's scale on the cosines (with --arc-margin).
    #[arg(long, default_value_t = 30.0, requires = "arc_margin")]
    arc_scale: f64,
    /// Start from this trained run's weights (same model shape) instead of ImageNet's: fine-tuning.
    #[arg(long)]
    init_from: Option<PathBuf>,
    #[arg(long, default_value_t = 125)]
    epochs: usize,
    #[arg(long, default_value_t = 20)]
    patience: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long)]
    steps_per_epoch: Option<usize>,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 1.0)]
    lambda_seg: f64,
    #[arg(long, default_value_t = 0.1)]
    lambda_id: f64,
    /// Stop before an epoch that would end past this many minutes.
    #[arg(long)]
    max_minutes: Option<f64>,
    /// How depthwise convs are computed (same numbers; the default is the faster one measured
    /// on this binary's backend, see docs/training.md).
    #[arg(long, value_enum, default_value_t = FAST_DEPTHWISE)]
    depthwise: Depthwise,
}

/// The Seg-Distilled-ID model (`id_only`: without the teacher, the ablation).
fn model_config(depthwise: Depthwise, identities: usize, id_only: bool) -> ModelConfig {
    ModelConfig::new(EncoderConfig::new().with_depthwise(depthwise), identities).with_teacher(!id_only)
}

pub fn train(a: TrainArgs) -> Result<()> {
    let mut pool = Pool::default();
    for dir in &a.synth {
        pool.add_synth(dir).with_context(|| format!("loading generated set {}", dir.display()))?;
    }
    for dir in &a.packed {
        pool.add_packed(dir).with_context(|| format!("loading packed set {}", dir.display()))?;
    }
    if let Some(lfw) = &a.lfw {
        let faces = trainer::landmarks::load(&a.landmarks)?;
        pool.add_lfw(lfw, a.parts.as_deref(), &faces)?;
    }
    if pool.samples.is_empty() {
        bail!("no training data: give --synth DIR and/or --lfw DIR");
    }
    let splits = split(std::mem::take(&mut pool.samples), 0.1, 0.1, a.seed);
    log::info!(
        "{} identities: {} train / {} val / {} closed-set test images ({} dropped without landmarks)",
        pool.identities,
        splits.train.len(),
        splits.val.len(),
        splits.test.len(),
        pool.missing_landmarks
    );
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    for (name, list) in [("train.jsonl", &splits.train), ("val.jsonl", &splits.val), ("test.jsonl", &splits.test)] {
        save_list(&a.out.join(name), list)?;
    }
    let arc = a.arc_margin.map(|margin| ArcMargin::new().with_margin(margin).with_scale(a.arc_scale));
    let cfg = TrainConfig::new(model_config(a.depthwise, pool.identities, a.id_only).with_arc(arc))
        .with_init_from(a.init_from.as_ref().map(|p| p.display().to_string()))
        .with_max_epochs(a.epochs)
        .with_patience(a.patience)
        .with_batch_size(a.batch)
        .with_steps_per_epoch(a.steps_per_epoch)
        .with_learning_rate(a.lr)
        .with_seed(a.seed)
        .with_lambda_seg(a.lambda_seg)
        .with_lambda_id(a.lambda_id)
        .with_time_budget_minutes(a.max_minutes)
        .with_imagenet((!a.no_imagenet && a.init_from.is_none()).then(|| a.imagenet.display().to_string()));
    run_backend(&cfg, &splits.train, &splits.val, &a.out)
}

#[derive(Args)]
pub struct BenchStepArgs {
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Identities of the ID classifier (LFW folds 1-5 + generated people is ≈ 3,000).
    #[arg(long, default_value_t = 3000)]
    identities: usize,
    #[arg(long)]
    id_only: bool,
    #[arg(long, value_enum, default_value_t = FAST_DEPTHWISE)]
    depthwise: Depthwise,
}

/// Training img/s of the model alone on this machine's backend (random batches, no data loading).
pub fn bench_step(a: BenchStepArgs) -> Result<()> {
    let cfg = TrainConfig::new(model_config(a.depthwise, a.identities, a.id_only)).with_batch_size(a.batch);
    let ips = trainer::training::bench_steps::<TrainBackend>(&cfg, a.steps, a.warmup, &Default::default())?;
    println!(
        "{BACKEND}: {} batch {}, depthwise {:?}: {ips:.1} train img/s ({} steps after {} warm-up)",
        if a.id_only { "ID-only" } else { "joint" },
        a.batch,
        a.depthwise,
        a.steps,
        a.warmup
    );
    Ok(())
}

/// The training backend this binary was built with.
#[cfg(not(any(feature = "cuda", feature = "ndarray", feature = "tch")))]
pub(crate) type TrainBackend = burn::backend::Autodiff<burn::backend::Flex>;
#[cfg(not(any(feature = "cuda", feature = "ndarray", feature = "tch")))]
pub(crate) const BACKEND: &str = "Burn flex (CPU)";
#[cfg(all(feature = "tch", not(feature = "cuda")))]
pub(crate) type TrainBackend = burn::backend::Autodiff<burn::backend::LibTorch>;
#[cfg(all(feature = "tch", not(feature = "cuda")))]
pub(crate) const BACKEND: &str = "Burn LibTorch (CPU)";
#[cfg(all(feature = "ndarray", not(any(feature = "cuda", feature = "tch"))))]
pub(crate) type TrainBackend = burn::backend::Autodiff<burn::backend::NdArray>;
#[cfg(all(feature = "ndarray", not(any(feature = "cuda", feature = "tch"))))]
pub(crate) const BACKEND: &str = "Burn ndarray (CPU)";
#[cfg(not(feature = "cuda"))]
pub(crate) const FAST_DEPTHWISE: Depthwise = Depthwise::Grouped;
#[cfg(feature = "cuda")]
pub(crate) const FAST_DEPTHWISE: Depthwise = Depthwise::Taps;
#[cfg(feature = "cuda")]
pub(crate) type TrainBackend = burn::backend::Autodiff<burn::backend::Cuda>;
#[cfg(feature = "cuda")]
pub(crate) const BACKEND: &str = "Burn CUDA (fusion, autotune)";

fn run_backend(cfg: &TrainConfig, train: &[faceunlock_data::sample::SampleRef], val: &[faceunlock_data::sample::SampleRef], out: &Path) -> Result<()> {
    log::info!("backend: {BACKEND}");
    report::<TrainBackend>(cfg, train, val, out, &Default::default())
}

fn report<B: AutodiffBackend>(cfg: &TrainConfig, train: &[faceunlock_data::sample::SampleRef], val: &[faceunlock_data::sample::SampleRef], out: &Path, device: &B::Device) -> Result<()> {
    let r = train_loop::<B>(cfg, train, val, out, device)?;
    println!(
        "done: {} epochs, best epoch {} (val loss {:.4}); last val id acc {:.3}, mIoU {:.3}; {:.1} train img/s",
        r.state.epochs_done,
        r.state.best_epoch,
        r.state.best_val_loss.unwrap_or(f64::NAN),
        r.last_val.id_accuracy,
        r.last_val.miou,
        r.train_images_per_second
    );
    Ok(())
}

#[derive(Args)]
pub struct ExportArgs {
    /// Training run directory.
    #[arg(long)]
    run: PathBuf,
    /// Where to write the ONNX file.
    #[arg(long)]
    out: PathBuf,
    /// A distillation run's snapshot instead of its best weights: `snapshots/step-N`.
    #[arg(long)]
    snapshot: Option<String>,
    /// A distillation run's embedding as trained, centred (without the teacher's mean `k·μ`
    /// folded back into the bias).
    #[arg(long)]
    centred: bool,
    /// Embed the crop and its mirror image and average them: twice the encoder's cost on the
    /// board (docs/distillation.md has what it bought).
    #[arg(long)]
    mirror_average: bool,
}

pub fn export(a: ExportArgs) -> Result<()> {
    type B = burn::backend::Flex;
    let device = Default::default();
    let views = if a.mirror_average { trainer::export::Views::CropAndMirror } else { trainer::export::Views::Crop };
    let export_onnx = |encoder: &trainer::model::Encoder<B>, id_head: &trainer::model::IdHead<B>| trainer::export::export_onnx_views(encoder, id_head, views);
    if trainer::kd::training::is_kd_run(&a.run) {
        let (cfg, model) = trainer::kd::training::load_kd_run::<B>(&a.run, a.snapshot.as_deref(), &device)?;
        let centring = cfg.model.centring.as_ref().with_context(|| format!("{}: the distillation run's config has no centring", a.run.display()))?;
        let head = if a.centred { model.id_head.clone() } else { centring.fold_into(model.id_head.clone()) };
        return write_model(&a.out, &export_onnx(&model.encoder, &head), model.shipped_parameters());
    }
    anyhow::ensure!(a.snapshot.is_none() && !a.centred, "--snapshot and --centred: {} is not a distillation run", a.run.display());
    if trainer::distill::is_student_run(&a.run) {
        let (_, student) = trainer::distill::training::load_student::<B>(&a.run, &device)?;
        return write_model(&a.out, &export_onnx(&student.encoder, &student.id_head), student.shipped_parameters());
    }
    let (_, model) = load_trained::<B>(&a.run, &device)?;
    write_model(&a.out, &export_onnx(&model.encoder, &model.id_head), model.shipped_parameters())
}

/// Write an exported model atomically and say what was written.
pub(crate) fn write_model(out: &Path, bytes: &[u8], parameters: usize) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    faceunlock_data::error::write_atomic(out, bytes)?;
    println!("wrote {} ({} bytes, sha256 {}, {parameters} parameters)", out.display(), bytes.len(), faceunlock_core::contract::sha256_hex(bytes));
    Ok(())
}

#[derive(Args)]
pub struct WhitenArgs {
    /// An exported embedder (`export`): its embedding layer's Gemm, with or without a ReLU after.
    #[arg(long)]
    model: PathBuf,
    /// Where to write the whitened embedder.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_os_t = shared("data/lfw"))]
    lfw: PathBuf,
    /// Landmarks to align the LFW faces with (`landmarks`).
    #[arg(long, default_value = "cache/lfw-landmarks.jsonl")]
    landmarks: PathBuf,
    /// Floor on each direction's variance, relative to the largest (chosen on LFW folds 1-5:
    /// fit on folds 1-3, TAR at FAR 1e-3 on folds 4-5).
    #[arg(long, default_value_t = 1e-3)]
    eps: f64,
}

/// Fit the whitening on the pre-activation embeddings of LFW folds 1-5 (the training people)
/// and write the embedder with it folded in.
pub fn whiten(a: WhitenArgs) -> Result<()> {
    use prost::Message;
    use trainer::whiten::{Whitening, fold_into_gemm, take_pre_activation};
    let bytes = std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let mut model = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).map_err(|e| anyhow::anyhow!("{}: not an ONNX model: {e}", a.model.display()))?;
    take_pre_activation(&mut model).with_context(|| format!("{}", a.model.display()))?;
    let pre = tempfile::Builder::new().suffix(".onnx").tempfile().context("creating a temporary file for the pre-activation model")?;
    std::fs::write(pre.path(), model.encode_to_vec()).with_context(|| format!("writing {}", pre.path().display()))?;
    let lfw = faceunlock_data::lfw::Lfw::open(&a.lfw)?;
    let images: Vec<PathBuf> = lfw.people_samples(&TRAIN_FOLDS).0.into_iter().map(|r| r.image).collect();
    let faces = trainer::landmarks::load(&a.landmarks)?;
    let started = Instant::now();
    // Raw outputs: the whitening is folded into the layer, before the firmware's L2 normalisation.
    let entry = trainer::export::embedder_entry("pre-activation.onnx", String::new());
    let embedded = trainer::eval::lfw::embed_images_raw(pre.path(), &entry, &images, &faces)?;
    // In the folds' image order, so that a rerun fits (and writes) the very same numbers.
    let embeddings: Vec<Vec<f32>> = images.iter().filter_map(|p| embedded.get(p).cloned()).collect();
    let whitening = Whitening::fit(&embeddings, a.eps)?;
    let e = &whitening.eigenvalues;
    println!(
        "fitted on {} of {} LFW folds 1-5 images in {:.0} s; covariance eigenvalues {:.3e} (largest) … {:.3e} (median) … {:.3e} (smallest), floor {:.3e}",
        embeddings.len(),
        images.len(),
        started.elapsed().as_secs_f64(),
        e[0],
        e[e.len() / 2],
        e[e.len() - 1],
        a.eps * e[0]
    );
    fold_into_gemm(&mut model, &whitening)?;
    let out = model.encode_to_vec();
    write_model(&a.out, &out, trainer::export::onnx_parameters(&out)? as usize)
}

#[derive(Args)]
pub struct EvalArgs {
    /// ONNX embedder (input `image` 1×3×128×128, output `embedding` 1×128).
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_os_t = shared("data/lfw"))]
    lfw: PathBuf,
    #[arg(long, default_value = "cache/lfw-landmarks.jsonl")]
    landmarks: PathBuf,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write `roc.png` and `det.png` (LFW folds 6-10 people, every pair) into this directory.
    #[arg(long)]
    curves: Option<PathBuf>,
    /// Record this model, its calibrated thresholds and metrics as `[embedder]` of this
    /// manifest (the model file must sit in the manifest's directory).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Provenance lines `key=value` to store with the manifest entry (command, hardware …).
    #[arg(long = "provenance")]
    provenance: Vec<String>,
    /// Training run directory: closed-set accuracy on its held-out split (`test.jsonl`), gallery
    /// from its training split (`train.jsonl`).
    #[arg(long)]
    run: Option<PathBuf>,
    /// Rewrite image path prefixes of the run's lists, `FROM=TO` (a run made on another machine).
    #[arg(long)]
    remap: Vec<String>,
    /// Generated people for the per-yaw-bin evaluation (0: skip it).
    #[arg(long, default_value_t = 100)]
    yaw_people: u32,
    /// Probes per person and 15° yaw bin.
    #[arg(long, default_value_t = 4)]
    yaw_probes: u32,
    /// Generator seed of the yaw people (training sets use other seeds).
    #[arg(long, default_value_t = 1000)]
    yaw_seed: u64,
    /// Calibrate the FAR thresholds on the held-out people of this faces-extra set (never
    /// trained on by a distilled student) instead of LFW folds 1-5 people (whom it trained on).
    #[arg(long)]
    calibrate_on_extra: Option<PathBuf>,
    /// Also run LFW with synthetic masks (seed choosing each image's mask): masked probe vs
    /// bare enrolment, and masked vs masked. With --manifest, the thresholds recorded are the
    /// strictest of the three protocols' (the target FAR holds with or without masks).
    #[arg(long)]
    masks: Option<u64>,
}

/// `key=value` lines as a TOML table of strings.
pub(crate) fn provenance_table(lines: &[String]) -> Result<toml::Table> {
    let mut prov = toml::Table::new();
    for kv in lines {
        let (k, v) = kv.split_once('=').with_context(|| format!("--provenance `{kv}`: expected key=value"))?;
        prov.insert(k.trim().into(), toml::Value::String(v.trim().into()));
    }
    Ok(prov)
}

/// The LFW lines of `eval` (accuracy, then the thresholds and TAR at FAR).
pub(crate) fn print_lfw_report(r: &trainer::eval::lfw::LfwReport) {
    println!(
        "LFW pairs folds 6-10, masks {:?}: accuracy {:.4} ± {:.4} at threshold {:.4} chosen on folds 1-5 (per fold {:?})",
        r.masking,
        r.mean_accuracy,
        r.std_accuracy,
        r.accuracy_threshold,
        r.fold_accuracy.iter().map(|a| format!("{a:.3}")).collect::<Vec<_>>()
    );
    println!(
        "  thresholds calibrated on {} (TAR there {:.4} / {:.4}): FAR 1e-3 → {:.4}, FAR 1e-4 → {:.4}; on folds 6-10 people: TAR {:.4} (FAR reached {:.1e}), TAR {:.4} (FAR reached {:.1e}); {} genuine / {} impostor pairs; {} images",
        r.calibrated_on, r.calibration_tar_far_1e3, r.calibration_tar_far_1e4, r.threshold_far_1e3, r.threshold_far_1e4, r.tar_far_1e3, r.test_far_at_1e3_threshold, r.tar_far_1e4, r.test_far_at_1e4_threshold, r.genuine_pairs, r.impostor_pairs, r.images
    );
}

/// Everything `eval` measured, as written by `--json`.
#[derive(serde::Serialize)]
struct EvalReport {
    lfw: trainer::eval::lfw::LfwReport,
    masked: Vec<trainer::eval::lfw::LfwReport>,
    closed_set: Option<trainer::eval::closed_set::ClosedSetReport>,
    yaw: Option<trainer::eval::yaw::YawReport>,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    use faceunlock_core::contract::{Manifest, Thresholds, sha256_file};
    let file = a.model.file_name().and_then(|n| n.to_str()).context("model path has no file name")?;
    let mut entry = trainer::export::embedder_entry(file, sha256_file(&a.model)?);
    let faces = trainer::landmarks::load(&a.landmarks)?;
    let started = Instant::now();
    use trainer::eval::lfw::{LfwReport, Masking};
    let mut protocols = vec![Masking::None];
    if let Some(seed) = a.masks {
        protocols.extend([Masking::Probe { seed }, Masking::Both { seed }]);
    }
    let held_refs = a.calibrate_on_extra.as_deref().map(trainer::kd::data::extra_holdout).transpose()?;
    let held_out = held_refs.as_deref().zip(a.calibrate_on_extra.as_deref()).map(|(refs, dir)| trainer::eval::lfw::HeldOut::extra(refs, dir));
    let mut reports = trainer::eval::lfw::lfw_open_set(&a.lfw, &a.model, &entry, &faces, &TRAIN_FOLDS, &TEST_FOLDS, &protocols, a.curves.as_deref(), held_out.as_ref())?;
    reports.iter().for_each(print_lfw_report);
    println!("LFW evaluation: {:.0} s", started.elapsed().as_secs_f64());
    let masked = reports.split_off(1);
    let r = reports.remove(0);
    let closed_set = match &a.run {
        Some(run) => {
            let remap = a
                .remap
                .iter()
                .map(|kv| kv.split_once('=').map(|(f, t)| (PathBuf::from(f), PathBuf::from(t))).with_context(|| format!("--remap `{kv}`: expected FROM=TO")))
                .collect::<Result<Vec<_>>>()?;
            use trainer::eval::closed_set::{closed_set, read_list};
            let c = closed_set(&a.model, &entry, &read_list(&run.join("train.jsonl"), &remap)?, &read_list(&run.join("test.jsonl"), &remap)?)?;
            println!("closed set ({}): accuracy {:.4} on {} probes over {} identities ({} gallery images, {} skipped)", run.display(), c.accuracy, c.probes, c.identities, c.gallery_images, c.skipped);
            Some(c)
        }
        None => None,
    };
    let yaw = if a.yaw_people > 0 {
        let y = trainer::eval::yaw::yaw_bins(&a.model, &entry, a.yaw_seed, a.yaw_people, a.yaw_probes, r.threshold_far_1e3)?;
        println!("yaw bins ({} generated people, seed {}; verification threshold {:.4}, device threshold {:.4}):", y.people, y.seed, y.threshold, y.accept_threshold);
        for b in &y.bins {
            println!("  |yaw| {:>2}-{:<2}: rank-1 {:.3}, verification {:.3}, TAR at device threshold {:.3} ({} probes)", b.yaw_from, b.yaw_to, b.rank1, b.verification_accuracy, b.tar_at_accept_threshold, b.probes);
        }
        Some(y)
    } else {
        None
    };
    if let Some(path) = &a.json {
        let report = EvalReport { lfw: r.clone(), masked: masked.clone(), closed_set: closed_set.clone(), yaw };
        std::fs::write(path, serde_json::to_vec_pretty(&report)?).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.manifest {
        let mut manifest = if path.exists() { Manifest::load(path)? } else { Manifest::default() };
        // With --masks, the strictest of the protocols' thresholds: the FAR holds whether the
        // faces wear masks or not.
        let strictest = |f: fn(&LfwReport) -> f32| std::iter::once(&r).chain(&masked).map(f).fold(f32::MIN, f32::max);
        entry.thresholds = Thresholds { far_1e3: strictest(|p| p.threshold_far_1e3), far_1e4: strictest(|p| p.threshold_far_1e4) };
        entry.parameters = trainer::export::onnx_parameters(&std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?)
            .with_context(|| format!("counting the weights of {}", a.model.display()))?;
        let mut prov = provenance_table(&a.provenance)?;
        let mut metrics = toml::Table::new();
        metrics.insert("lfw_folds_6_10_accuracy".into(), toml::Value::Float(r.mean_accuracy));
        metrics.insert("lfw_folds_6_10_accuracy_std".into(), toml::Value::Float(r.std_accuracy));
        metrics.insert("tar_at_far_1e3".into(), toml::Value::Float(r.tar_far_1e3));
        metrics.insert("tar_at_far_1e4".into(), toml::Value::Float(r.tar_far_1e4));
        if let Some(c) = &closed_set {
            metrics.insert("closed_set_accuracy".into(), toml::Value::Float(c.accuracy));
        }
        for m in &masked {
            let protocol = match m.masking {
                Masking::Probe { .. } => "masked_probe",
                Masking::Both { .. } => "masked_both",
                Masking::None => continue,
            };
            metrics.insert(format!("{protocol}_accuracy"), toml::Value::Float(m.mean_accuracy));
            metrics.insert(format!("{protocol}_tar_at_far_1e3"), toml::Value::Float(m.tar_far_1e3));
        }
        prov.insert("metrics".into(), toml::Value::Table(metrics));
        entry.provenance = prov;
        manifest.embedder = Some(entry);
        let text = toml::to_string_pretty(&manifest)?;
        faceunlock_data::error::write_atomic(path, text.as_bytes())?;
        println!("recorded in {}", path.display());
    }
    Ok(())
}
