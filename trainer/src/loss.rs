//! The joint objective: `λ_seg · CE(seg) + λ_id · CE(id)`, the ID term either a softmax
//! cross-entropy or, with an angular margin, ArcFace's ([`elastic_arc`] with one margin for all).
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

/// Rows scaled to unit length; a zero row stays zero. The ε inside the root keeps the gradient
/// finite there (√ has an infinite slope at 0: a dead ReLU embedding, a class without images).
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = (x.clone().square().sum_dim(1) + 1e-12).sqrt();
    x / norm
}

/// Columns scaled to unit length (class centres stored as `[embedding, classes]`).
pub fn unit_columns<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    l2_normalize(x.transpose()).transpose()
}

/// ElasticFace-Arc: ArcFace's additive angular margin with the margin drawn per sample
/// (`margins`, `[batch, 1]`): logits `s·cos(θ_y + m)` for the true class, `s·cos θ_j` for the
/// others, then cross-entropy. `centres` is `[embedding, classes]`. Where `θ_y + m` would pass π
/// the logit is ArcFace's linear continuation `cos θ_y − m·sin m`, so it stays monotone.
pub fn elastic_arc<B: Backend>(embedding: Tensor<B, 2>, centres: Tensor<B, 2>, labels: Tensor<B, 1, Int>, margins: Tensor<B, 2>, scale: f64) -> Tensor<B, 1> {
    let [_, classes] = centres.dims();
    let cos = l2_normalize(embedding).matmul(unit_columns(centres)).clamp(-1.0 + 1e-6, 1.0 - 1e-6);
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

pub fn id_loss<B: Backend>(logits: Tensor<B, 2>, identities: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    CrossEntropyLossConfig::new().init(&logits.device()).forward(logits, identities)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::tensor::TensorData;
    pub(crate) type B = burn::backend::Flex;

    pub(crate) fn t2(v: Vec<f32>, shape: [usize; 2]) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    pub(crate) fn ids(v: Vec<i64>) -> Tensor<B, 1, Int> {
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), &Default::default())
    }

    fn t4(v: Vec<f32>, shape: [usize; 4]) -> Tensor<B, 4> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
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
