//! Initialising the encoder from torchvision's ImageNet MobileNetV2 checkpoint (safetensors,
//! torchvision key names). Every tensor is checked by name and shape; a missing, misshapen or
//! left-over tensor is an error naming it.

use super::mobilenet::{ConvBn, Encoder};
use burn::module::{Param, RunningState};
use burn::prelude::*;
use burn::tensor::TensorData;
use safetensors::SafeTensors;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImagenetError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a safetensors file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: tensor `{name}` missing; expected shape {expected:?} (is this torchvision's MobileNetV2 at width 1.0?)")]
    Missing { path: PathBuf, name: String, expected: Vec<usize> },
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape { path: PathBuf, name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("{path}: tensor `{name}` is {found}, expected F32")]
    Dtype { path: PathBuf, name: String, found: String },
    #[error("{path}: {count} tensors were not used, e.g. `{example}`: not a MobileNetV2 `features` checkpoint of this width")]
    Unused { path: PathBuf, count: usize, example: String },
}

struct Checkpoint<'a> {
    path: &'a Path,
    tensors: SafeTensors<'a>,
    used: BTreeSet<String>,
}

impl<'a> Checkpoint<'a> {
    fn take<B: Backend, const D: usize>(&mut self, name: &str, expected: [usize; D], device: &B::Device) -> Result<Tensor<B, D>, ImagenetError> {
        let path = self.path.to_path_buf();
        let view = self
            .tensors
            .tensor(name)
            .map_err(|_| ImagenetError::Missing { path: path.clone(), name: name.into(), expected: expected.to_vec() })?;
        if view.shape() != expected {
            return Err(ImagenetError::Shape { path, name: name.into(), expected: expected.to_vec(), found: view.shape().to_vec() });
        }
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(ImagenetError::Dtype { path, name: name.into(), found: format!("{:?}", view.dtype()) });
        }
        let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        self.used.insert(name.to_string());
        Ok(Tensor::from_data(TensorData::new(values, expected), device))
    }

    fn conv_bn<B: Backend>(&mut self, conv: &str, bn: &str, target: &mut ConvBn<B>, device: &B::Device) -> Result<(), ImagenetError> {
        let w = target.conv.weight.dims();
        target.conv.weight = Param::from_tensor(self.take(&format!("{conv}.weight"), w, device)?);
        let c = [target.bn.gamma.dims()[0]];
        target.bn.gamma = Param::from_tensor(self.take(&format!("{bn}.weight"), c, device)?);
        target.bn.beta = Param::from_tensor(self.take(&format!("{bn}.bias"), c, device)?);
        target.bn.running_mean = RunningState::new(self.take(&format!("{bn}.running_mean"), c, device)?);
        target.bn.running_var = RunningState::new(self.take(&format!("{bn}.running_var"), c, device)?);
        Ok(())
    }
}

/// Overwrite `encoder`'s weights with the checkpoint at `path`.
pub fn load_imagenet<B: Backend>(mut encoder: Encoder<B>, path: &Path, device: &B::Device) -> Result<Encoder<B>, ImagenetError> {
    let bytes = std::fs::read(path).map_err(|source| ImagenetError::Io { path: path.into(), source })?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| ImagenetError::Format { path: path.into(), message: e.to_string() })?;
    let mut ck = Checkpoint { path, tensors, used: BTreeSet::new() };
    ck.conv_bn("features.0.0", "features.0.1", &mut encoder.stem, device)?;
    for (i, block) in encoder.blocks.iter_mut().enumerate() {
        let p = format!("features.{}.conv", i + 1);
        let mut k = 0;
        if let Some(expand) = block.expand.as_mut() {
            ck.conv_bn(&format!("{p}.0.0"), &format!("{p}.0.1"), expand, device)?;
            k = 1;
        }
        ck.conv_bn(&format!("{p}.{k}.0"), &format!("{p}.{k}.1"), &mut block.depthwise, device)?;
        ck.conv_bn(&format!("{p}.{}", k + 1), &format!("{p}.{}", k + 2), &mut block.project, device)?;
    }
    ck.conv_bn("features.18.0", "features.18.1", &mut encoder.head, device)?;
    let unused: Vec<String> = ck
        .tensors
        .names()
        .into_iter()
        .filter(|n| n.starts_with("features.") && !n.ends_with("num_batches_tracked") && !ck.used.contains(*n))
        .map(str::to_string)
        .collect();
    if let Some(example) = unused.first() {
        return Err(ImagenetError::Unused { path: path.into(), count: unused.len(), example: example.clone() });
    }
    Ok(encoder)
}
