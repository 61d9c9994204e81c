//! ONNX export of the refiner: input `crop` `[1, 3, S, S]` (normalised as [`NORMALIZATION`]),
//! output `landmarks` `[1, 10]`; batch norm folded into the convolutions. The manifest entry
//! that describes it is made here too, so its contract cannot drift from the export.

use super::data::NORMALIZATION;
use super::model::RefinerNet;
use crate::export::{GraphBuilder, int, tensor_type, values};
use burn::prelude::*;
use faceunlock_core::contract::{RefinerEntry, TensorSpec};
use tract_onnx::pb;

pub const INPUT_NAME: &str = "crop";
pub const OUTPUT_NAME: &str = "landmarks";

/// `crop`: the input side the net was configured for ([`super::model::RefinerConfig::crop`]).
pub fn export_refiner<B: Backend>(net: &RefinerNet<B>, crop: usize) -> Vec<u8> {
    let mut g = GraphBuilder::default();
    let mut x = g.conv_bn(INPUT_NAME.into(), &net.stem);
    for block in &net.blocks {
        x = g.conv_bn(x, &block.depthwise);
        x = g.conv_bn(x, &block.pointwise);
    }
    let flat = g.node("Flatten", vec![x], vec![int("axis", 1)]);
    let wdims = net.head.weight.dims();
    let w = g.constant("head_w", &wdims, values(&net.head.weight.val()));
    let b = g.constant("head_b", &[wdims[1]], net.head.bias.as_ref().map_or_else(|| vec![0.0; wdims[1]], |b| values(&b.val())));
    g.node("Gemm", vec![flat, w, b], vec![]);
    g.name_last_output(OUTPUT_NAME);
    let (input, output) = contract(crop);
    let value = |t: &TensorSpec| pb::ValueInfoProto { name: t.name.clone(), r#type: Some(tensor_type(&t.shape)), ..Default::default() };
    g.finish("faceunlock_refiner", vec![value(&input)], vec![value(&output)])
}

pub fn contract(crop: usize) -> (TensorSpec, TensorSpec) {
    (TensorSpec { name: INPUT_NAME.into(), shape: vec![1, 3, crop, crop] }, TensorSpec { name: OUTPUT_NAME.into(), shape: vec![1, 10] })
}

/// The manifest entry of an exported refiner with crop side `crop`, stored as `file`.
pub fn refiner_entry(file: &str, sha256: String, crop: usize, passes: u32) -> RefinerEntry {
    let (input, output) = contract(crop);
    RefinerEntry { file: file.into(), sha256, input, output, normalization: NORMALIZATION, passes, provenance: Default::default() }
}

/// An exported refiner file with the contract its own input declares, applied `passes` times.
pub fn refiner_file(path: &std::path::Path, passes: u32) -> anyhow::Result<crate::landmarks::RefinerFile> {
    use tract_onnx::prelude::*;
    anyhow::ensure!(passes > 0, "--passes 0: expected at least one refiner pass");
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let model = tract_onnx::onnx().model_for_read(&mut &bytes[..]).map_err(|e| anyhow::anyhow!("{}: not an ONNX model: {e}", path.display()))?;
    let shape = model.input_fact(0).ok().and_then(|f| f.shape.as_concrete_finite().ok().flatten()).map(|s| s.to_vec());
    let crop = match shape.as_deref() {
        Some([1, 3, h, w]) if h == w => *h,
        other => anyhow::bail!("{}: input shape {other:?}, expected a refiner's [1, 3, S, S]", path.display()),
    };
    let file = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| anyhow::anyhow!("{}: no file name", path.display()))?;
    Ok(crate::landmarks::RefinerFile { path: path.into(), entry: refiner_entry(file, faceunlock_core::contract::sha256_hex(&bytes), crop, passes) })
}
