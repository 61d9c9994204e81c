//! The generated people's identity term of a distillation run.
//!
//! The face teacher cannot tell generated people apart (its templates of 20 generated people:
//! genuine pairs cosine 0.929, impostor pairs 0.919, TAR 0.9 % at FAR 1e-3;
//! `docs/distillation.md`), so a student that only regresses its templates cannot either, and
//! the demo on generated faces refuses its enrolled people. This term stands in for a teacher
//! that can: each generated person gets an invented centred template, a unit-length Gaussian
//! direction drawn from the run's seed ([`person_templates`]), and the student regresses it on
//! that person's faces as it regresses the teacher's centred templates on real faces, with the
//! pseudo-Huber distance `√(‖s − T_p‖² + 1) − 1`: the student's embeddings of generated faces
//! start about 20 lengths out, where a squared distance's gradient wrecked the run. Random
//! directions are as far apart as real people's centred templates (cosine about 0 ± 0.09 in
//! 128 dimensions), so in the shipped embedding (`s + k·μ`) generated people sit at the cosine
//! of real strangers. The term's gradient is bounded; it needs no learnt class centre (a
//! running distillation can take it up from its checkpoint: `distil-teacher --continue-from`);
//! and it pulls apart people the student still confuses, where a pairwise loss has no gradient
//! while their faces look alike. Its weight ramps up from the step it starts at
//! ([`GeneratedIdConfig::ramp_steps`], [`RAMP_STEPS`] from the command line).

use burn::config::Config;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Steps over which `distil-teacher --generated-id` ramps the term's weight up.
pub const RAMP_STEPS: usize = 500;

/// The term's settings, saved in the run's config.
#[derive(Config, Debug, PartialEq)]
pub struct GeneratedIdConfig {
    /// Weight of the mean pseudo-Huber distance to the invented templates in the step's loss
    /// (the KD term's weight is per face with a template; this one is per generated face).
    pub weight: f64,
    /// The step the term starts at (a continued run's origin's steps done); `None`: 0.
    pub from_step: Option<usize>,
    /// Steps over which the weight grows linearly from 0; `None` (as in a config written before
    /// the ramp existed): full weight at once. Adam's second moments, built over thousands of
    /// steps of the other terms' gradients, adapt with a time constant of 1,000 steps; a term
    /// switched on at full weight in a running distillation makes steps many times the learning
    /// rate, and blew the run up within 100 steps (`docs/distillation.md`).
    pub ramp_steps: Option<usize>,
}

impl GeneratedIdConfig {
    /// The term's weight at optimiser step `step`.
    pub fn weight_at(&self, step: usize) -> f64 {
        let since = step.saturating_sub(self.from_step.unwrap_or(0)) as f64;
        let ramped = self.ramp_steps.map_or(1.0, |ramp| since / ramp.max(1) as f64);
        self.weight * ramped.min(1.0)
    }
}

/// One unit-length centred template per generated person, row after row (`[people, dim]`),
/// drawn from a Gaussian with `seed`: independent of the backend and the same on every resume.
pub fn person_templates(people: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6e6e_7261_7465_6420);
    (0..people)
        .flat_map(|_| {
            let row: Vec<f32> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            row.into_iter().map(move |v| v / norm)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_unit_length_nearly_orthogonal_and_depend_on_the_seed_only() {
        let (people, dim) = (200, 128);
        let t = person_templates(people, dim, 1);
        assert_eq!(t, person_templates(people, dim, 1));
        assert_ne!(t, person_templates(people, dim, 2));
        let row = |p: usize| &t[p * dim..(p + 1) * dim];
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        assert!((0..people).all(|p| (dot(row(p), row(p)) - 1.0).abs() < 1e-5));
        let worst = (0..people).flat_map(|i| (0..i).map(move |j| (i, j))).map(|(i, j)| dot(row(i), row(j)).abs()).fold(0.0, f32::max);
        assert!(worst < 0.45, "two people's templates at |cos| {worst}");
    }

    #[test]
    fn the_weight_ramps_up_from_the_step_the_term_starts_at() {
        let term = GeneratedIdConfig::new(2.0).with_from_step(Some(3000)).with_ramp_steps(Some(500));
        let weights: Vec<f64> = [0, 3000, 3250, 3500, 9000].iter().map(|s| term.weight_at(*s)).collect();
        assert_eq!(weights, [0.0, 0.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn a_term_saved_before_the_ramp_loads_at_full_weight() {
        // `runs/kd-trip`'s term, saved with fields of an earlier form of it.
        let old = GeneratedIdConfig::load_binary(br#"{"weight": 5.0, "margin": 0.3, "views": 2}"#).unwrap();
        assert_eq!(old, GeneratedIdConfig::new(5.0));
        assert_eq!(old.weight_at(0), 5.0);
    }
}
