//! LFW open-set verification: `pairs.txt` folds 6-10 with the threshold chosen on folds 1-5,
//! TAR at fixed FAR over every cross-person pair of the test people, and the thresholds that
//! reach each FAR on the calibration people. With [`Masking`], the same protocol with synthetic
//! masks ([`faceunlock_data::masks`]) on the probe side or on both sides of every pair.

use super::{EmbedFn, accuracy, all_pair_scores, best_threshold, rate_at_or_above, run_with};
use faceunlock::embed::Embedder;
use faceunlock_core::calibration::threshold_at_far;
use crate::landmarks::CachedFace;
use anyhow::{Context, Result};
use faceunlock::embed::cosine;
use faceunlock_core::contract::EmbedderEntry;
use faceunlock_data::lfw::{ImageId, Lfw};
use faceunlock_data::masks::{MaskStyle, draw_mask};
use faceunlock_data::sample::SampleRef;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize)]
pub struct LfwReport {
    pub masking: Masking,
    /// Accuracy per test fold at the threshold chosen on the calibration folds' pairs.
    pub fold_accuracy: Vec<f64>,
    pub accuracy_threshold: f32,
    pub mean_accuracy: f64,
    pub std_accuracy: f64,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// Whose impostor pairs the FAR thresholds were calibrated on.
    pub calibrated_on: String,
    /// Thresholds reaching FAR 1e-3 / 1e-4 on the calibration people's impostor pairs.
    pub threshold_far_1e3: f32,
    pub threshold_far_1e4: f32,
    /// TAR on the calibration people at those thresholds: the figure to tune on.
    pub calibration_tar_far_1e3: f64,
    pub calibration_tar_far_1e4: f64,
    /// On the test people at those thresholds: TAR and the FAR actually reached.
    pub tar_far_1e3: f64,
    pub tar_far_1e4: f64,
    pub test_far_at_1e3_threshold: f64,
    pub test_far_at_1e4_threshold: f64,
    pub images: usize,
    pub images_without_landmarks: usize,
}

/// Which faces of each pair wear a synthetic mask (each image its own, chosen from its file name
/// and a seed, so a face wears the same mask in every pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Masking {
    /// Neither: the standard protocol.
    None,
    /// The second image of a pair (the probe); the first (the enrolled face) is bare.
    Probe { seed: u64 },
    /// Both images.
    Both { seed: u64 },
}

/// Embed LFW images aligned with their cached landmarks (images without one are left out),
/// each wearing its mask when `mask_seed` is given.
pub fn embed_images(onnx: &Path, entry: &EmbedderEntry, images: &[PathBuf], faces: &HashMap<PathBuf, CachedFace>, mask_seed: Option<u64>) -> Result<HashMap<PathBuf, Vec<f32>>> {
    embed_images_by(onnx, entry, images, faces, mask_seed, Embedder::embed)
}

/// As [`embed_images`] without masks, the model's outputs not normalised.
pub fn embed_images_raw(onnx: &Path, entry: &EmbedderEntry, images: &[PathBuf], faces: &HashMap<PathBuf, CachedFace>) -> Result<HashMap<PathBuf, Vec<f32>>> {
    embed_images_by(onnx, entry, images, faces, None, Embedder::embed_raw)
}

fn embed_images_by(onnx: &Path, entry: &EmbedderEntry, images: &[PathBuf], faces: &HashMap<PathBuf, CachedFace>, mask_seed: Option<u64>, embed: EmbedFn) -> Result<HashMap<PathBuf, Vec<f32>>> {
    let embeddings = run_with(onnx, entry, images, |path| {
        let Some(face) = faces.get(path) else { return Ok(None) };
        let mut img = image::open(path).with_context(|| format!("decoding {}", path.display()))?.to_rgb8();
        if let Some(seed) = mask_seed {
            draw_mask(&mut img, &face.landmarks, &MaskStyle::for_file(path, seed)).with_context(|| format!("masking {}", path.display()))?;
        }
        Ok(Some((img, face.landmarks)))
    }, embed)?;
    Ok(images.iter().zip(embeddings).filter_map(|(p, e)| Some((p.clone(), e?))).collect())
}

