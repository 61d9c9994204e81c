//! The students' loss terms: template distillation (MaskInv), ElasticFace-Arc, the triplet
//! distillation loss and soft-label distillation (Georgescu et al.).

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

/// Rows scaled to unit length; a zero row stays zero. The ε inside the root keeps the gradient
/// finite there (√ has an infinite slope at 0: a dead ReLU embedding, a class without images).
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = (x.clone().square().sum_dim(1) + 1e-12).sqrt();
    x / norm
}

/// MaskInv's template term: mean squared difference of the unit-length embeddings.
pub fn template_mse<B: Backend>(student: Tensor<B, 2>, teacher: Tensor<B, 2>) -> Tensor<B, 1> {
    (l2_normalize(student) - l2_normalize(teacher)).square().mean()
}

/// ElasticFace-Arc: ArcFace's additive angular margin with the margin drawn per sample
/// (`margins`, `[batch, 1]`): logits `s·cos(θ_y + m)` for the true class, `s·cos θ_j` for the
/// others, then cross-entropy. `centres` is `[embedding, classes]`. Where `θ_y + m` would pass π
/// the logit is ArcFace's linear continuation `cos θ_y − m·sin m`, so it stays monotone.
pub fn elastic_arc<B: Backend>(embedding: Tensor<B, 2>, centres: Tensor<B, 2>, labels: Tensor<B, 1, Int>, margins: Tensor<B, 2>, scale: f64) -> Tensor<B, 1> {
    let [_, classes] = centres.dims();
    let centres = l2_normalize(centres.transpose()).transpose();
    let cos = l2_normalize(embedding).matmul(centres).clamp(-1.0 + 1e-6, 1.0 - 1e-6);
    let one_hot = labels.clone().one_hot::<2>(classes).float();
    let target = (cos.clone() * one_hot.clone()).sum_dim(1);
    let sin = (target.clone().square().neg() + 1.0).clamp_min(0.0).sqrt();
    let (cos_m, sin_m) = (margins.clone().cos(), margins.clone().sin());
    let with_margin = target.clone() * cos_m.clone() - sin * sin_m.clone();
    // θ + m > π exactly when cos θ < cos(π − m) = −cos m.
    let past_pi = target.clone().lower(cos_m.neg());
    let with_margin = with_margin.mask_where(past_pi, target.clone() - sin_m * margins);
    let logits = (cos + one_hot * (with_margin - target)) * scale;
    burn::nn::loss::CrossEntropyLossConfig::new().init(&logits.device()).forward(logits, labels)
}

/// Triplet distillation: anchor = the student's embedding of a (masked) face, positive = the
/// teacher's embedding of the same face bare, negative = the teacher's embedding of another
/// person in the batch, the one nearest the anchor. Squared distances of unit vectors, hinge at
/// `margin`; mean over anchors (an anchor with nobody else in the batch has no term).
pub fn triplet<B: Backend>(anchor: Tensor<B, 2>, teacher: Tensor<B, 2>, labels: Tensor<B, 1, Int>, margin: f64) -> Tensor<B, 1> {
    let [n, _] = anchor.dims();
    let (a, t) = (l2_normalize(anchor), l2_normalize(teacher));
    let positive = (a.clone() - t.clone()).square().sum_dim(1);
    let to_teacher = (a.matmul(t.transpose()).neg() + 1.0) * 2.0;
    let same = labels.clone().reshape([n, 1]).expand([n, n]).equal(labels.reshape([1, n]).expand([n, n]));
    let has_negative = same.clone().bool_not().int().sum_dim(1).greater_elem(0).float();
    // Squared distances of unit vectors are at most 4: 8 never wins the minimum.
    let negative = to_teacher.mask_fill(same, 8.0).min_dim(1);
    let hinge = (positive - negative + margin).clamp_min(0.0) * has_negative.clone();
    hinge.sum() / has_negative.sum().clamp_min(1.0)
}

