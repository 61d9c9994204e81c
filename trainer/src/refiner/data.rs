//! Refiner training data: a labelled face (the teacher's or the generator's landmarks) is cropped
//! on a perturbed copy of its landmarks, the way a detector errs (the whole face shifted,
//! rotated, scaled, and each point moved on its own, by a random fraction of the inter-ocular
//! distance); the target is where the true landmarks fall in that crop. Mirrored and
//! colour-jittered.

use crate::detector::data::Source;
use burn::prelude::*;
use burn::tensor::TensorData;
use faceunlock_core::align::Aligner;
use faceunlock_core::geometry::{Landmarks5, Similarity};
use faceunlock_core::normalize::Normalization;
use faceunlock_core::refine::{crop_spec, encode};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The crops' normalisation (the firmware reads it from the manifest).
pub const NORMALIZATION: Normalization = Normalization::IMAGENET;

/// How far the perturbation goes: standard deviations, scaled per sample by a factor drawn
/// uniformly from `[0, max_factor]` so that small errors (a second pass) are learnt too.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Perturb {
    /// Whole-face shift, fraction of the inter-ocular distance.
    pub shift: f32,
    /// Whole-face rotation, degrees.
    pub degrees: f32,
    /// Whole-face scale, standard deviation of its logarithm.
    pub log_scale: f32,
    /// Each point on its own, fraction of the inter-ocular distance.
    pub point: f32,
    pub max_factor: f32,
    /// Brightness, contrast, saturation jitter (fractions).
    pub colour: [f32; 3],
}

impl Default for Perturb {
    fn default() -> Self {
        Self { shift: 0.12, degrees: 8.0, log_scale: 0.1, point: 0.06, max_factor: 1.5, colour: [0.3, 0.3, 0.3] }
    }
}

/// A standard normal draw (Box-Muller).
fn normal<R: Rng>(rng: &mut R) -> f32 {
    let (u, v): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// `truth` moved as a detector might have placed it.
pub fn perturb<R: Rng>(truth: &Landmarks5, p: &Perturb, rng: &mut R) -> Landmarks5 {
    let iod = truth.inter_ocular();
    let k = rng.random_range(0.0..p.max_factor);
    let [l, r, ..] = truth.0;
    let eyes = [(l[0] + r[0]) / 2.0, (l[1] + r[1]) / 2.0];
    let mut t = Similarity::about(eyes, k * p.degrees * normal(rng), (k * p.log_scale * normal(rng)).exp());
    t.tx += k * p.shift * iod * normal(rng);
    t.ty += k * p.shift * iod * normal(rng);
    let mut moved = truth.transformed(&t);
    for q in &mut moved.0 {
        q[0] += k * p.point * iod * normal(rng);
        q[1] += k * p.point * iod * normal(rng);
    }
    moved
}

/// Faces worth learning from: eyes at least this far apart (pixels).
pub const MIN_INTER_OCULAR: f32 = 8.0;

/// Every face of `sources` big enough, as (source index, face index).
pub fn faces(sources: &[Source]) -> Vec<(usize, usize)> {
    sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.faces.iter().enumerate().filter(|(_, f)| f.landmarks.inter_ocular() >= MIN_INTER_OCULAR).map(move |(j, _)| (i, j)))
        .collect()
}

/// One training crop (CHW, normalised) of `truth` in `image`, and its ten targets.
pub fn sample<R: Rng>(image: &image::RgbImage, truth: &Landmarks5, size: u32, p: &Perturb, rng: &mut R) -> (Vec<f32>, [f32; 10]) {
    let spec = crop_spec(size);
    let mut aligner = Aligner::new(spec);
    let (crop, target) = loop {
        let anchor = perturb(truth, p, rng);
        // A draw so wild that it collapses the landmarks is drawn again.
        if let Ok(to_crop) = aligner.frame_to_crop(&anchor)
            && let Some(to_frame) = to_crop.inverse()
        {
            break (aligner.warp(image, &to_frame).clone(), truth.transformed(&to_crop));
        }
    };
    let (mut crop, target) = if rng.random_bool(0.5) { (image::imageops::flip_horizontal(&crop), target.mirrored(size as f32)) } else { (crop, target) };
    crate::data::jitter_colour(&mut crop, p.colour, rng);
    (NORMALIZATION.to_chw(&crop), encode(&target, &spec))
}

/// A batch: crops `[N, 3, S, S]` and targets `[N, 10]`, flat, from per-item RNG streams of `seed`.
pub struct HostBatch {
    pub count: usize,
    pub crops: Vec<f32>,
    pub targets: Vec<f32>,
}

pub fn host_batch(sources: &[Source], faces: &[(usize, usize)], size: u32, p: &Perturb, count: usize, seed: u64) -> HostBatch {
    use rand::SeedableRng;
    let items: Vec<(Vec<f32>, [f32; 10])> = (0..count)
        .into_par_iter()
        .map(|i| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (s, f) = faces[rng.random_range(0..faces.len())];
            sample(&sources[s].image, &sources[s].faces[f].landmarks, size, p, &mut rng)
        })
        .collect();
    let (crops, targets): (Vec<Vec<f32>>, Vec<[f32; 10]>) = items.into_iter().unzip();
    HostBatch { count, crops: crops.concat(), targets: targets.concat() }
}

impl HostBatch {
    pub fn upload<B: Backend>(self, size: u32, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 2>) {
        let (n, s) = (self.count, size as usize);
        (Tensor::from_data(TensorData::new(self.crops, [n, 3, s, s]), device), Tensor::from_data(TensorData::new(self.targets, [n, 10]), device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faceunlock_core::refine::decode;
    use rand::SeedableRng;

    /// A blue blob on the true left eye: in every crop, whatever the perturbation and mirroring,
    /// the decoded target eye (left, or right when mirrored) is on the blob.
    #[test]
    fn the_target_points_at_the_true_landmark_in_the_crop() {
        let mut image = image::RgbImage::new(200, 200);
        for y in 75..86 {
            for x in 65..76 {
                image.put_pixel(x, y, image::Rgb([0, 0, 255]));
            }
        }
        let truth = Landmarks5([[70.0, 80.0], [130.0, 80.0], [100.0, 110.0], [75.0, 140.0], [125.0, 140.0]]);
        let p = Perturb { colour: [0.0; 3], ..Perturb::default() };
        let spec = crop_spec(64);
        for seed in 0..30 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let (chw, target) = sample(&image, &truth, 64, &p, &mut rng);
            let marks = decode(&target, &spec);
            let blue = |q: [f32; 2]| {
                let (x, y) = (q[0].round() as usize, q[1].round() as usize);
                x < 64 && y < 64 && chw[2 * 64 * 64 + y * 64 + x] > 1.0
            };
            assert!(blue(marks.0[0]) || blue(marks.0[1]), "seed {seed}: eyes at {:?} / {:?}", marks.0[0], marks.0[1]);
        }
    }
}
