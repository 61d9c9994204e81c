//! Evaluation of any ONNX embedder through tract (the firmware's own embedder and aligner):
//! LFW open-set verification on `pairs.txt` folds 6-10 with per-fold thresholds, TAR at fixed
//! FAR over every cross-person pair of those people, and the thresholds that reach each FAR.

use crate::landmarks::CachedFace;
use anyhow::{Context, Result};
use faceunlock::embed::{Embedder, cosine};
use faceunlock_core::align::Aligner;
use faceunlock_core::contract::EmbedderEntry;
use faceunlock_core::geometry::CropSpec;
use faceunlock_data::lfw::{ImageId, Lfw};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize)]
pub struct LfwReport {
    /// Accuracy per test fold at the threshold chosen on the calibration folds' pairs.
    pub fold_accuracy: Vec<f64>,
    pub accuracy_threshold: f32,
    pub mean_accuracy: f64,
    pub std_accuracy: f64,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// Thresholds reaching FAR 1e-3 / 1e-4 on the calibration people's impostor pairs.
    pub threshold_far_1e3: f32,
    pub threshold_far_1e4: f32,
    /// On the test people at those thresholds: TAR and the FAR actually reached.
    pub tar_far_1e3: f64,
    pub tar_far_1e4: f64,
    pub test_far_at_1e3_threshold: f64,
    pub test_far_at_1e4_threshold: f64,
    pub images: usize,
    pub images_without_landmarks: usize,
}

/// Embed images (aligned with cached landmarks) in parallel, one embedder per worker.
pub fn embed_images(onnx: &Path, entry: &EmbedderEntry, images: &[PathBuf], faces: &HashMap<PathBuf, CachedFace>) -> Result<HashMap<PathBuf, Vec<f32>>> {
    let bytes = std::fs::read(onnx).with_context(|| format!("reading {}", onnx.display()))?;
    let chunks: Vec<Result<Vec<(PathBuf, Vec<f32>)>>> = images
        .par_chunks(128)
        .map(|chunk| {
            let mut embedder = Embedder::from_bytes(onnx, &bytes, entry)?;
            let mut aligner = Aligner::new(CropSpec::arcface(entry.crop_size));
            let mut out = Vec::new();
            for path in chunk {
                let Some(face) = faces.get(path) else { continue };
                let img = image::open(path).with_context(|| format!("decoding {}", path.display()))?.to_rgb8();
                let crop = aligner.align(&img, &face.landmarks)?;
                out.push((path.clone(), embedder.embed(crop)?.to_vec()));
            }
            Ok(out)
        })
        .collect();
    let mut all = HashMap::new();
    for c in chunks {
        all.extend(c?);
    }
    Ok(all)
}

/// Accuracy of `threshold` on scored pairs `(score, same)`.
fn accuracy(pairs: &[(f32, bool)], threshold: f32) -> f64 {
    pairs.iter().filter(|(s, same)| (*s >= threshold) == *same).count() as f64 / pairs.len().max(1) as f64
}

/// The threshold maximising accuracy on `pairs` (candidates: midpoints of sorted scores).
pub fn best_threshold(pairs: &[(f32, bool)]) -> f32 {
    let mut scores: Vec<f32> = pairs.iter().map(|p| p.0).collect();
    scores.sort_by(f32::total_cmp);
    let candidates = scores.windows(2).map(|w| (w[0] + w[1]) / 2.0);
    candidates.max_by(|a, b| accuracy(pairs, *a).total_cmp(&accuracy(pairs, *b))).unwrap_or(0.5)
}

/// The smallest threshold whose false-accept rate on `impostors` is at most `far`.
pub fn threshold_at_far(impostors: &mut [f32], far: f64) -> f32 {
    impostors.sort_by(|a, b| b.total_cmp(a));
    let allowed = (far * impostors.len() as f64).floor() as usize;
    impostors.get(allowed).map_or(1.0, |s| s.next_up())
}