/// Soft-label distillation (Hinton et al.): `T² · KL(softmax(teacher/T) ‖ softmax(student/T))`,
/// mean over the batch.
pub fn soft_label<B: Backend>(student_logits: Tensor<B, 2>, teacher_logits: Tensor<B, 2>, temperature: f64) -> Tensor<B, 1> {
    let [n, _] = student_logits.dims();
    let p_teacher = softmax(teacher_logits.clone() / temperature, 1);
    let kl = p_teacher * (log_softmax(teacher_logits / temperature, 1) - log_softmax(student_logits / temperature, 1));
    kl.sum() * (temperature * temperature / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    type B = burn::backend::Flex;

    fn t2(v: Vec<f32>, shape: [usize; 2]) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    fn ids(v: Vec<i64>) -> Tensor<B, 1, Int> {
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), &Default::default())
    }

    #[test]
    fn a_zero_row_normalises_to_zero_with_a_finite_gradient() {
        type A = burn::backend::Autodiff<B>;
        let x = Tensor::<A, 2>::from_data(TensorData::new(vec![0.0f32, 0.0, 3.0, 4.0], [2, 2]), &Default::default()).require_grad();
        let y = l2_normalize(x.clone());
        let grads = y.clone().sum().backward();
        let g = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        let y = y.into_data().to_vec::<f32>().unwrap();
        assert!(y[0] == 0.0 && y[1] == 0.0 && (y[2] - 0.6).abs() < 1e-6 && (y[3] - 0.8).abs() < 1e-6, "{y:?}");
    }

    #[test]
    fn template_mse_ignores_length_and_sees_direction() {
        let same: f32 = template_mse(t2(vec![3.0, 4.0], [1, 2]), t2(vec![0.6, 0.8], [1, 2])).into_scalar();
        assert!(same.abs() < 1e-6, "{same}");
        let orthogonal: f32 = template_mse(t2(vec![1.0, 0.0], [1, 2]), t2(vec![0.0, 2.0], [1, 2])).into_scalar();
        assert!((orthogonal - 1.0).abs() < 1e-6, "{orthogonal}");
    }

    #[test]
    fn elastic_arc_is_cross_entropy_of_scaled_cosines_with_the_margin_on_the_true_class() {
        // Embedding at 60° from class 0's centre and 30° from class 1's; true class 0, m = 0.5.
        let (a, b) = (60f32.to_radians(), 30f32.to_radians());
        let centres = t2(vec![1.0, b.cos(), 0.0, b.sin()], [2, 2]);
        let embedding = t2(vec![a.cos(), a.sin()], [1, 2]);
        let s = 4.0;
        let loss: f32 = elastic_arc(embedding, centres, ids(vec![0]), t2(vec![0.5], [1, 1]), s).into_scalar();
        let (own, other) = (s as f32 * (a + 0.5).cos(), s as f32 * (a - b).cos());
        let expected = -(own.exp() / (own.exp() + other.exp())).ln();
        assert!((loss - expected).abs() < 1e-4, "{loss} vs {expected}");
    }

    #[test]
    fn triplet_counts_only_violations_by_the_nearest_other_person() {
        // Anchor 0 sits on its own teacher embedding: no violation. Anchor 1 (person 1) is
        // nearer to person 0's teacher embedding than to its own: violation.
        let anchor = t2(vec![1.0, 0.0, 1.0, 0.1], [2, 2]);
        let teacher = t2(vec![1.0, 0.0, 0.0, 1.0], [2, 2]);
        let loss: f32 = triplet(anchor.clone(), teacher.clone(), ids(vec![0, 1]), 0.2).into_scalar();
        let a1 = [1.0f32, 0.1].map(|v| v / 1.01f32.sqrt());
        let (pos, neg) = ((a1[0]).powi(2) + (a1[1] - 1.0).powi(2), (a1[0] - 1.0).powi(2) + a1[1].powi(2));
        let expected = ((pos - neg + 0.2).max(0.0) + (0.0 - 2.0 + 0.2f32).max(0.0)) / 2.0;
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
        let alone: f32 = triplet(anchor, teacher, ids(vec![3, 3]), 0.2).into_scalar();
        assert_eq!(alone, 0.0, "nobody else in the batch: no term");
    }

    #[test]
    fn soft_label_is_zero_for_equal_logits_and_positive_otherwise() {
        let t = t2(vec![1.0, 2.0, 3.0], [1, 3]);
        let zero: f32 = soft_label(t.clone(), t.clone(), 4.0).into_scalar();
        assert!(zero.abs() < 1e-6, "{zero}");
        let apart: f32 = soft_label(t2(vec![3.0, 2.0, 1.0], [1, 3]), t, 4.0).into_scalar();
        assert!(apart > 0.01, "{apart}");
    }
}
