//! The joint objective: `λ_seg · CE(seg) + λ_id · CE(id)`.
//!
//! The segmentation term is a cross-entropy over *admissible sets*: a pixel's loss is
//! `-log Σ_{c ∈ A} p_c`. With a full 14-class mask `A` is the one true class and this is plain
//! cross-entropy; with a coarse hair/skin/background mask "skin" admits every face part; an
//! unlabelled pixel (or a sample without a mask) admits nothing and contributes nothing.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Mean over labelled pixels of `-log Σ_{c∈A} softmax(logits)_c`.
pub fn seg_loss<B: Backend>(logits: Tensor<B, 4>, admissible: Tensor<B, 4>, labelled: Tensor<B, 3>) -> Tensor<B, 1> {
    let log_p = log_softmax(logits, 1);
    // log(A) with 0 ↦ -1e4: exp(-1e4) is exactly 0 in f32, and no inf/NaN reaches the gradient.
    let masked = log_p + (admissible - 1.0) * 1e4;
    let max = masked.clone().max_dim(1);
    let lse = (masked - max.clone()).exp().sum_dim(1).log() + max;
    let nll = lse.squeeze_dim::<3>(1).neg() * labelled.clone();
    nll.sum() / labelled.sum().clamp_min(1.0)
}

pub fn id_loss<B: Backend>(logits: Tensor<B, 2>, identities: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    CrossEntropyLossConfig::new().init(&logits.device()).forward(logits, identities)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    type B = burn::backend::Flex;

    fn t4(v: Vec<f32>, shape: [usize; 4]) -> Tensor<B, 4> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    #[test]
    fn one_hot_sets_give_plain_cross_entropy_and_unlabelled_pixels_count_nothing() {
        // Two pixels, three classes, layout [class][pixel]. Pixel 0 is class 1; pixel 1 is unlabelled.
        let logits = t4(vec![1.0, 0.5, 3.0, 0.5, 2.0, 0.5], [1, 3, 1, 2]);
        let admissible = t4(vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [1, 3, 1, 2]);
        let labelled = Tensor::<B, 3>::from_data(TensorData::new(vec![1.0f32, 0.0], [1, 1, 2]), &Default::default());
        let loss: f32 = seg_loss(logits, admissible, labelled).into_scalar();
        let expected = -(3.0f32.exp() / (1.0f32.exp() + 3.0f32.exp() + 2.0f32.exp())).ln();
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn a_set_admitting_every_class_costs_nothing() {
        let logits = t4(vec![0.3, -2.0, 5.0], [1, 3, 1, 1]);
        let admissible = t4(vec![1.0; 3], [1, 3, 1, 1]);
        let labelled = Tensor::<B, 3>::ones([1, 1, 1], &Default::default());
        let loss: f32 = seg_loss(logits, admissible, labelled).into_scalar();
        assert!(loss.abs() < 1e-5, "{loss}");
    }
}
