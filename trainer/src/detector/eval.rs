//! How well a detector finds the faces a reference found: recall at IoU ≥ 0.5 and the landmark
//! error of the matched faces as a fraction of the reference's inter-ocular distance (NME).
//! Against YuNet's detections on held-out LFW people (the distillation target) and against the
//! generator's ground truth.

use super::data::Source;
use anyhow::Result;
use crate::landmarks::DetectorFiles;
use faceunlock::detect::{FaceDetector, iou};
use rayon::prelude::*;
use serde::Serialize;

/// A match needs at least this overlap.
pub const MIN_IOU: f32 = 0.5;

#[derive(Clone, Debug, Default, Serialize)]
pub struct DetectorScore {
    pub images: usize,
    pub reference_faces: usize,
    pub matched: usize,
    pub recall: f64,
    /// Mean and median landmark error over matched faces, fraction of the inter-ocular distance.
    pub mean_nme: f64,
    pub median_nme: f64,
    /// Detections that match no reference face.
    pub unmatched_detections: usize,
}

/// One image's result: reference faces, NMEs of the matched ones, unmatched detections.
type ImageResult = (usize, Vec<f64>, usize);

fn score_image(det: &mut dyn FaceDetector, src: &Source) -> Result<ImageResult> {
    let found = det.detect(&src.image)?;
    let mut used = vec![false; found.len()];
    let mut nmes = Vec::new();
    for face in &src.faces {
        let best = found.iter().enumerate().filter(|(i, _)| !used[*i]).map(|(i, d)| (i, iou(&d.face_box, &face.face_box))).max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, _)) = best.filter(|(_, o)| *o >= MIN_IOU) {
            used[i] = true;
            nmes.push(found[i].landmarks.nme(&face.landmarks));
        }
    }
    Ok((src.faces.len(), nmes, used.iter().filter(|u| !**u).count()))
}

/// Score `detector` (input `size`, threshold `score_threshold`) against the faces of `sources`.
pub fn score(detector: &DetectorFiles, size: [u32; 2], score_threshold: f32, sources: &[Source]) -> Result<DetectorScore> {
    let per_chunk: Vec<Result<Vec<ImageResult>>> = sources
        .par_chunks(32)
        .map(|chunk| {
            let mut det = detector.load(size, score_threshold)?;
            chunk.iter().map(|s| score_image(det.as_mut(), s)).collect()
        })
        .collect();
    let mut s = DetectorScore { images: sources.len(), ..Default::default() };
    let mut nmes = Vec::new();
    for chunk in per_chunk {
        for (faces, n, unmatched) in chunk? {
            s.reference_faces += faces;
            s.matched += n.len();
            nmes.extend(n);
            s.unmatched_detections += unmatched;
        }
    }
    s.recall = s.matched as f64 / s.reference_faces.max(1) as f64;
    nmes.sort_by(f64::total_cmp);
    s.mean_nme = nmes.iter().sum::<f64>() / nmes.len().max(1) as f64;
    s.median_nme = nmes.get(nmes.len() / 2).copied().unwrap_or(0.0);
    Ok(s)
}

/// Generated views of people `first..first + people` (views drawn at random from the seed), with
/// the generator's ground truth: a set no detector was trained on when the seed is new.
pub fn generated_sources(seed: u64, first: u32, people: u32, views: u32) -> Vec<Source> {
    use faceunlock_data::synth::Generator;
    let g = Generator::new(seed);
    (first..first + people)
        .into_par_iter()
        .flat_map_iter(|p| {
            let id = g.identity(p);
            (0..views).map(move |v| {
                let r = g.render(&id, &g.view(p, v));
                Source { image: r.image, faces: vec![faceunlock_core::grid::GridFace { face_box: r.face_box, landmarks: r.landmarks }] }
            })
        })
        .collect()
}
