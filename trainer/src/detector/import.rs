//! Starting a detector run from an exported detector (`export-detector`'s ONNX, e.g. the shipped
//! `models/detector.onnx`) instead of a Burn run directory: a new schedule (more data, another
//! input size) needs no checkpoint that a lost machine took with it.
//!
//! The export folds each batch norm into its convolution (`y = W'x + b'`). Unfolding sets the
//! convolution to `W'` and the batch norm to `γ = √(v + ε)`, `β = m + b'`, running mean `m` and
//! variance `v`, where `m` and `v` are the per-channel mean and variance of `W'x` on a calibration
//! batch: exact in inference (`(W'x − m)/√(v + ε)·γ + β = W'x + b'`), and close in training,
//! where the batch norm uses the batch's own statistics, which for batches like the calibration
//! one are about `m` and `v`. The plain 1×1 convolutions of the heads are copied as they are.

use super::model::DetectorNet;
use crate::export::initializer_floats;
use crate::model::mobilenet::ConvBn;
use anyhow::{Context, Result, anyhow, bail, ensure};
use burn::module::{AutodiffModule, Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use prost::Message;
use std::collections::HashMap;
use std::path::Path;
use tract_onnx::pb;

/// A convolution of the file: folded weight and bias, in graph order.
struct FileConv {
    node: String,
    dims: Vec<usize>,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

/// The file's `Conv` nodes in graph order, each with its weight and bias initializers.
fn file_convs(bytes: &[u8]) -> Result<Vec<FileConv>> {
    let model = pb::ModelProto::decode(bytes).map_err(|e| anyhow!("not an ONNX model: {e}"))?;
    let graph = model.graph.ok_or_else(|| anyhow!("an ONNX model without a graph"))?;
    let initializers: HashMap<&str, &pb::TensorProto> = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let tensor = |node: &pb::NodeProto, k: usize| -> Result<&pb::TensorProto> {
        let name = node.input.get(k).ok_or_else(|| anyhow!("Conv node `{}` has no input {k} (weight, bias expected)", node.name))?;
        initializers.get(name.as_str()).copied().ok_or_else(|| anyhow!("Conv node `{}`: input `{name}` is not an initializer", node.name))
    };
    graph
        .node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .map(|n| {
            let (w, b) = (tensor(n, 1)?, tensor(n, 2)?);
            Ok(FileConv { node: n.name.clone(), dims: w.dims.iter().map(|d| *d as usize).collect(), weight: initializer_floats(w)?, bias: initializer_floats(b)? })
        })
        .collect()
}

/// Hands the file's convolutions out in order, checking each against the unit it fills.
struct Convs(std::iter::Enumerate<std::vec::IntoIter<FileConv>>);

impl Convs {
    fn next(&mut self, expected: [usize; 4]) -> Result<FileConv> {
        let (k, conv) = self.0.next().ok_or_else(|| anyhow!("the file has fewer convolutions than this architecture"))?;
        if conv.dims != expected || conv.bias.len() != expected[0] {
            bail!("convolution {k} (node `{}`) has weight {:?} and {} biases; this architecture expects {expected:?}", conv.node, conv.dims, conv.bias.len());
        }
        Ok(conv)
    }

    fn plain<B: Backend>(&mut self, target: &mut Conv2d<B>) -> Result<()> {
        let device = target.weight.val().device();
        let conv = self.next(target.weight.dims())?;
        let c = conv.dims[0];
        target.weight = Param::from_tensor(Tensor::from_data(TensorData::new(conv.weight, conv.dims), &device));
        target.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(conv.bias, [c]), &device)));
        Ok(())
    }

    /// `W'` into the convolution; the batch norm an identity that adds `b'` (calibrated later).
    fn folded<B: Backend>(&mut self, target: &mut ConvBn<B>) -> Result<()> {
        ensure!(target.conv.bias.is_none(), "a batch-normed convolution with its own bias");
        let device = target.conv.weight.val().device();
        let conv = self.next(target.conv.weight.dims())?;
        let c = conv.dims[0];
        target.conv.weight = Param::from_tensor(Tensor::from_data(TensorData::new(conv.weight, conv.dims), &device));
        let eps = target.bn.epsilon;
        target.bn.gamma = Param::from_tensor(Tensor::ones([c], &device));
        target.bn.beta = Param::from_tensor(Tensor::from_data(TensorData::new(conv.bias, [c]), &device));
        target.bn.running_mean = RunningState::new(Tensor::zeros([c], &device));
        target.bn.running_var = RunningState::new(Tensor::full([c], 1.0 - eps, &device));
        Ok(())
    }
}

