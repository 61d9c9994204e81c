//! LFW open-set verification: `pairs.txt` folds 6-10 with the threshold chosen on folds 1-5,
//! TAR at fixed FAR over every cross-person pair of the test people, and the thresholds that
//! reach each FAR on the calibration people.

use super::{accuracy, all_pair_scores, best_threshold, embed_with, rate_at_or_above, threshold_at_far};
use crate::landmarks::CachedFace;
use anyhow::{Context, Result};
use faceunlock::embed::cosine;
use faceunlock_core::contract::EmbedderEntry;
use faceunlock_data::lfw::{ImageId, Lfw};
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

/// Embed LFW images aligned with their cached landmarks (images without one are left out).
pub fn embed_images(onnx: &Path, entry: &EmbedderEntry, images: &[PathBuf], faces: &HashMap<PathBuf, CachedFace>) -> Result<HashMap<PathBuf, Vec<f32>>> {
    let embeddings = embed_with(onnx, entry, images, |path| {
        let Some(face) = faces.get(path) else { return Ok(None) };
        let img = image::open(path).with_context(|| format!("decoding {}", path.display()))?.to_rgb8();
        Ok(Some((img, face.landmarks)))
    })?;
    Ok(images.iter().zip(embeddings).filter_map(|(p, e)| Some((p.clone(), e?))).collect())
}

/// Calibrate on the people and pairs of `calibration` folds, measure on `test` folds.
/// With `curves`, the ROC and DET curves of the test people's pairs are written there as PNG.
pub fn lfw_open_set(lfw_root: &Path, onnx: &Path, entry: &EmbedderEntry, faces: &HashMap<PathBuf, CachedFace>, calibration: &[usize], test: &[usize], curves: Option<&Path>) -> Result<LfwReport> {
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
    if let Some(dir) = curves {
        super::curves::write_curves(dir, &genuine, &impostor)?;
    }
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

