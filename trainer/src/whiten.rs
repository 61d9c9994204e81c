//! Whitening an exported embedder (`faceunlock-train whiten`): the embedding is taken before the
//! embedding layer's ReLU (if it has one), centred and whitened with statistics of training faces, and the whole
//! affine map folded into the embedding layer's `Gemm`: the model keeps its tensor contract and
//! its parameter count.
//!
//! Why: trained through a softmax on `ReLU(x·W + b)`, the layer can leave most of its units dead
//! on real faces (93 of 128 never fire on LFW for the 7-epoch embedder, `docs/ablation.md`), and
//! cosine similarity over the few live ones puts unrelated people close together. Before the
//! ReLU every unit varies; whitening then weighs each direction by how much faces vary along it.
//!
//! ```
//! use trainer::whiten::Whitening;
//! // Two correlated coordinates: whitened, they are uncorrelated with unit variance.
//! let data: Vec<Vec<f32>> = (0..200).map(|i| { let t = (i as f32 * 0.37).sin(); vec![t, 2.0 * t + 0.1 * (i as f32).cos()] }).collect();
//! let w = Whitening::fit(&data, 1e-9).unwrap();
//! let out: Vec<Vec<f32>> = data.iter().map(|e| w.apply(e)).collect();
//! let var0 = out.iter().map(|o| o[0] * o[0]).sum::<f32>() / 199.0;
//! assert!((var0 - 1.0).abs() < 1e-3);
//! ```

use anyhow::{Context, Result, bail, ensure};
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use tract_onnx::pb;

/// The map `e ↦ (e − mean) · projection`.
#[derive(Clone, Debug)]
pub struct Whitening {
    pub mean: DVector<f64>,
    /// `dim × dim`: principal directions as columns, each scaled by `1/√(λ + eps·λ_max)`.
    pub projection: DMatrix<f64>,
    /// Eigenvalues of the embeddings' covariance, largest first.
    pub eigenvalues: Vec<f64>,
}

impl Whitening {
    /// Fit on `embeddings` (all of one length). `eps`, relative to the largest eigenvalue, keeps
    /// directions in which faces hardly vary from being blown up.
    pub fn fit(embeddings: &[Vec<f32>], eps: f64) -> Result<Self> {
        ensure!(eps > 0.0, "whitening: eps must be positive, got {eps}");
        let n = embeddings.len();
        ensure!(n > 1, "whitening needs at least two embeddings, got {n}");
        let dim = embeddings[0].len();
        if let Some(bad) = embeddings.iter().find(|e| e.len() != dim) {
            bail!("whitening: embeddings of {dim} values expected, found one of {}", bad.len());
        }
        let x = DMatrix::from_fn(n, dim, |i, j| embeddings[i][j] as f64);
        let mean: DVector<f64> = x.row_mean().transpose();
        let centred = DMatrix::from_fn(n, dim, |i, j| x[(i, j)] - mean[j]);
        let covariance = centred.transpose() * &centred / (n - 1) as f64;
        let eig = SymmetricEigen::new(covariance);
        let largest = eig.eigenvalues.max();
        ensure!(largest > 0.0, "whitening: all {n} embeddings are equal");
        let scale = eig.eigenvalues.map(|l| 1.0 / (l.max(0.0) + eps * largest).sqrt());
        let projection = &eig.eigenvectors * DMatrix::from_diagonal(&scale);
        let mut eigenvalues: Vec<f64> = eig.eigenvalues.iter().copied().collect();
        eigenvalues.sort_by(|a, b| b.total_cmp(a));
        Ok(Self { mean, projection, eigenvalues })
    }

    pub fn apply(&self, e: &[f32]) -> Vec<f32> {
        let centred = DVector::from_iterator(e.len(), e.iter().zip(self.mean.iter()).map(|(v, m)| *v as f64 - m));
        (self.projection.transpose() * centred).iter().map(|v| *v as f32).collect()
    }
}

