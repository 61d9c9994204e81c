//! ONNX export of the detector in YuNet's contract: input `input` `[1, 3, H, W]` BGR 0..255 (H
//! and W symbolic), outputs `cls_s`, `obj_s` `[1, cells, 1]`, `bbox_s` `[1, cells, 4]`, `kps_s`
//! `[1, cells, 10]` for strides 8, 16, 32, cells row-major. Batch norm is folded into the
//! convolutions; the top-down pathway, when the net has one, upsamples with `Resize` (nearest).
//! The net has one face probability; `obj_s` repeats it, so the firmware's score `√(cls·obj)` is
//! that probability. A score shift, added to every face logit, calibrates the
//! exported score to the firmware's threshold ([`score_shift`]).

use super::model::{DetectorNet, PIXEL_OFFSET, PIXEL_SCALE};
use crate::export::{GraphBuilder, ints, tensor_type_named, text};
use burn::prelude::*;
use faceunlock_core::grid::STRIDES;
use tract_onnx::pb;

pub const INPUT_NAME: &str = "input";

/// `[1, C, H, W]` → `[1, H·W, C]`.
fn cells_last(g: &mut GraphBuilder, x: String, channels: usize) -> String {
    let t = g.node("Transpose", vec![x], vec![ints("perm", &[0, 2, 3, 1])]);
    let shape = g.constant_i64("shape", vec![1, -1, channels as i64]);
    g.node("Reshape", vec![t, shape], vec![])
}

/// Nearest-neighbour 2× upsampling, as the model's `upsample2`.
fn upsample2(g: &mut GraphBuilder, x: String) -> String {
    let roi = g.constant("roi", &[0], vec![]);
    let scales = g.constant("scales", &[4], vec![1.0, 1.0, 2.0, 2.0]);
    let modes = [("mode", "nearest"), ("coordinate_transformation_mode", "asymmetric"), ("nearest_mode", "floor")];
    g.node("Resize", vec![x, roi, scales], modes.iter().map(|(k, v)| text(k, v)).collect())
}

/// The logit shift that makes `firmware_threshold` on the exported score mean `threshold` on the
/// trained net's probability (sigmoid is monotonic, so the faces kept are exactly the same).
pub fn score_shift(threshold: f32, firmware_threshold: f32) -> f32 {
    let logit = |p: f32| (p / (1.0 - p)).ln();
    logit(firmware_threshold) - logit(threshold)
}

pub fn export_detector<B: Backend>(net: &DetectorNet<B>, score_shift: f32) -> Vec<u8> {
    let mut g = GraphBuilder::default();
    let scale = g.constant("pixel_scale", &[], vec![PIXEL_SCALE]);
    let offset = g.constant("pixel_offset", &[], vec![PIXEL_OFFSET]);
    let shift = g.constant("score_shift", &[], vec![score_shift]);
    let scaled = g.node("Mul", vec![INPUT_NAME.into(), scale], vec![]);
    let mut x = g.node("Add", vec![scaled, offset], vec![]);
    x = g.conv_bn(x, &net.stem);
    let mut features = Vec::with_capacity(3);
    for (i, stage) in net.stages.iter().enumerate() {
        for block in stage {
            x = g.conv_bn(x, &block.depthwise);
            x = g.conv_bn(x, &block.pointwise);
        }
        if i >= 1 {
            features.push(x.clone());
        }
    }
    for (i, project) in net.top_down.iter().enumerate().rev() {
        let projected = g.conv_bn(features[i + 1].clone(), project);
        let coarser = upsample2(&mut g, projected);
        features[i] = g.node("Add", vec![features[i].clone(), coarser], vec![]);
    }
    let mut outputs = Vec::new();
    for ((x, head), stride) in features.into_iter().zip(&net.heads).zip(STRIDES) {
        let c = g.conv_bn(x, &head.context);
        let logit = g.conv(c.clone(), &head.score);
        let shifted = g.node("Add", vec![logit, shift.clone()], vec![]);
        let prob = g.node("Sigmoid", vec![shifted], vec![]);
        cells_last(&mut g, prob, 1);
        g.name_last_output(&format!("cls_{stride}"));
        g.node("Identity", vec![format!("cls_{stride}")], vec![]);
        g.name_last_output(&format!("obj_{stride}"));
        for (name, conv, n) in [("bbox", &head.bbox, 4), ("kps", &head.kps, 10)] {
            let y = g.conv(c.clone(), conv);
            cells_last(&mut g, y, n);
            g.name_last_output(&format!("{name}_{stride}"));
        }
        for (name, n) in [("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)] {
            outputs.push((format!("{name}_{stride}"), stride, n));
        }
    }
    let value = |name: &str, dims: &[Result<usize, &str>]| pb::ValueInfoProto { name: name.into(), r#type: Some(tensor_type_named(dims)), ..Default::default() };
    let input = value(INPUT_NAME, &[Ok(1), Ok(3), Err("height"), Err("width")]);
    let outputs = outputs.iter().map(|(name, stride, n)| value(name, &[Ok(1), Err(&format!("cells_{stride}")), Ok(*n)])).collect();
    g.finish("faceunlock_detector", vec![input], outputs)
}

#[cfg(test)]
mod tests {
    use super::score_shift;

    #[test]
    fn the_shift_maps_the_trained_threshold_onto_the_firmware_s() {
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        let logit = |p: f32| (p / (1.0 - p)).ln();
        assert_eq!(score_shift(0.6, 0.6), 0.0);
        for t in [0.2f32, 0.45, 0.8] {
            assert!((sigmoid(logit(t) + score_shift(t, 0.6)) - 0.6).abs() < 1e-6, "threshold {t}");
        }
    }
}