/// Per-channel mean and (biased) variance of `[N, C, H, W]`.
fn channel_statistics<B: Backend>(z: Tensor<B, 4>) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let c = z.dims()[1];
    let per_channel = z.swap_dims(0, 1).reshape([c as i32, -1]);
    let mean = per_channel.clone().mean_dim(1);
    let var = (per_channel - mean.clone()).square().mean_dim(1);
    (mean.reshape([c]), var.reshape([c]))
}

/// Re-express each unit's batch norm around the statistics its convolution's output has on
/// `images` (the function stays the same in inference).
fn calibrate<B: Backend>(net: &mut DetectorNet<B>, images: Tensor<B, 4>) {
    let mut statistics = Vec::new();
    net.forward_showing(images, &mut |unit, x| statistics.push(channel_statistics(unit.conv.forward(x.clone()))));
    let mut statistics = statistics.into_iter();
    visit_units(net, &mut |unit| {
        let (mean, var) = statistics.next().expect("the forward pass shows every unit once");
        let eps = unit.bn.epsilon;
        unit.bn.gamma = Param::from_tensor(var.clone().add_scalar(eps).sqrt());
        unit.bn.beta = Param::from_tensor(unit.bn.beta.val() + mean.clone());
        unit.bn.running_mean = RunningState::new(mean);
        unit.bn.running_var = RunningState::new(var);
    });
}

/// Every batch-normed unit, in [`DetectorNet::forward_showing`]'s order.
fn visit_units<B: Backend>(net: &mut DetectorNet<B>, f: &mut impl FnMut(&mut ConvBn<B>)) {
    f(&mut net.stem);
    for block in net.stages.iter_mut().flatten() {
        f(&mut block.depthwise);
        f(&mut block.pointwise);
    }
    for project in net.top_down.iter_mut().rev() {
        f(project);
    }
    for head in &mut net.heads {
        f(&mut head.context);
    }
}

/// `net` (a fresh one of the file's architecture) with the weights of the exported detector in
/// `bytes`, its batch norms calibrated on `images` (`[N, 3, H, W]` BGR 0..255, a training batch).
pub fn from_export<B: Backend>(mut net: DetectorNet<B>, bytes: &[u8], images: Tensor<B, 4>) -> Result<DetectorNet<B>> {
    let mut convs = Convs(file_convs(bytes)?.into_iter().enumerate());
    convs.folded(&mut net.stem)?;
    for block in net.stages.iter_mut().flatten() {
        convs.folded(&mut block.depthwise)?;
        convs.folded(&mut block.pointwise)?;
    }
    for project in net.top_down.iter_mut().rev() {
        convs.folded(project)?;
    }
    for head in &mut net.heads {
        convs.folded(&mut head.context)?;
        convs.plain(&mut head.score)?;
        convs.plain(&mut head.bbox)?;
        convs.plain(&mut head.kps)?;
    }
    if let Some((k, _)) = convs.0.next() {
        bail!("the file has more convolutions than this architecture (convolution {k} is left over)");
    }
    calibrate(&mut net, images);
    Ok(net)
}

/// [`from_export`] into `net`, a fresh model to train: imported and calibrated in inference,
/// then loaded into `net`, whose parameters keep requiring gradients (a module brought back from
/// inference with `from_inner` would not).
pub fn trainable<B: AutodiffBackend>(net: DetectorNet<B>, bytes: &[u8], images: Tensor<B::InnerBackend, 4>) -> Result<DetectorNet<B>> {
    let imported = from_export(net.valid(), bytes, images)?;
    Ok(net.load_record(DetectorNet::<B>::from_inner(imported).into_record()))
}