/// People other than the calibration folds' whose impostor pairs set the FAR thresholds:
/// people a model never trained on, where it trained on the calibration folds' people.
pub struct HeldOut<'a> {
    /// Their faces, with identities and landmarks.
    pub refs: &'a [SampleRef],
    /// Who they are, for the report.
    pub name: String,
}

impl<'a> HeldOut<'a> {
    /// The held-out people of a faces-extra set at `dir` (`kd::data::extra_holdout`).
    pub fn extra(refs: &'a [SampleRef], dir: &Path) -> Self {
        let people = refs.iter().map(|r| r.identity).max().map_or(0, |m| m + 1);
        HeldOut { refs, name: format!("{people} held-out people of {} ({} faces)", dir.display(), refs.len()) }
    }
}

/// Calibrate on the people and pairs of `calibration` folds (the FAR thresholds on `held_out`
/// people where given), measure on `test` folds, under each of `protocols` (the images are
/// embedded once bare and once masked, as needed). With `curves`, the ROC and DET curves of
/// the bare test people's pairs are written there as PNG.
#[allow(clippy::too_many_arguments)]
pub fn lfw_open_set(lfw_root: &Path, onnx: &Path, entry: &EmbedderEntry, faces: &HashMap<PathBuf, CachedFace>, calibration: &[usize], test: &[usize], protocols: &[Masking], curves: Option<&Path>, held_out: Option<&HeldOut>) -> Result<Vec<LfwReport>> {
    let lfw = Lfw::open(lfw_root)?;
    let split = Split::new(&lfw, calibration, test, held_out);
    let mut images: Vec<PathBuf> = split.cal_refs.iter().chain(&split.test_refs).map(|r| r.image.clone()).collect();
    // The held-out faces are aligned by their own landmarks, like the LFW photos by the cache's
    // (the cache is copied only to add them).
    let mut faces = std::borrow::Cow::Borrowed(faces);
    for r in held_out.map_or(&[][..], |h| h.refs) {
        let landmarks = r.landmarks.with_context(|| format!("{}: a held-out face without landmarks", r.image.display()))?;
        faces.to_mut().insert(r.image.clone(), CachedFace { image: r.image.clone(), landmarks, face_box: [0.0; 4], score: 1.0 });
        images.push(r.image.clone());
    }
    let faces = faces.as_ref();
    let mut by_seed: HashMap<Option<u64>, HashMap<PathBuf, Vec<f32>>> = HashMap::new();
    // The curves' legend names the model by its file.
    let label = onnx.file_name().map_or_else(|| onnx.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut reports = Vec::new();
    for masking in protocols {
        let (enrol_seed, probe_seed) = match *masking {
            Masking::None => (None, None),
            Masking::Probe { seed } => (None, Some(seed)),
            Masking::Both { seed } => (Some(seed), Some(seed)),
        };
        for seed in [enrol_seed, probe_seed] {
            if let std::collections::hash_map::Entry::Vacant(slot) = by_seed.entry(seed) {
                slot.insert(embed_images(onnx, entry, &images, faces, seed)?);
            }
        }
        let sides = Sides { enrol: &by_seed[&enrol_seed], probe: &by_seed[&probe_seed] };
        let curves = curves.filter(|_| *masking == Masking::None).map(|dir| (dir, label.as_str()));
        reports.push(split.report(&sides, *masking, curves)?);
    }
    Ok(reports)
}

/// The bare protocol on stored templates (image path → template, for the LFW images and any
/// `held_out` faces) instead of a model's embeddings: a teacher's, the ceiling its student can
/// reach under this same protocol.
pub fn lfw_open_set_on(lfw_root: &Path, templates: &HashMap<PathBuf, Vec<f32>>, calibration: &[usize], test: &[usize], curves: Option<(&Path, &str)>, held_out: Option<&HeldOut>) -> Result<LfwReport> {
    let lfw = Lfw::open(lfw_root)?;
    Split::new(&lfw, calibration, test, held_out).report(&Sides { enrol: templates, probe: templates }, Masking::None, curves)
}

/// The embeddings each side of a pair is scored with: the first image's from `enrol`, the
/// second's from `probe`.
struct Sides<'a> {
    enrol: &'a HashMap<PathBuf, Vec<f32>>,
    probe: &'a HashMap<PathBuf, Vec<f32>>,
}

