//! One frame's stages at a board's settings, the workload `cargo xtask frame-cost` counts
//! instructions of under qemu (one thread). Two generated frames at the board camera's size (a
//! face at yaw 0°, then the same face turned 8°) go through every stage once, as the first two
//! frames of an attempt, to warm everything up and make each stage's input; then each stage runs
//! `N` more times on the second frame, in frame order. A marker (a `getppid` call, which the
//! counting plugin reports with its count so far) precedes each stage and follows the last, so one
//! run gives every stage: the count between its two markers, over `N`. The stages' names go to
//! stdout, one line, in that order.
//!
//! `frame_cost BOARD.toml MANIFEST N`; the stages are bench's (`capture`, the wait for the
//! camera, is not ours to count).

use anyhow::{Context, Result, bail, ensure};
use faceunlock::config::{CameraBackend, Config};
use faceunlock::embed::Embedder;
use faceunlock::liveness::Track;
use faceunlock::templates::Person;
use faceunlock_core::align::Aligner;
use faceunlock_core::contract::Manifest;
use faceunlock_core::geometry::CropSpec;
use faceunlock_data::synth::{Generator, View};
use image::RgbImage;
use std::hint::black_box;
use std::path::Path;

/// The stages this program runs (bench's, less `capture`).
const STAGES: [&str; 6] = ["decode", "detect", "align", "embed", "match", "liveness"];
/// People enrolled for the match stage, each with the board's templates per person.
const ENROLLED_PEOPLE: usize = 10;

/// A generated face at the camera's size (rendered as tall as the frame, centred), as the I420
/// bytes the board's camera helper writes.
fn camera_frame(width: u32, height: u32, yaw: f32) -> Vec<u8> {
    let g = Generator { size: height, ..Generator::new(11) };
    let face = g.render(&g.identity(0), &View::posed(yaw, 0.0, 0.0)).image;
    let mut frame = RgbImage::from_pixel(width, height, image::Rgb([96, 96, 96]));
    image::imageops::overlay(&mut frame, &face, i64::from((width - height) / 2), 0);
    rgb_to_i420(&frame)
}

/// BT.601 full-range RGB → I420 (chroma of each 2×2 block's top-left pixel).
fn rgb_to_i420(img: &RgbImage) -> Vec<u8> {
    let (w, h) = (img.width(), img.height());
    let yuv = |x: u32, y: u32| {
        let [r, g, b] = img.get_pixel(x, y).0.map(f32::from);
        let luma = 0.299 * r + 0.587 * g + 0.114 * b;
        [luma, 128.0 + 0.564 * (b - luma), 128.0 + 0.713 * (r - luma)].map(|v| v.round().clamp(0.0, 255.0) as u8)
    };
    let luma = (0..h).flat_map(|y| (0..w).map(move |x| yuv(x, y)[0]));
    let chroma = |k: usize| (0..h / 2).flat_map(move |y| (0..w / 2).map(move |x| yuv(2 * x, 2 * y)[k]));
    luma.chain(chroma(1)).chain(chroma(2)).collect()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, board, manifest, n] = args.as_slice() else { bail!("usage: frame_cost BOARD.toml MANIFEST N") };
    let text = std::fs::read_to_string(board).with_context(|| format!("reading {board}"))?;
    let cfg = Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{board}: {e}"))?;
    ensure!(matches!(cfg.camera.backend, CameraBackend::Rpicam | CameraBackend::Gstreamer), "{board}: camera backend {} — frame_cost models the I420 helpers (rpicam, gstreamer)", cfg.camera.backend);
    let n: usize = n.parse().with_context(|| format!("N `{n}`: expected a count"))?;
    let manifest_path = Path::new(manifest);
    let models = Manifest::load(manifest_path)?;
    let entry = models.embedder(manifest_path)?.clone();
    let mut embedder = Embedder::from_manifest(manifest_path.parent().unwrap_or(Path::new(".")), &entry)?;
    let mut detector = faceunlock::app::load_detector(&cfg, &models, manifest_path, None)?;
    let mut aligner = Aligner::new(CropSpec::arcface(embedder.crop_size()));
    let (width, height) = (cfg.camera.width, cfg.camera.height);
    let mut frame = RgbImage::new(width, height);
    let mut track = Track::default();
    let mut people: Vec<Person> = Vec::new();
    let frames = [camera_frame(width, height, 0.0), camera_frame(width, height, 8.0)];
    // The attempt's two frames through every stage (the second stays in `frame`, its face in
    // `face`, its crop in the aligner, its vector in `embedding`).
    let (mut face, mut embedding) = (None, Vec::new());
    for i420 in &frames {
        faceunlock::frame::i420_to_rgb(i420, &mut frame)?;
        face = detector.detect(&frame)?.iter().max_by(|a, b| a.area().total_cmp(&b.area())).copied();
        let found = face.context("no face detected in the generated frame")?;
        aligner.align(&frame, &found.landmarks)?;
        black_box(faceunlock::quality::measure(aligner.crop()));
        embedding = embedder.embed(aligner.crop())?.to_vec();
        if people.is_empty() {
            // A gallery of the board's size: this face among others (rotations of its vector).
            people = (0..ENROLLED_PEOPLE)
                .map(|p| Person { name: format!("person {p}"), templates: (0..cfg.decision.enroll_frames).map(|t| rotated(&embedding, p * 7 + t + 1)).collect(), enrolled_at: 0 })
                .collect();
        }
        black_box(faceunlock::decision::best_match(&people, &embedding));
        black_box(track.push(aligner.crop()));
    }
    let face = face.context("no face")?;
    println!("{}", STAGES.join(" "));
    for stage in STAGES {
        mark();
        for _ in 0..n {
            match stage {
                "decode" => faceunlock::frame::i420_to_rgb(black_box(&frames[1]), &mut frame)?,
                "detect" => {
                    black_box(detector.detect(&frame)?);
                }
                "align" => {
                    black_box(faceunlock::quality::measure(aligner.align(&frame, &face.landmarks)?));
                }
                "embed" => {
                    black_box(embedder.embed(aligner.crop())?);
                }
                "match" => {
                    black_box(faceunlock::decision::best_match(&people, black_box(&embedding)));
                }
                "liveness" => {
                    black_box(track.push(aligner.crop()));
                }
                _ => unreachable!("every stage is listed here"),
            }
        }
    }
    mark();
    Ok(())
}

/// The counting plugin's marker: a system call nothing else in this program makes.
fn mark() {
    black_box(std::os::unix::process::parent_id());
}

/// `v` with its elements rotated by `k`: a vector of the same length and spread.
fn rotated(v: &[f32], k: usize) -> Vec<f32> {
    let mut out = v.to_vec();
    out.rotate_left(k % v.len().max(1));
    out
}
