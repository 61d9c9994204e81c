//! Evaluation of any ONNX embedder through tract (the firmware's own embedder and aligner), on
//! three protocols: LFW open-set verification ([`lfw`]), closed-set identification on a training
//! run's held-out images ([`closed_set`]) and verification by head yaw on generated people
//! ([`yaw`]).

pub mod closed_set;
pub mod curves;
pub mod lfw;
pub mod yaw;

use anyhow::{Context, Result};
use faceunlock::embed::{Embedder, cosine};
use faceunlock_core::align::Aligner;
use faceunlock_core::contract::EmbedderEntry;
use faceunlock_core::geometry::{CropSpec, Landmarks5};
use image::RgbImage;
use rayon::prelude::*;
use std::path::Path;

/// Embed `items` in parallel: `load` gives each item's image and landmarks, or `None` to skip
/// it (its slot in the result is then `None`). The model is optimised once; each worker runs its
/// own copy of the plan.
pub fn embed_with<T: Sync>(onnx: &Path, entry: &EmbedderEntry, items: &[T], load: impl Fn(&T) -> Result<Option<(RgbImage, Landmarks5)>> + Sync) -> Result<Vec<Option<Vec<f32>>>> {
    run_with(onnx, entry, items, load, Embedder::embed)
}

/// How an [`Embedder`] turns a crop into a vector: [`Embedder::embed`] (normalised) or
/// [`Embedder::embed_raw`].
pub type EmbedFn = for<'a> fn(&'a mut Embedder, &RgbImage) -> Result<&'a [f32], faceunlock::embed::EmbedError>;

/// As [`embed_with`], each crop through `embed`.
pub fn run_with<T: Sync>(onnx: &Path, entry: &EmbedderEntry, items: &[T], load: impl Fn(&T) -> Result<Option<(RgbImage, Landmarks5)>> + Sync, embed: EmbedFn) -> Result<Vec<Option<Vec<f32>>>> {
    let bytes = std::fs::read(onnx).with_context(|| format!("reading {}", onnx.display()))?;
    // A run state is Send but not Sync: workers clone it under a lock, once each.
    let prototype = std::sync::Mutex::new(Embedder::from_bytes(onnx, &bytes, entry)?);
    items
        .par_iter()
        .map_init(
            || (prototype.lock().unwrap_or_else(|p| p.into_inner()).clone(), Aligner::new(CropSpec::arcface(entry.crop_size))),
            |(embedder, aligner), item| {
                let Some((img, marks)) = load(item)? else { return Ok(None) };
                let crop = aligner.align(&img, &marks)?;
                Ok(Some(embed(embedder, crop)?.to_vec()))
            },
        )
        .collect()
}

/// Accuracy of `threshold` on scored pairs `(score, same)`.
pub fn accuracy(pairs: &[(f32, bool)], threshold: f32) -> f64 {
    pairs.iter().filter(|(s, same)| (*s >= threshold) == *same).count() as f64 / pairs.len().max(1) as f64
}

/// The threshold maximising accuracy on `pairs` (candidates: midpoints of sorted scores).
pub fn best_threshold(pairs: &[(f32, bool)]) -> f32 {
    let mut scores: Vec<f32> = pairs.iter().map(|p| p.0).collect();
    scores.sort_by(f32::total_cmp);
    let candidates = scores.windows(2).map(|w| (w[0] + w[1]) / 2.0);
    candidates.max_by(|a, b| accuracy(pairs, *a).total_cmp(&accuracy(pairs, *b))).unwrap_or(0.5)
}

/// Genuine and impostor scores over every pair of `(identity, enrolled embedding, probe
/// embedding)` items: pair `i < j` scores `i`'s enrolled embedding against `j`'s probe.
pub fn all_pair_scores(items: &[(u32, &Vec<f32>, &Vec<f32>)]) -> (Vec<f32>, Vec<f32>) {
    let per_row: Vec<(Vec<f32>, Vec<f32>)> = (0..items.len())
        .into_par_iter()
        .map(|i| {
            let (mut g, mut im) = (Vec::new(), Vec::new());
            for j in i + 1..items.len() {
                let s = cosine(items[i].1, items[j].2);
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

pub fn rate_at_or_above(scores: &[f32], t: f32) -> f64 {
    scores.iter().filter(|s| **s >= t).count() as f64 / scores.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_threshold_separates_separable_pairs() {
        let pairs = [(0.9, true), (0.8, true), (0.3, false), (0.2, false)];
        let t = best_threshold(&pairs);
        assert!(t > 0.3 && t < 0.8);
        assert_eq!(accuracy(&pairs, t), 1.0);
    }
}
