//! Landmarks for real images, which come without them: the firmware's own detector (YuNet from
//! `../shared` until ours ships) runs once over a set and the result is cached as JSON lines.

use anyhow::{Context, Result};
use faceunlock::detect::{FaceDetector, YuNet};
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

/// Detect the most central confident face of each image. Returns the faces found and the
/// images where none was.
pub fn detect_all(detector_path: &Path, images: &[PathBuf], input_size: [u32; 2]) -> Result<(Vec<CachedFace>, Vec<PathBuf>)> {
    let bytes = std::fs::read(detector_path).with_context(|| format!("reading {}", detector_path.display()))?;
    let bar = indicatif::ProgressBar::new(images.len() as u64);
    let chunks: Vec<Result<(Vec<CachedFace>, Vec<PathBuf>)>> = images
        .par_chunks(64)
        .map(|chunk| {
            let mut det = YuNet::from_bytes(detector_path, &bytes, input_size)?;
            det.score_threshold = 0.5;
            let (mut found, mut missed) = (Vec::new(), Vec::new());
            for path in chunk {
                let img = image::open(path).with_context(|| format!("decoding {}", path.display()))?.to_rgb8();
                let centre = [img.width() as f32 / 2.0, img.height() as f32 / 2.0];
                let faces = det.detect(&img)?;
                // LFW centres the named person: prefer the confident face nearest the centre.
                let best = faces.iter().filter(|f| f.score >= 0.5).min_by(|a, b| {
                    let d = |f: &faceunlock::detect::Detection| {
                        let c = [f.face_box[0] + f.face_box[2] / 2.0, f.face_box[1] + f.face_box[3] / 2.0];
                        (c[0] - centre[0]).hypot(c[1] - centre[1])
                    };
                    d(a).total_cmp(&d(b))
                });
                match best {
                    Some(f) => found.push(CachedFace { image: path.clone(), landmarks: f.landmarks, face_box: f.face_box, score: f.score }),
                    None => missed.push(path.clone()),
                }
                bar.inc(1);
            }
            Ok((found, missed))
        })
        .collect();
    bar.finish_and_clear();
    let (mut found, mut missed) = (Vec::new(), Vec::new());
    for c in chunks {
        let (f, m) = c?;
        found.extend(f);
        missed.extend(m);
    }
    Ok((found, missed))
}

pub fn save(path: &Path, faces: &[CachedFace]) -> Result<()> {
    let mut text = String::new();
    for f in faces {
        text += &serde_json::to_string(f)?;
        text.push('\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    faceunlock_data::error::write_atomic(path, text.as_bytes())?;
    Ok(())
}

pub fn load(path: &Path) -> Result<HashMap<PathBuf, CachedFace>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the landmark cache {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let f: CachedFace = serde_json::from_str(l).with_context(|| format!("{}:{}: expected a cached face JSON object", path.display(), i + 1))?;
            Ok((f.image.clone(), f))
        })
        .collect()
}
