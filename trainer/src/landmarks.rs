//! Landmarks for real images, which come without them: the firmware's own detector (YuNet from
//! `../shared`, or ours with its landmark refiner) runs once over a set and the result is cached
//! as JSON lines.

use anyhow::{Context, Result};
use faceunlock::detect::{Detection, FaceDetector, YuNet};
use faceunlock::pad_retry::PadRetry;
use faceunlock::refine::{LandmarkRefiner, Refined};
use faceunlock_core::contract::RefinerEntry;
use faceunlock_core::geometry::Landmarks5;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedFace {
    pub image: PathBuf,
    pub landmarks: Landmarks5,
    pub face_box: [f32; 4],
    pub score: f32,
}

/// What the detector found in one image.
pub struct Detected {
    /// Faces of at least the minimum score, highest first.
    pub faces: Vec<Detection>,
    /// The image's `[width, height]`.
    pub size: [u32; 2],
}

/// A landmark refiner to follow a detector with: its ONNX file and its contract.
pub struct RefinerFile {
    pub path: PathBuf,
    pub entry: RefinerEntry,
}

/// A YuNet-contract detector file, optionally followed by a landmark refiner: read once, loaded
/// once per worker thread.
pub struct DetectorFiles {
    path: PathBuf,
    bytes: Vec<u8>,
    refiner: Option<(RefinerFile, Vec<u8>)>,
    /// Retry images as the firmware does ([`PadRetry`]): `(min_face_px, large_face_fraction)`.
    pad_retry: Option<(f32, f32)>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

impl DetectorFiles {
    pub fn open(path: &Path, refiner: Option<RefinerFile>) -> Result<Self> {
        let refiner = match refiner {
            Some(r) => {
                let bytes = read(&r.path)?;
                Some((r, bytes))
            }
            None => None,
        };
        Ok(Self { path: path.into(), bytes: read(path)?, refiner, pad_retry: None })
    }

    /// Retry each image without a face at least `min_face_px` wide, or with one wider than
    /// `large_face_fraction` of its shorter side, once, padded by a quarter of its size on each
    /// side, as the firmware does.
    pub fn with_pad_retry(self, min_face_px: f32, large_face_fraction: f32) -> Self {
        Self { pad_retry: Some((min_face_px, large_face_fraction)), ..self }
    }

    /// A detector for input `size` keeping faces of at least `score_threshold`.
    pub fn load(&self, size: [u32; 2], score_threshold: f32) -> Result<Box<dyn FaceDetector>> {
        let mut yunet = YuNet::from_bytes(&self.path, &self.bytes, size)?;
        yunet.score_threshold = score_threshold;
        let det: Box<dyn FaceDetector> = match &self.refiner {
            Some((r, bytes)) => Box::new(Refined::new(yunet, LandmarkRefiner::from_bytes(&r.path, bytes, &r.entry)?)),
            None => Box::new(yunet),
        };
        Ok(match self.pad_retry {
            Some((min_face_px, large_face_fraction)) => {
                let mut retry = PadRetry::new(det, min_face_px);
                retry.large_face_fraction = large_face_fraction;
                Box::new(retry)
            }
            None => det,
        })
    }
}

/// Every face of at least `min_score` in each image, in input order.
pub fn detect_every(detector: &DetectorFiles, images: &[PathBuf], input_size: [u32; 2], min_score: f32) -> Result<Vec<Detected>> {
    let bar = indicatif::ProgressBar::new(images.len() as u64);
    let chunks: Vec<Result<Vec<Detected>>> = images
        .par_chunks(64)
        .map(|chunk| {
            let mut det = detector.load(input_size, min_score)?;
            chunk
                .iter()
                .map(|path| {
                    let img = image::open(path).with_context(|| format!("decoding {}", path.display()))?.to_rgb8();
                    bar.inc(1);
                    Ok(Detected { faces: det.detect(&img)?.to_vec(), size: [img.width(), img.height()] })
                })
                .collect()
        })
        .collect();
    bar.finish_and_clear();
    let mut all = Vec::with_capacity(images.len());
    for c in chunks {
        all.extend(c?);
    }
    Ok(all)
}

/// Detect the most central confident face of each image. Returns the faces found and the
/// images where none was.
pub fn detect_all(detector: &DetectorFiles, images: &[PathBuf], input_size: [u32; 2]) -> Result<(Vec<CachedFace>, Vec<PathBuf>)> {
    let (mut found, mut missed) = (Vec::new(), Vec::new());
    for (path, d) in images.iter().zip(detect_every(detector, images, input_size, 0.5)?) {
        let img_centre = [d.size[0] as f32 / 2.0, d.size[1] as f32 / 2.0];
        // LFW centres the named person: prefer the confident face nearest the centre.
        match d.faces.iter().min_by(|a, b| centre_distance(a, img_centre).total_cmp(&centre_distance(b, img_centre))) {
            Some(f) => found.push(CachedFace { image: path.clone(), landmarks: f.landmarks, face_box: f.face_box, score: f.score }),
            None => missed.push(path.clone()),
        }
    }
    Ok((found, missed))
}

/// Distance from a detection's box centre to `point`.
fn centre_distance(f: &Detection, point: [f32; 2]) -> f32 {
    let c = [f.face_box[0] + f.face_box[2] / 2.0, f.face_box[1] + f.face_box[3] / 2.0];
    (c[0] - point[0]).hypot(c[1] - point[1])
}

pub fn save(path: &Path, faces: &[CachedFace]) -> Result<()> {
    save_jsonl(path, faces)
}

pub fn load(path: &Path) -> Result<HashMap<PathBuf, CachedFace>> {
    let faces: Vec<CachedFace> = load_jsonl(path, "cached face")?;
    Ok(faces.into_iter().map(|f| (f.image.clone(), f)).collect())
}

/// One JSON object per line, written atomically (parent directories created).
pub fn save_jsonl<T: Serialize>(path: &Path, items: &[T]) -> Result<()> {
    let mut text = String::new();
    for item in items {
        text += &serde_json::to_string(item)?;
        text.push('\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    faceunlock_data::error::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// The objects of a JSON-lines file; errors name the file, the line and the `what` expected.
pub fn load_jsonl<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}: expected a {what} JSON object", path.display(), i + 1)))
        .collect()
}
