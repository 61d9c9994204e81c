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
//!
//! Where the templates lie ([`TemplateSpace`]): the teacher's centred templates of the training
//! faces span only 77 of the 128 dimensions (their covariance's other 51 eigenvalues are under
//! 1e-3 of the largest; `docs/distillation.md`), and the student keeps real faces near 0 there.
//! Templates drawn anywhere put 60 % of each generated person's length among the directions
//! real people take; templates in the unused ones ([`TemplateSpace::TeacherNull`], what
//! `distil-teacher --generated-id` draws) ask nothing of the real faces' embedding. Both forms
//! broke the real faces' distillation within 200 steps (`runs/kd-huber`, `runs/kd-null`), and
//! so did the unused directions with the encoder's batch-norm statistics frozen, sooner
//! (`runs/kd-frozen`): pulling the generated faces in moves the encoder's weights themselves.
//! At weight 0.4 it held (`runs/kd-g04`), and began to separate generated people.

use burn::config::Config;
use nalgebra::{DMatrix, SymmetricEigen};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Steps over which `distil-teacher --generated-id` ramps the term's weight up.
pub const RAMP_STEPS: usize = 500;

/// A direction of the templates' covariance counts as unused when its eigenvalue is under this
/// fraction of the largest (the teacher's: 77 directions above 4e-3, the rest under 2e-4).
pub const UNUSED_VARIANCE: f64 = 1e-3;

/// Where the invented templates lie.
#[derive(Config, Debug, PartialEq)]
pub enum TemplateSpace {
    /// Gaussian directions in the whole embedding (session 27's runs).
    Anywhere,
    /// Gaussian directions in the subspace the teacher's centred templates of the training faces
    /// leave unused ([`unused_directions`]), 0 along the directions real people take.
    TeacherNull,
}

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
    /// The weight the ramp starts from: a continued run's origin's weight at the continuation,
    /// so a heavier term grows from where the origin's was; `None` (a new term, or a config
    /// written before this existed): 0.
    pub ramp_from: Option<f64>,
    /// Where the templates lie; `None` (as in a config written before there was a choice):
    /// [`TemplateSpace::Anywhere`].
    pub space: Option<TemplateSpace>,
}

impl GeneratedIdConfig {
    /// The term's weight at optimiser step `step`.
    pub fn weight_at(&self, step: usize) -> f64 {
        let since = step.saturating_sub(self.from_step.unwrap_or(0)) as f64;
        let ramped = self.ramp_steps.map_or(1.0, |ramp| since / ramp.max(1) as f64).min(1.0);
        let from = self.ramp_from.unwrap_or(0.0);
        from + (self.weight - from) * ramped
    }
}

/// An orthonormal basis (`[dim, m]`, column-major as `nalgebra` keeps it) of the directions that
/// `targets` (centred templates, row after row, `dim` values each) leave unused: their second
/// moment's eigenvectors whose eigenvalue is under [`UNUSED_VARIANCE`] of the largest.
pub fn unused_directions(targets: &[f32], dim: usize) -> DMatrix<f64> {
    let rows = DMatrix::from_row_iterator(targets.len() / dim, dim, targets.iter().map(|v| *v as f64));
    let eigen = SymmetricEigen::new(rows.transpose() * &rows);
    let largest = eigen.eigenvalues.max();
    let unused: Vec<usize> = (0..dim).filter(|i| eigen.eigenvalues[*i] < UNUSED_VARIANCE * largest).collect();
    eigen.eigenvectors.select_columns(&unused)
}

/// One unit-length centred template per generated person, row after row (`[people, dim]`),
/// drawn from a Gaussian with `seed` and, given a basis (`within`, [`unused_directions`]),
/// projected onto its span: independent of the backend and the same on every resume.
pub fn person_templates(people: usize, dim: usize, within: Option<&DMatrix<f64>>, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6e6e_7261_7465_6420);
    (0..people)
        .flat_map(|_| {
            let drawn = nalgebra::DVector::<f64>::from_iterator(dim, (0..dim).map(|_| Distribution::<f32>::sample(&StandardNormal, &mut rng) as f64));
            let row = match within {
                Some(basis) => basis * (basis.transpose() * drawn),
                None => drawn,
            };
            let norm = row.norm();
            row.into_iter().map(move |v| (v / norm) as f32).collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_unit_length_nearly_orthogonal_and_depend_on_the_seed_only() {
        let (people, dim) = (200, 128);
        let t = person_templates(people, dim, None, 1);
        assert_eq!(t, person_templates(people, dim, None, 1));
        assert_ne!(t, person_templates(people, dim, None, 2));
        let row = |p: usize| &t[p * dim..(p + 1) * dim];
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        assert!((0..people).all(|p| (dot(row(p), row(p)) - 1.0).abs() < 1e-5));
        let worst = (0..people).flat_map(|i| (0..i).map(move |j| (i, j))).map(|(i, j)| dot(row(i), row(j)).abs()).fold(0.0, f32::max);
        assert!(worst < 0.45, "two people's templates at |cos| {worst}");
    }

    #[test]
    fn templates_within_the_unused_directions_have_nothing_along_the_used_ones() {
        // 300 targets in the 3 directions spanned by e0, e1 + e2 and e3 − e5 of 8.
        let dim = 8;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut normal = || Distribution::<f32>::sample(&StandardNormal, &mut rng);
        let targets: Vec<f32> = (0..300)
            .flat_map(|_| {
                let (a, b, c) = (normal(), normal(), 0.1 * normal());
                [a, b, b, c, 0.0, -c, 0.0, 0.0]
            })
            .collect();
        let unused = unused_directions(&targets, dim);
        assert_eq!(unused.ncols(), 5);
        let t = person_templates(40, dim, Some(&unused), 1);
        for row in t.chunks(dim) {
            let along = |d: [f32; 8]| row.iter().zip(d).map(|(x, y)| x * y).sum::<f32>();
            assert!((row.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
            for used in [[1.0, 0., 0., 0., 0., 0., 0., 0.], [0., 1., 1., 0., 0., 0., 0., 0.], [0., 0., 0., 1., 0., -1., 0., 0.]] {
                assert!(along(used).abs() < 1e-5, "{row:?} has {} along {used:?}", along(used));
            }
        }
    }

    #[test]
    fn the_weight_ramps_up_from_the_step_the_term_starts_at() {
        let term = GeneratedIdConfig::new(2.0).with_from_step(Some(3000)).with_ramp_steps(Some(500));
        let weights: Vec<f64> = [0, 3000, 3250, 3500, 9000].iter().map(|s| term.weight_at(*s)).collect();
        assert_eq!(weights, [0.0, 0.0, 1.0, 2.0, 2.0]);
        let heavier = term.with_ramp_from(Some(0.4));
        let weights: Vec<f64> = [3000, 3250, 3500].iter().map(|s| heavier.weight_at(*s)).collect();
        assert!(weights.iter().zip([0.4, 1.2, 2.0]).all(|(w, e)| (w - e).abs() < 1e-12), "a continued run's term grows from its origin's weight: {weights:?}");
    }

    #[test]
    fn a_term_saved_before_the_ramp_loads_at_full_weight() {
        // `runs/kd-trip`'s term, saved with fields of an earlier form of it.
        let old = GeneratedIdConfig::load_binary(br#"{"weight": 5.0, "margin": 0.3, "views": 2}"#).unwrap();
        assert_eq!(old, GeneratedIdConfig::new(5.0));
        assert_eq!(old.weight_at(0), 5.0);
        assert_eq!((old.space, old.ramp_from), (None, None));
    }
}
