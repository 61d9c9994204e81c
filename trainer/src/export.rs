//! ONNX export of the shipped path: encoder → global average pool → embedding layer + ReLU
//! (`crate::whiten` then takes the embedding before that ReLU, for the shipped file).
//!
//! Written directly as ONNX protobuf (opset 13) with batch norm folded into every convolution
//! and ReLU6 as `Clip(0, 6)`. The signature takes only the encoder and the ID head, so the
//! segmentation teacher cannot leak into the shipped model; the ID classifier is left out too.

use crate::model::mobilenet::ConvBn;
use crate::model::{Encoder, IdHead};
use burn::prelude::*;
use faceunlock_core::geometry::CROP_SIZE;
use prost::Message;
use tract_onnx::pb;

pub const INPUT_NAME: &str = "image";
pub const OUTPUT_NAME: &str = "embedding";
const OPSET: i64 = 13;

pub(crate) fn values<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Vec<f32> {
    t.to_data().convert::<f32>().to_vec::<f32>().expect("f32 tensor data")
}

/// The float values of an initializer, whichever field holds them (`float_data` as our exporter
/// writes them, `raw_data` little-endian as other tools do).
pub(crate) fn initializer_floats(t: &pb::TensorProto) -> anyhow::Result<Vec<f32>> {
    anyhow::ensure!(t.data_type == pb::tensor_proto::DataType::Float as i32, "`{}`: expected float data", t.name);
    Ok(if t.raw_data.is_empty() { t.float_data.clone() } else { t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect() })
}

/// A float tensor type; each dimension fixed (`Ok`) or named (`Err`, a symbolic size).
pub(crate) fn tensor_type_named(dims: &[Result<usize, &str>]) -> pb::TypeProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = |d: &Result<usize, &str>| match d {
        Ok(n) => Value::DimValue(*n as i64),
        Err(name) => Value::DimParam(name.to_string()),
    };
    pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type: pb::tensor_proto::DataType::Float as i32,
            shape: Some(pb::TensorShapeProto {
                dim: dims.iter().map(|d| Dimension { value: Some(dim(d)), ..Default::default() }).collect(),
            }),
        })),
        ..Default::default()
    }
}

pub(crate) fn tensor_type(dims: &[usize]) -> pb::TypeProto {
    tensor_type_named(&dims.iter().map(|d| Ok(*d)).collect::<Vec<_>>())
}

pub(crate) fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: pb::attribute_proto::AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

pub(crate) fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: pb::attribute_proto::AttributeType::Int as i32, i: v, ..Default::default() }
}

pub(crate) fn text(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: pb::attribute_proto::AttributeType::String as i32, s: v.as_bytes().to_vec(), ..Default::default() }
}

#[derive(Default)]
pub(crate) struct GraphBuilder {
    pub(crate) nodes: Vec<pb::NodeProto>,
    pub(crate) initializers: Vec<pb::TensorProto>,
    count: usize,
}

