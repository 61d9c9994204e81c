//! `faceunlock-train`: generate data, train, export, evaluate. See `--help` of each command.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod cli;
mod detector_cli;
mod distill_cli;
mod kd_cli;

#[derive(Parser)]
#[command(name = "faceunlock-train", version, about = "Seg-Distilled-ID trainer: data, training, export, evaluation")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic face set (images, 14-class masks, manifest).
    Synth(cli::SynthArgs),
    /// Write the generator's contact sheets (one person × 12 poses; 12 people frontal; 12
    /// people bare | masked).
    Sheets {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "docs")]
        out: PathBuf,
    },
    /// Print the class-frequency table of N generated images.
    ClassStats {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1000)]
        images: u32,
    },
    /// Draw synthetic masks on real photos of a landmark cache, as a contact sheet (bare |
    /// masked), to check their placement. LFW may not be redistributed: keep it out of the repo.
    MaskSheet(cli::MaskSheetArgs),
    /// Detect landmarks on LFW (and LFW Part Labels) once, into a cache file.
    Landmarks(cli::LandmarkArgs),
    /// Pack LFW folds 1-5 (+ part labels) into compact crops for upload to a training machine.
    Pack(cli::PackArgs),
    /// Train the joint model (or the ID-only ablation).
    Train(Box<cli::TrainArgs>),
    /// Distil an occlusion-robust student (MaskInv, triplet, soft-label, combined) from a
    /// trained run, on synthetic masks over the teacher's own training faces.
    Distill(distill_cli::DistillArgs),
    /// Distil a strong face teacher's templates into the Seg-Distilled-ID model (with the
    /// segmentation teacher; --kd-only for the ablation), in images seen, pausable and resumable.
    DistilTeacher(Box<kd_cli::DistilArgs>),
    /// Run a face teacher ONNX on its own chip of every image of a set (and its mirror) into
    /// `index.txt` + `teacher.safetensors` (the layout of ../shared/data/lfw-teacher).
    TeacherEmbed(kd_cli::TeacherEmbedArgs),
    /// Measure training img/s of the model alone on this binary's backend (random batches).
    BenchStep(cli::BenchStepArgs),
    /// Evaluate an ONNX embedder on LFW folds 6-10 (accuracy, TAR at FAR) and calibrate.
    Eval(cli::EvalArgs),
    /// `eval`'s LFW protocol on a teacher's stored templates (../shared/data/lfw-teacher): the
    /// ceiling of its students under the same protocol.
    EvalTemplates(kd_cli::EvalTemplatesArgs),
    /// Export a trained run's encoder + embedding layer to ONNX and record it in a manifest.
    Export(cli::ExportArgs),
    /// Take an exported embedder's embedding before its ReLU, whitened with statistics of the
    /// training people's faces (folded into the embedding layer; docs/ablation.md).
    Whiten(cli::WhitenArgs),
    /// Run the teacher detector (YuNet) over LFW once and keep every face it finds.
    DetectorLabels(detector_cli::LabelArgs),
    /// Train our face detector on the teacher's LFW faces and generated faces.
    TrainDetector(detector_cli::TrainDetectorArgs),
    /// Export a trained detector run to ONNX (YuNet's output contract).
    ExportDetector(detector_cli::ExportDetectorArgs),
    /// Score an ONNX detector (and its landmark refiner) against the teacher on LFW and against
    /// generated ground truth.
    EvalDetector(detector_cli::EvalDetectorArgs),
    /// Train the landmark refiner (the crop-level stage after the detector) on the detector's data.
    TrainRefiner(detector_cli::TrainRefinerArgs),
    /// Export a trained refiner run to ONNX.
    ExportRefiner(detector_cli::ExportRefinerArgs),
}

fn run() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Args::parse().command {
        Command::Synth(a) => cli::synth(a),
        Command::Sheets { seed, out } => cli::sheets(seed, &out),
        Command::ClassStats { seed, images } => {
            if images == 0 {
                bail!("--images must be at least 1");
            }
            print!("{}", cli::class_stats(seed, images));
            Ok(())
        }
        Command::MaskSheet(a) => cli::mask_sheet(a),
        Command::Landmarks(a) => cli::landmarks(a),
        Command::Pack(a) => cli::pack(a),
        Command::Train(a) => cli::train(*a),
        Command::Distill(a) => distill_cli::distill(a),
        Command::DistilTeacher(a) => kd_cli::distil_teacher(*a),
        Command::TeacherEmbed(a) => kd_cli::teacher_embed(a),
        Command::BenchStep(a) => cli::bench_step(a),
        Command::Eval(a) => cli::eval(a),
        Command::EvalTemplates(a) => kd_cli::eval_templates(a),
        Command::Export(a) => cli::export(a).context("export failed"),
        Command::Whiten(a) => cli::whiten(a).context("whitening failed"),
        Command::DetectorLabels(a) => detector_cli::labels(a),
        Command::TrainDetector(a) => detector_cli::train_detector(a),
        Command::ExportDetector(a) => detector_cli::export_detector(a).context("export failed"),
        Command::EvalDetector(a) => detector_cli::eval_detector(a),
        Command::TrainRefiner(a) => detector_cli::train_refiner(a),
        Command::ExportRefiner(a) => detector_cli::export_refiner(a).context("export failed"),
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