/// The node writing the graph's (single) output, and that output's name.
fn output_node(graph: &pb::GraphProto) -> Result<(usize, String)> {
    let output = graph.output.first().context("the model has no output")?.name.clone();
    let at = graph.node.iter().position(|n| n.output.contains(&output)).with_context(|| format!("no node writes the output `{output}`"))?;
    Ok((at, output))
}

/// Make the embedding layer's `Gemm` write the output: remove a final `Relu` on it (an embedder
/// trained with a softmax) or check there is none (one trained with an angular margin). Returns
/// whether a `Relu` was removed.
pub fn take_pre_activation(model: &mut pb::ModelProto) -> Result<bool> {
    let graph = model.graph.as_mut().context("the ONNX model has no graph")?;
    let (at, output) = output_node(graph)?;
    let last = &graph.node[at];
    let relu = match last.op_type.as_str() {
        "Gemm" => return Ok(false),
        "Relu" => at,
        other => bail!("expected the embedding `{output}` to come out of the embedding layer's Gemm or a Relu on it (an embedder as `faceunlock-train export` writes it), found {other}"),
    };
    let pre = graph.node[relu].input.first().context("a Relu without input")?.clone();
    graph.node.remove(relu);
    let gemm = graph.node.iter_mut().find(|n| n.output.contains(&pre)).with_context(|| format!("no node writes `{pre}`"))?;
    ensure!(gemm.op_type == "Gemm", "expected the Relu's input to come out of the embedding layer's Gemm, found {}", gemm.op_type);
    gemm.output = vec![output];
    Ok(true)
}

/// The float values of initializer `name`, whichever field holds them.
fn floats(graph: &pb::GraphProto, name: &str) -> Result<(Vec<i64>, Vec<f32>)> {
    let t = graph.initializer.iter().find(|t| t.name == name).with_context(|| format!("`{name}` is not an initializer"))?;
    Ok((t.dims.clone(), crate::export::initializer_floats(t)?))
}

fn set_floats(graph: &mut pb::GraphProto, name: &str, values: Vec<f32>) {
    if let Some(t) = graph.initializer.iter_mut().find(|t| t.name == name) {
        t.raw_data.clear();
        t.float_data = values;
    }
}

