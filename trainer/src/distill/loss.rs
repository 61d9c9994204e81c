//! The students' loss terms: template distillation (MaskInv), the triplet distillation loss and
//! soft-label distillation (Georgescu et al.); ElasticFace-Arc is [`crate::loss::elastic_arc`].

use crate::loss::l2_normalize;
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

/// MaskInv's template term: mean squared difference of the unit-length embeddings.
pub fn template_mse<B: Backend>(student: Tensor<B, 2>, teacher: Tensor<B, 2>) -> Tensor<B, 1> {
    (l2_normalize(student) - l2_normalize(teacher)).square().mean()
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
    use crate::loss::tests::{ids, t2};

    #[test]
    fn template_mse_ignores_length_and_sees_direction() {
        let same: f32 = template_mse(t2(vec![3.0, 4.0], [1, 2]), t2(vec![0.6, 0.8], [1, 2])).into_scalar();
        assert!(same.abs() < 1e-6, "{same}");
        let orthogonal: f32 = template_mse(t2(vec![1.0, 0.0], [1, 2]), t2(vec![0.0, 2.0], [1, 2])).into_scalar();
        assert!((orthogonal - 1.0).abs() < 1e-6, "{orthogonal}");
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