impl GraphBuilder {
    pub(crate) fn constant(&mut self, prefix: &str, dims: &[usize], data: Vec<f32>) -> String {
        let name = format!("{prefix}_{}", self.initializers.len());
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|d| *d as i64).collect(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            float_data: data,
            ..Default::default()
        });
        name
    }

    pub(crate) fn node(&mut self, op: &str, inputs: Vec<String>, attributes: Vec<pb::AttributeProto>) -> String {
        self.count += 1;
        let out = format!("{}_{}", op.to_lowercase(), self.count);
        self.nodes.push(pb::NodeProto {
            name: format!("{op}_{}", self.count),
            op_type: op.into(),
            input: inputs,
            output: vec![out.clone()],
            attribute: attributes,
            ..Default::default()
        });
        out
    }

    pub(crate) fn constant_i64(&mut self, prefix: &str, data: Vec<i64>) -> String {
        let name = format!("{prefix}_{}", self.initializers.len());
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            dims: vec![data.len() as i64],
            data_type: pb::tensor_proto::DataType::Int64 as i32,
            int64_data: data,
            ..Default::default()
        });
        name
    }

    /// Rename the last node's output to a graph output name.
    pub(crate) fn name_last_output(&mut self, name: &str) -> String {
        self.nodes.last_mut().expect("a node was added").output = vec![name.into()];
        name.into()
    }

    /// A plain convolution with its bias (padding `k/2`).
    pub(crate) fn conv<B: Backend>(&mut self, x: String, conv: &burn::nn::conv::Conv2d<B>) -> String {
        let dims = conv.weight.dims();
        let w = self.constant("w", &dims, values(&conv.weight.val()));
        let b = self.constant("b", &[dims[0]], conv.bias.as_ref().map_or_else(|| vec![0.0; dims[0]], |b| values(&b.val())));
        self.conv_node(x, w, b, conv.kernel_size, conv.stride, conv.groups)
    }

    fn conv_node(&mut self, x: String, w: String, b: String, k: [usize; 2], stride: [usize; 2], groups: usize) -> String {
        let p = (k[0] / 2) as i64;
        self.node(
            "Conv",
            vec![x, w, b],
            vec![
                ints("kernel_shape", &[k[0] as i64, k[1] as i64]),
                ints("strides", &stride.map(|s| s as i64)),
                ints("pads", &[p, p, p, p]),
                ints("dilations", &[1, 1]),
                int("group", groups as i64),
            ],
        )
    }

    /// The serialised model (opset 13) of this graph.
    pub(crate) fn finish(self, name: &str, inputs: Vec<pb::ValueInfoProto>, outputs: Vec<pb::ValueInfoProto>) -> Vec<u8> {
        let graph = pb::GraphProto { name: name.into(), node: self.nodes, initializer: self.initializers, input: inputs, output: outputs, ..Default::default() };
        pb::ModelProto {
            ir_version: 7,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: "faceunlock-train".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(graph),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// Conv with the batch norm folded in: `W' = W·s`, `b' = β − μ·s`, `s = γ/√(σ²+ε)`.
    pub(crate) fn conv_bn<B: Backend>(&mut self, x: String, cb: &ConvBn<B>) -> String {
        let w = values(&cb.conv.weight.val());
        let dims = cb.conv.weight.dims();
        let (gamma, beta) = (values(&cb.bn.gamma.val()), values(&cb.bn.beta.val()));
        let (mean, var) = (values(&cb.bn.running_mean.value()), values(&cb.bn.running_var.value()));
        let eps = cb.bn.epsilon as f32;
        let scale: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g / (v + eps).sqrt()).collect();
        let per_out = w.len() / dims[0];
        let folded: Vec<f32> = w.iter().enumerate().map(|(i, v)| v * scale[i / per_out]).collect();
        let bias: Vec<f32> = (0..dims[0]).map(|o| beta[o] - mean[o] * scale[o]).collect();
        let wn = self.constant("w", &dims, folded);
        let bn = self.constant("b", &[dims[0]], bias);
        let y = self.conv_node(x, wn, bn, cb.conv.kernel_size, cb.conv.stride, cb.conv.groups);
        if cb.relu6 {
            let lo = self.constant("zero", &[], vec![0.0]);
            let hi = self.constant("six", &[], vec![6.0]);
            self.node("Clip", vec![y, lo, hi], vec![])
        } else {
            y
        }
    }
}

/// Which views of the aligned crop the exported embedder embeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Views {
    /// The crop alone.
    #[default]
    Crop,
    /// The crop and its mirror image as a batch of two, their outputs averaged (before the
    /// caller's L2 normalisation): twice the encoder's cost for a steadier embedding.
    CropAndMirror,
}

/// Serialised ONNX model: input `image` 1×3×128×128 f32, output `embedding` 1×128 (after the
/// embedding layer's ReLU, or straight out of the layer for a head trained with an angular margin).
pub fn export_onnx<B: Backend>(encoder: &Encoder<B>, id_head: &IdHead<B>) -> Vec<u8> {
    export_onnx_views(encoder, id_head, Views::Crop)
}