/// Fold `w` into the `Gemm` writing the output (`y = x·W + b`, no attributes, as our exporter
/// writes it): `W ← W·P`, `b ← (b − mean)·P`.
pub fn fold_into_gemm(model: &mut pb::ModelProto, w: &Whitening) -> Result<()> {
    let graph = model.graph.as_mut().context("the ONNX model has no graph")?;
    let (at, output) = output_node(graph)?;
    let gemm = &graph.node[at];
    ensure!(gemm.op_type == "Gemm" && gemm.attribute.is_empty(), "expected `{output}` to come out of a plain Gemm (x·W + b), found {} with {} attribute(s)", gemm.op_type, gemm.attribute.len());
    let [_, w_name, b_name] = gemm.input.as_slice() else { bail!("the Gemm writing `{output}` has {} inputs, expected x, W and b", gemm.input.len()) };
    let (w_name, b_name) = (w_name.clone(), b_name.clone());
    let (dims, weights) = floats(graph, &w_name)?;
    let (_, bias) = floats(graph, &b_name)?;
    let dim = w.mean.len();
    let [rows, cols] = dims.as_slice() else { bail!("`{w_name}`: expected a matrix, found dims {dims:?}") };
    ensure!(*cols as usize == dim && bias.len() == dim, "the embedding layer has {cols} outputs and {} biases; the whitening was fitted on {dim}", bias.len());
    let weights = DMatrix::from_row_slice(*rows as usize, dim, &weights.iter().map(|v| *v as f64).collect::<Vec<_>>());
    let folded = weights * &w.projection;
    let bias = w.apply(&bias);
    set_floats(graph, &w_name, folded.transpose().iter().map(|v| *v as f32).collect());
    set_floats(graph, &b_name, bias);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{GraphBuilder, tensor_type};
    use prost::Message;
    use tract_onnx::prelude::*;

    /// `x [1, 4] → Gemm(W [4, 3], b) → Relu → embedding`, as the exporter ends an embedder.
    fn tiny_embedder(w: &[f32], b: &[f32]) -> pb::ModelProto {
        let mut g = GraphBuilder::default();
        let (wn, bn) = (g.constant("embed_w", &[4, 3], w.to_vec()), g.constant("embed_b", &[3], b.to_vec()));
        let gemm = g.node("Gemm", vec!["x".into(), wn, bn], vec![]);
        g.node("Relu", vec![gemm], vec![]);
        g.name_last_output("embedding");
        let value = |name: &str, dims: &[usize]| pb::ValueInfoProto { name: name.into(), r#type: Some(tensor_type(dims)), ..Default::default() };
        pb::ModelProto::decode(g.finish("tiny", vec![value("x", &[1, 4])], vec![value("embedding", &[1, 3])]).as_slice()).unwrap()
    }

    fn run(model: &pb::ModelProto, x: &[f32]) -> Vec<f32> {
        let plan = tract_onnx::onnx().model_for_read(&mut model.encode_to_vec().as_slice()).unwrap().into_optimized().unwrap().into_runnable().unwrap();
        let out = plan.run(tvec!(Tensor::from_shape(&[1, 4], x).unwrap().into())).unwrap();
        out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
    }

    #[test]
    fn the_folded_model_outputs_the_whitened_pre_activation() {
        let w: Vec<f32> = (0..12).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.3).collect();
        let b = [0.5, -1.0, 0.25];
        let mut model = tiny_embedder(&w, &b);
        let x = [1.0, -2.0, 0.5, 3.0];
        assert!(run(&model, &x).iter().all(|v| *v >= 0.0), "the original ends in a ReLU");
        assert!(take_pre_activation(&mut model).unwrap(), "the Relu is removed");
        let pre = run(&model, &x);
        let expected_pre: Vec<f32> = (0..3).map(|j| b[j] + (0..4).map(|i| x[i] * w[i * 3 + j]).sum::<f32>()).collect();
        assert!(pre.iter().zip(&expected_pre).all(|(a, e)| (a - e).abs() < 1e-5), "{pre:?} vs {expected_pre:?}");
        assert!(pre.iter().any(|v| *v < 0.0), "this input has a negative pre-activation: {pre:?}");
        let fit_on: Vec<Vec<f32>> = (0..50).map(|k| (0..3).map(|j| ((k * (j + 2)) as f32 * 0.71).sin() * (j + 1) as f32).collect()).collect();
        let whitening = Whitening::fit(&fit_on, 1e-6).unwrap();
        fold_into_gemm(&mut model, &whitening).unwrap();
        let folded = run(&model, &x);
        let expected = whitening.apply(&pre);
        assert!(folded.iter().zip(&expected).all(|(a, e)| (a - e).abs() < 1e-4), "{folded:?} vs {expected:?}");
    }

    #[test]
    fn an_embedding_straight_out_of_the_gemm_is_kept_and_anything_else_refused() {
        let mut model = tiny_embedder(&[0.0; 12], &[0.0; 3]);
        assert!(take_pre_activation(&mut model).unwrap());
        let before = model.clone();
        assert!(!take_pre_activation(&mut model).unwrap(), "no Relu left to remove");
        assert_eq!(model, before);
        let graph = model.graph.as_mut().unwrap();
        graph.node.last_mut().unwrap().op_type = "Sigmoid".into();
        let e = take_pre_activation(&mut model).unwrap_err().to_string();
        assert!(e.contains("to come out of the embedding layer's Gemm or a Relu on it") && e.contains("found Sigmoid"), "{e}");
    }

    #[test]
    fn fitting_needs_varied_embeddings_of_one_length() {
        assert!(Whitening::fit(&[vec![1.0, 2.0], vec![1.0, 2.0]], 1e-3).unwrap_err().to_string().contains("are equal"));
        assert!(Whitening::fit(&[vec![1.0, 2.0], vec![1.0]], 1e-3).unwrap_err().to_string().contains("found one of 1"));
    }
}