/// The calibration and test folds, and the people of each.
struct Split<'a> {
    lfw: &'a Lfw,
    calibration: &'a [usize],
    test: &'a [usize],
    cal_refs: Vec<SampleRef>,
    test_refs: Vec<SampleRef>,
    held_out: Option<&'a HeldOut<'a>>,
}

impl<'a> Split<'a> {
    fn new(lfw: &'a Lfw, calibration: &'a [usize], test: &'a [usize], held_out: Option<&'a HeldOut<'a>>) -> Self {
        Split { cal_refs: lfw.people_samples(calibration).0, test_refs: lfw.people_samples(test).0, lfw, calibration, test, held_out }
    }

    fn report(&self, sides: &Sides, masking: Masking, curves: Option<(&Path, &str)>) -> Result<LfwReport> {
        let (lfw, cal_refs, test_refs) = (self.lfw, &self.cal_refs, &self.test_refs);
        let images = cal_refs.len() + test_refs.len();
        let score = |a: &ImageId, b: &ImageId| -> Option<f32> { Some(cosine(sides.enrol.get(&lfw.image_path(a))?, sides.probe.get(&lfw.image_path(b))?)) };
        let scored = |f: &usize| -> Vec<(f32, bool)> { lfw.pairs(*f).iter().filter_map(|p| Some((score(&p.a, &p.b)?, p.same))).collect() };
        let cal_pairs: Vec<(f32, bool)> = self.calibration.iter().flat_map(scored).collect();
        let accuracy_threshold = best_threshold(&cal_pairs);
        let fold_accuracy: Vec<f64> = self.test.iter().map(|f| accuracy(&scored(f), accuracy_threshold)).collect();
        let mean = fold_accuracy.iter().sum::<f64>() / fold_accuracy.len().max(1) as f64;
        let std = (fold_accuracy.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / fold_accuracy.len().max(1) as f64).sqrt();
        let items = |refs: &[SampleRef]| -> Vec<(u32, &Vec<f32>, &Vec<f32>)> { refs.iter().filter_map(|r| Some((r.identity, sides.enrol.get(&r.image)?, sides.probe.get(&r.image)?))).collect() };
        let (calibrated_on, calibration_refs) = match self.held_out {
            Some(h) => (h.name.clone(), h.refs),
            None => (format!("LFW people.txt folds {:?} people", self.calibration), &cal_refs[..]),
        };
        let (cal_genuine, mut cal_impostor) = all_pair_scores(&items(calibration_refs));
        let t3 = threshold_at_far(&mut cal_impostor, 1e-3);
        let t4 = threshold_at_far(&mut cal_impostor, 1e-4);
        let (genuine, impostor) = all_pair_scores(&items(test_refs));
        if let Some((dir, label)) = curves {
            super::curves::write_curves(dir, label, &genuine, &impostor)?;
        }
        Ok(LfwReport {
            masking,
            fold_accuracy,
            accuracy_threshold,
            mean_accuracy: mean,
            std_accuracy: std,
            genuine_pairs: genuine.len(),
            impostor_pairs: impostor.len(),
            calibrated_on,
            threshold_far_1e3: t3,
            threshold_far_1e4: t4,
            calibration_tar_far_1e3: rate_at_or_above(&cal_genuine, t3),
            calibration_tar_far_1e4: rate_at_or_above(&cal_genuine, t4),
            tar_far_1e3: rate_at_or_above(&genuine, t3),
            tar_far_1e4: rate_at_or_above(&genuine, t4),
            test_far_at_1e3_threshold: rate_at_or_above(&impostor, t3),
            test_far_at_1e4_threshold: rate_at_or_above(&impostor, t4),
            images,
            images_without_landmarks: cal_refs.iter().chain(test_refs).filter(|r| !sides.probe.contains_key(&r.image)).count(),
        })
    }
}