/// [`export_onnx`] embedding the given `views` of the crop, same contract.
pub fn export_onnx_views<B: Backend>(encoder: &Encoder<B>, id_head: &IdHead<B>, views: Views) -> Vec<u8> {
    let mut g = GraphBuilder::default();
    let s = CROP_SIZE as usize;
    let input = match views {
        Views::Crop => INPUT_NAME.to_string(),
        Views::CropAndMirror => {
            let columns_reversed = g.constant_i64("mirror_columns", (0..s as i64).rev().collect());
            let mirror = g.node("Gather", vec![INPUT_NAME.into(), columns_reversed], vec![int("axis", 3)]);
            g.node("Concat", vec![INPUT_NAME.into(), mirror], vec![int("axis", 0)])
        }
    };
    let mut x = g.conv_bn(input, &encoder.stem);
    for block in &encoder.blocks {
        let input = x.clone();
        if let Some(expand) = &block.expand {
            x = g.conv_bn(x, expand);
        }
        x = g.conv_bn(x, &block.depthwise);
        x = g.conv_bn(x, &block.project);
        if block.residual {
            x = g.node("Add", vec![x, input], vec![]);
        }
    }
    x = g.conv_bn(x, &encoder.head);
    let pooled = g.node("GlobalAveragePool", vec![x], vec![]);
    let flat = g.node("Flatten", vec![pooled], vec![int("axis", 1)]);
    let wdims = id_head.embed.weight.dims();
    let w = g.constant("embed_w", &wdims, values(&id_head.embed.weight.val()));
    let b = g.constant("embed_b", &[wdims[1]], id_head.embed.bias.as_ref().map_or_else(|| vec![0.0; wdims[1]], |b| values(&b.val())));
    let gemm = g.node("Gemm", vec![flat, w, b], vec![]);
    let embedding = if id_head.has_relu() { g.node("Relu", vec![gemm], vec![]) } else { gemm };
    if views == Views::CropAndMirror {
        g.node("ReduceMean", vec![embedding], vec![ints("axes", &[0]), int("keepdims", 1)]);
    }
    g.name_last_output(OUTPUT_NAME);
    let value = |name: &str, dims: &[usize]| pb::ValueInfoProto { name: name.into(), r#type: Some(tensor_type(dims)), ..Default::default() };
    g.finish("faceunlock_embedder", vec![value(INPUT_NAME, &[1, 3, s, s])], vec![value(OUTPUT_NAME, &[1, wdims[1]])])
}

/// Weights stored in an ONNX model: the elements of its floating-point initializers of rank ≥ 1
/// (scalars such as `Clip`'s bounds are operator settings, not weights). For our exports batch
/// norm is folded into the convolutions.
pub fn onnx_parameters(bytes: &[u8]) -> anyhow::Result<u64> {
    let model = pb::ModelProto::decode(bytes).map_err(|e| anyhow::anyhow!("not an ONNX model: {e}"))?;
    let graph = model.graph.ok_or_else(|| anyhow::anyhow!("the ONNX model has no graph"))?;
    let float = pb::tensor_proto::DataType::Float as i32;
    Ok(graph.initializer.iter().filter(|t| t.data_type == float && !t.dims.is_empty()).map(|t| t.dims.iter().product::<i64>().max(0) as u64).sum())
}

/// The manifest entry of an exported embedder (128-d, ImageNet normalisation, at the crop size
/// of the shared geometry) stored as `file` with checksum `sha256`; thresholds and parameter
/// count are the caller's to fill once measured.
pub fn embedder_entry(file: &str, sha256: String) -> faceunlock_core::contract::EmbedderEntry {
    let (input, output) = contract(128);
    faceunlock_core::contract::EmbedderEntry {
        file: file.into(),
        sha256,
        input,
        output,
        crop_size: CROP_SIZE,
        normalization: faceunlock_core::normalize::Normalization::IMAGENET,
        thresholds: faceunlock_core::contract::Thresholds { far_1e3: 0.0, far_1e4: 0.0 },
        parameters: 0,
        provenance: Default::default(),
    }
}

/// The tensor contract of an exported embedder with `dim` outputs.
pub fn contract(dim: usize) -> (faceunlock_core::contract::TensorSpec, faceunlock_core::contract::TensorSpec) {
    use faceunlock_core::contract::TensorSpec;
    let s = CROP_SIZE as usize;
    (TensorSpec { name: INPUT_NAME.into(), shape: vec![1, 3, s, s] }, TensorSpec { name: OUTPUT_NAME.into(), shape: vec![1, dim] })
}