/// [`trainable`] from the file at `path`, naming it in any error.
pub fn trainable_from_file<B: AutodiffBackend>(net: DetectorNet<B>, path: &Path, images: Tensor<B::InnerBackend, 4>) -> Result<DetectorNet<B>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    trainable(net, &bytes, images).with_context(|| format!("{}: expected a detector exported by `faceunlock-train export-detector` with this run's --kernel and --top-down", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::export::export_detector;
    use crate::detector::model::{DetectorConfig, PIXEL_OFFSET, PIXEL_SCALE};
    use burn::tensor::Distribution;
    type B = burn::backend::Flex;

    /// A detector with every weight and batch-norm statistic random (a fresh one's batch norms
    /// are identities, which would hide a wrong unfolding).
    fn trained_looking(cfg: &DetectorConfig) -> DetectorNet<B> {
        let device = Default::default();
        let mut net = cfg.init::<B>(&device);
        let random = |c: usize, low: f64, high: f64| Tensor::<B, 1>::random([c], Distribution::Uniform(low, high), &device);
        visit_units(&mut net, &mut |unit| {
            let c = unit.bn.gamma.dims()[0];
            unit.bn.gamma = Param::from_tensor(random(c, 0.5, 1.5));
            unit.bn.beta = Param::from_tensor(random(c, -0.5, 0.5));
            unit.bn.running_mean = RunningState::new(random(c, -0.3, 0.3));
            unit.bn.running_var = RunningState::new(random(c, 0.5, 2.0));
        });
        net
    }

    fn outputs(net: &DetectorNet<B>, images: Tensor<B, 4>) -> Vec<f32> {
        net.forward(images).into_iter().flat_map(|l| [l.score, l.bbox, l.kps]).flat_map(|t| t.into_data().to_vec::<f32>().unwrap()).collect()
    }

    fn images(seed: u64) -> Tensor<B, 4> {
        <B as Backend>::seed(&Default::default(), seed);
        Tensor::random([4, 3, 64, 96], Distribution::Uniform(0.0, 255.0), &Default::default())
    }

    #[test]
    fn an_exported_detector_imports_to_the_same_outputs_with_batch_norms_at_the_batchs_statistics() {
        let cfg = DetectorConfig::new().with_top_down(Some(true));
        let trained = trained_looking(&cfg);
        let file = export_detector(&trained, 0.0);
        let imported = from_export(cfg.init::<B>(&Default::default()), &file, images(1)).unwrap();
        let (theirs, ours) = (outputs(&trained, images(2)), outputs(&imported, images(2)));
        let worst = theirs.iter().zip(&ours).map(|(a, b)| (a - b).abs() / (1.0 + a.abs())).fold(0.0, f32::max);
        assert!(worst < 1e-4, "largest relative difference {worst}");
        // Calibrated: each unit's running mean is its convolution's mean output on the batch.
        let stem_mean: Vec<f32> = imported.stem.bn.running_mean.value().into_data().to_vec().unwrap();
        let x = images(1).mul_scalar(PIXEL_SCALE).add_scalar(PIXEL_OFFSET);
        let expected: Vec<f32> = channel_statistics(imported.stem.conv.forward(x)).0.into_data().to_vec().unwrap();
        assert_eq!(stem_mean, expected);
    }

    #[test]
    fn an_imported_detector_trains() {
        type A = burn::backend::Autodiff<B>;
        let cfg = DetectorConfig::new();
        let file = export_detector(&trained_looking(&cfg), 0.0);
        let net = trainable(cfg.init::<A>(&Default::default()), &file, images(1)).unwrap();
        let level = net.forward(Tensor::from_inner(images(2))).remove(0);
        let grads = (level.score.sum() + level.kps.sum()).backward();
        assert!(net.stem.conv.weight.grad(&grads).is_some(), "no gradient reaches the stem");
        assert!(net.heads[0].kps.weight.grad(&grads).is_some(), "no gradient reaches the landmark head");
    }

    #[test]
    fn a_detector_of_another_architecture_is_refused_naming_the_convolution() {
        let file = export_detector(&trained_looking(&DetectorConfig::new().with_kernel(3)), 0.0);
        let err = from_export(DetectorConfig::new().init::<B>(&Default::default()), &file, images(1)).unwrap_err().to_string();
        assert!(err.contains("convolution 1") && err.contains("[16, 1, 5, 5]"), "{err}");
        assert!(from_export(DetectorConfig::new().init::<B>(&Default::default()), b"not onnx", images(1)).unwrap_err().to_string().contains("not an ONNX model"));
    }
}
