//! Verification by head yaw, the paper's claim: generated people that no training set holds
//! (their own generator seed) are each enrolled from one frontal view and probed at |yaw| in
//! 15° bins up to 90°, aligned from the generator's true landmarks.

use super::{accuracy, best_threshold, embed_with};
use anyhow::Result;
use faceunlock::embed::cosine;
use faceunlock_core::contract::EmbedderEntry;
use faceunlock_data::synth::{Generator, View};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::path::Path;

pub const BIN_DEGREES: f32 = 15.0;
pub const BINS: usize = 6;

#[derive(Clone, Debug, Serialize)]
pub struct YawBin {
    pub yaw_from: f32,
    pub yaw_to: f32,
    pub probes: usize,
    /// Probes whose best-scoring enrolled person is their own.
    pub rank1: f64,
    /// Accuracy on one genuine and one impostor pair per probe at the report's `threshold`.
    pub verification_accuracy: f64,
    /// Genuine pairs accepted at `accept_threshold` (the device's threshold).
    pub tar_at_accept_threshold: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct YawReport {
    pub seed: u64,
    pub people: u32,
    /// The accuracy-maximising threshold over all bins' pairs together.
    pub threshold: f32,
    pub accept_threshold: f32,
    pub bins: Vec<YawBin>,
}

/// What to render: person, and the view (`None`: the frontal enrolment view).
struct Shot {
    person: u32,
    bin: Option<usize>,
    view: View,
}

fn shots(seed: u64, people: u32, probes_per_bin: u32) -> Vec<Shot> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x9a3);
    let mut out = Vec::new();
    for person in 0..people {
        out.push(Shot { person, bin: None, view: View::frontal() });
        for bin in 0..BINS {
            for _ in 0..probes_per_bin {
                let magnitude = rng.random_range(bin as f32 * BIN_DEGREES..(bin + 1) as f32 * BIN_DEGREES);
                let yaw = if rng.random_bool(0.5) { magnitude } else { -magnitude };
                let view = View::posed(yaw, rng.random_range(-10.0..10.0), rng.random_range(-5.0..5.0));
                out.push(Shot { person, bin: Some(bin), view });
            }
        }
    }
    out
}

pub fn yaw_bins(onnx: &Path, entry: &EmbedderEntry, seed: u64, people: u32, probes_per_bin: u32, accept_threshold: f32) -> Result<YawReport> {
    anyhow::ensure!(people >= 2, "yaw evaluation needs at least 2 people, got {people}");
    let generator = Generator::new(seed);
    let shots = shots(seed, people, probes_per_bin);
    let embeddings = embed_with(onnx, entry, &shots, |s| {
        let r = generator.render(&generator.identity(s.person), &s.view);
        Ok(Some((r.image, r.landmarks)))
    })?;
    let mut enrolled: Vec<&[f32]> = vec![&[]; people as usize];
    for (s, e) in shots.iter().zip(&embeddings) {
        if let (None, Some(e)) = (s.bin, e) {
            enrolled[s.person as usize] = e;
        }
    }
    // Per bin: (rank-1 hit, genuine score, impostor score) per probe.
    let mut per_bin: Vec<Vec<(bool, f32, f32)>> = vec![Vec::new(); BINS];
    for (k, (s, e)) in shots.iter().zip(&embeddings).enumerate() {
        let (Some(bin), Some(e)) = (s.bin, e) else { continue };
        let scores: Vec<f32> = enrolled.iter().map(|t| cosine(t, e)).collect();
        let best = (0..scores.len()).max_by(|a, b| scores[*a].total_cmp(&scores[*b]));
        let other = (s.person as usize + 1 + k % (people as usize - 1)) % people as usize;
        per_bin[bin].push((best == Some(s.person as usize), scores[s.person as usize], scores[other]));
    }
    let pairs = |probes: &[(bool, f32, f32)]| -> Vec<(f32, bool)> { probes.iter().flat_map(|p| [(p.1, true), (p.2, false)]).collect() };
    let threshold = best_threshold(&per_bin.iter().flat_map(|b| pairs(b)).collect::<Vec<_>>());
    let bins = per_bin
        .iter()
        .enumerate()
        .map(|(b, probes)| YawBin {
            yaw_from: b as f32 * BIN_DEGREES,
            yaw_to: (b + 1) as f32 * BIN_DEGREES,
            probes: probes.len(),
            rank1: probes.iter().filter(|p| p.0).count() as f64 / probes.len().max(1) as f64,
            verification_accuracy: accuracy(&pairs(probes), threshold),
            tar_at_accept_threshold: probes.iter().filter(|p| p.1 >= accept_threshold).count() as f64 / probes.len().max(1) as f64,
        })
        .collect();
    Ok(YawReport { seed, people, threshold, accept_threshold, bins })
}
