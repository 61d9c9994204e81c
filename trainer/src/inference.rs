//! Running a trained Burn model on aligned crops, the reference the exported ONNX must match.

use crate::model::{Encoder, IdHead};
use burn::prelude::*;
use burn::tensor::TensorData;
use faceunlock_core::normalize::Normalization;
use image::RgbImage;

/// L2-normalised embeddings of aligned crops, through the path that ships (the encoder and the
/// ID head's embedding layer, of a trained model or a student).
pub fn embed_crops<B: Backend>((encoder, id_head): (&Encoder<B>, &IdHead<B>), crops: &[RgbImage], device: &B::Device) -> Vec<Vec<f32>> {
    let Some(first) = crops.first() else { return Vec::new() };
    let s = first.width() as usize;
    let data: Vec<f32> = crops.iter().flat_map(|c| Normalization::IMAGENET.to_chw(c)).collect();
    let x = Tensor::<B, 4>::from_data(TensorData::new(data, [crops.len(), 3, s, s]), device);
    let e = id_head.embed(encoder.forward_top(x));
    let dim = e.dims()[1];
    let flat = e.into_data().convert::<f32>().to_vec::<f32>().expect("f32 embeddings");
    flat.chunks(dim)
        .map(|v| {
            let mut v = v.to_vec();
            faceunlock::embed::l2_normalize(&mut v);
            v
        })
        .collect()
}
