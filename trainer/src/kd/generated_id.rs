//! The generated people's identity term of a distillation run.
//!
//! The face teacher cannot tell generated people apart (its templates of 20 generated people:
//! genuine pairs cosine 0.929, impostor pairs 0.919, TAR 0.9 % at FAR 1e-3;
//! `docs/distillation.md`), so a student that only regresses its templates cannot either, and
//! the demo on generated faces refuses its enrolled people. This term teaches the student to
//! separate them: ArcFace's loss (margin 0.3, scale 30) of the generated faces' embeddings
//! against **fixed** class centres, one random direction per generated person drawn from the
//! run's seed. Fixed centres add no trained parameter, so a running distillation can take the
//! term up from its checkpoint (`distil-teacher --continue-from`). The loss is
//! [`crate::model::ArcMargin::loss`] against [`fixed_centres`].

use burn::tensor::TensorData;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// One direction per generated person, `[dim, people]` (the layout of class centres), drawn
/// from a Gaussian with `seed`: independent of the backend and the same on every resume.
pub fn fixed_centres(people: usize, dim: usize, seed: u64) -> TensorData {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6e6e_7261_7465_6420);
    let values: Vec<f32> = (0..dim * people).map(|_| StandardNormal.sample(&mut rng)).collect();
    TensorData::new(values, [dim, people])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::tests::{B, ids};
    use crate::model::ArcMargin;
    use burn::prelude::*;

    #[test]
    fn the_centres_depend_on_the_seed_only_and_are_nearly_orthogonal() {
        let a = fixed_centres(200, 128, 1).to_vec::<f32>().unwrap();
        assert_eq!(a, fixed_centres(200, 128, 1).to_vec::<f32>().unwrap());
        assert_ne!(a, fixed_centres(200, 128, 2).to_vec::<f32>().unwrap());
        let column = |c: usize| (0..128).map(|d| a[d * 200 + c]).collect::<Vec<f32>>();
        let cos = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>() / (x.iter().map(|v| v * v).sum::<f32>() * y.iter().map(|v| v * v).sum::<f32>()).sqrt();
        let worst = (0..200).flat_map(|i| (0..i).map(move |j| (i, j))).map(|(i, j)| cos(&column(i), &column(j)).abs()).fold(0.0, f32::max);
        assert!(worst < 0.45, "two centres at |cos| {worst}");
    }

    #[test]
    fn embeddings_on_their_own_centre_cost_less_than_on_anothers() {
        let device = Default::default();
        let centres = Tensor::<B, 2>::from_data(fixed_centres(4, 8, 3), &device);
        let own = centres.clone().transpose();
        let shifted = Tensor::cat(vec![own.clone().narrow(0, 1, 3), own.clone().narrow(0, 0, 1)], 0);
        let people = ids(vec![0, 1, 2, 3]);
        let arc = ArcMargin::new();
        let right = arc.loss(own, centres.clone(), people.clone()).into_scalar();
        let wrong = arc.loss(shifted, centres, people).into_scalar();
        assert!(right < 1.0 && wrong > 10.0, "own centre {right}, another's {wrong}");
    }
}
