//! ONNX export of the shipped path: encoder → global average pool → embedding layer + ReLU.
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

fn values<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Vec<f32> {
    t.to_data().convert::<f32>().to_vec::<f32>().expect("f32 tensor data")
}

fn tensor_type(dims: &[usize]) -> pb::TypeProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type: pb::tensor_proto::DataType::Float as i32,
            shape: Some(pb::TensorShapeProto {
                dim: dims.iter().map(|d| Dimension { value: Some(Value::DimValue(*d as i64)), ..Default::default() }).collect(),
            }),
        })),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: pb::attribute_proto::AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: pb::attribute_proto::AttributeType::Int as i32, i: v, ..Default::default() }
}

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    count: usize,
}

impl GraphBuilder {
    fn constant(&mut self, prefix: &str, dims: &[usize], data: Vec<f32>) -> String {
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

    fn node(&mut self, op: &str, inputs: Vec<String>, attributes: Vec<pb::AttributeProto>) -> String {
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

    /// Conv with the batch norm folded in: `W' = W·s`, `b' = β − μ·s`, `s = γ/√(σ²+ε)`.
    fn conv_bn<B: Backend>(&mut self, x: String, cb: &ConvBn<B>) -> String {
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
        let k = cb.conv.kernel_size;
        let p = (k[0] / 2) as i64;
        let y = self.node(
            "Conv",
            vec![x, wn, bn],
            vec![
                ints("kernel_shape", &[k[0] as i64, k[1] as i64]),
                ints("strides", &cb.conv.stride.map(|s| s as i64)),
                ints("pads", &[p, p, p, p]),
                ints("dilations", &[1, 1]),
                int("group", cb.conv.groups as i64),
            ],
        );
        if cb.relu6 {
            let lo = self.constant("zero", &[], vec![0.0]);
            let hi = self.constant("six", &[], vec![6.0]);
            self.node("Clip", vec![y, lo, hi], vec![])
        } else {
            y
        }
    }
}

/// Serialised ONNX model: input `image` 1×3×128×128 f32, output `embedding` 1×128.
pub fn export_onnx<B: Backend>(encoder: &Encoder<B>, id_head: &IdHead<B>) -> Vec<u8> {
    let mut g = GraphBuilder::default();
    let mut x = g.conv_bn(INPUT_NAME.to_string(), &encoder.stem);
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
    g.node("Relu", vec![gemm], vec![]);
    g.nodes.last_mut().expect("the Relu node just added").output = vec![OUTPUT_NAME.into()];
    let s = CROP_SIZE as usize;
    let graph = pb::GraphProto {
        name: "faceunlock_embedder".into(),
        node: g.nodes,
        initializer: g.initializers,
        input: vec![pb::ValueInfoProto { name: INPUT_NAME.into(), r#type: Some(tensor_type(&[1, 3, s, s])), ..Default::default() }],
        output: vec![pb::ValueInfoProto { name: OUTPUT_NAME.into(), r#type: Some(tensor_type(&[1, wdims[1]])), ..Default::default() }],
        ..Default::default()
    };
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

/// The tensor contract of an exported embedder with `dim` outputs.
pub fn contract(dim: usize) -> (faceunlock_core::contract::TensorSpec, faceunlock_core::contract::TensorSpec) {
    use faceunlock_core::contract::TensorSpec;
    let s = CROP_SIZE as usize;
    (TensorSpec { name: INPUT_NAME.into(), shape: vec![1, 3, s, s] }, TensorSpec { name: OUTPUT_NAME.into(), shape: vec![1, dim] })
}