/// Genuine and impostor scores over every pair of embedded images of `refs`.
fn all_pair_scores(items: &[(u32, &Vec<f32>)]) -> (Vec<f32>, Vec<f32>) {
    let per_row: Vec<(Vec<f32>, Vec<f32>)> = (0..items.len())
        .into_par_iter()
        .map(|i| {
            let (mut g, mut im) = (Vec::new(), Vec::new());
            for j in i + 1..items.len() {
                let s = cosine(items[i].1, items[j].1);
                if items[i].0 == items[j].0 { g.push(s) } else { im.push(s) }
            }
            (g, im)
        })
        .collect();
    per_row.into_iter().fold((Vec::new(), Vec::new()), |(mut g, mut im), (a, b)| {
        g.extend(a);
        im.extend(b);
        (g, im)
    })
}

fn rate_at_or_above(scores: &[f32], t: f32) -> f64 {
    scores.iter().filter(|s| **s >= t).count() as f64 / scores.len().max(1) as f64
}

/// Calibrate on the people and pairs of `calibration` folds, measure on `test` folds.
pub fn lfw_open_set(lfw_root: &Path, onnx: &Path, entry: &EmbedderEntry, faces: &HashMap<PathBuf, CachedFace>, calibration: &[usize], test: &[usize]) -> Result<LfwReport> {
    let lfw = Lfw::open(lfw_root)?;
    let (cal_refs, _) = lfw.people_samples(calibration);
    let (test_refs, _) = lfw.people_samples(test);
    let images: Vec<PathBuf> = cal_refs.iter().chain(&test_refs).map(|r| r.image.clone()).collect();
    let emb = embed_images(onnx, entry, &images, faces)?;
    let score = |a: &ImageId, b: &ImageId| -> Option<f32> { Some(cosine(emb.get(&lfw.image_path(a))?, emb.get(&lfw.image_path(b))?)) };
    let scored = |f: &usize| -> Vec<(f32, bool)> { lfw.pairs(*f).iter().filter_map(|p| Some((score(&p.a, &p.b)?, p.same))).collect() };
    let cal_pairs: Vec<(f32, bool)> = calibration.iter().flat_map(scored).collect();
    let accuracy_threshold = best_threshold(&cal_pairs);
    let fold_accuracy: Vec<f64> = test.iter().map(|f| accuracy(&scored(f), accuracy_threshold)).collect();
    let mean = fold_accuracy.iter().sum::<f64>() / fold_accuracy.len().max(1) as f64;
    let std = (fold_accuracy.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / fold_accuracy.len().max(1) as f64).sqrt();
    let items = |refs: &[faceunlock_data::sample::SampleRef]| -> Vec<(u32, &Vec<f32>)> { refs.iter().filter_map(|r| Some((r.identity, emb.get(&r.image)?))).collect() };
    let (_, mut cal_impostor) = all_pair_scores(&items(&cal_refs));
    let t3 = threshold_at_far(&mut cal_impostor, 1e-3);
    let t4 = threshold_at_far(&mut cal_impostor, 1e-4);
    let (genuine, impostor) = all_pair_scores(&items(&test_refs));
    Ok(LfwReport {
        fold_accuracy,
        accuracy_threshold,
        mean_accuracy: mean,
        std_accuracy: std,
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        threshold_far_1e3: t3,
        threshold_far_1e4: t4,
        tar_far_1e3: rate_at_or_above(&genuine, t3),
        tar_far_1e4: rate_at_or_above(&genuine, t4),
        test_far_at_1e3_threshold: rate_at_or_above(&impostor, t3),
        test_far_at_1e4_threshold: rate_at_or_above(&impostor, t4),
        images: images.len(),
        images_without_landmarks: images.len() - emb.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_threshold_admits_at_most_the_allowed_impostors() {
        let mut impostors: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let t = threshold_at_far(&mut impostors, 1e-2);
        let accepted = impostors.iter().filter(|s| **s >= t).count();
        assert_eq!(accepted, 10);
    }

    #[test]
    fn best_threshold_separates_separable_pairs() {
        let pairs = [(0.9, true), (0.8, true), (0.3, false), (0.2, false)];
        let t = best_threshold(&pairs);
        assert!(t > 0.3 && t < 0.8);
        assert_eq!(accuracy(&pairs, t), 1.0);
    }
}
