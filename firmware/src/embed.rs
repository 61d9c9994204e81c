//! The face embedder: an ONNX model run by tract, checked against its manifest entry at load
//! (sha256, input/output names and shapes), optimised once, then fed aligned crops. The contract
//! check is shared with the landmark refiner ([`crate::refine`]).

use crate::tensor_io::{f32_slice, refill_input, without_panics};
use faceunlock_core::contract::{self, ContractError, EmbedderEntry, TensorSpec};
use faceunlock_core::normalize::Normalization;
use image::RgbImage;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error("{path}: not a loadable ONNX model: {message}")]
    Load { path: PathBuf, message: String },
    #[error("{path}: model input is {found}, the manifest expects {expected}")]
    Input { path: PathBuf, expected: TensorSpec, found: String },
    #[error("{path}: model output is {found}, the manifest expects {expected}")]
    Output { path: PathBuf, expected: TensorSpec, found: String },
    #[error("crop is {found:?}, the embedder expects {expected}×{expected}")]
    CropSize { expected: u32, found: (u32, u32) },
    #[error("inference failed: {0}")]
    Run(String),
}

/// Clones share the optimised plan and run independently (one per thread).
#[derive(Clone)]
pub struct Embedder {
    /// The optimised plan's run state, kept across frames (its buffers are reused).
    state: TypedSimpleState,
    input: Arc<Tensor>,
    normalization: Normalization,
    crop_size: u32,
    dim: usize,
    output: Vec<f32>,
}

pub(crate) fn load_err(path: &Path) -> impl Fn(TractError) -> EmbedError + '_ {
    move |e| EmbedError::Load { path: path.into(), message: format!("{e:#}") }
}

/// Load an ONNX model with one input and one output, refusing it unless their names and shapes
/// are the manifest's; returns the optimised plan's run state.
pub(crate) fn load_checked(path: &Path, bytes: &[u8], input: &TensorSpec, output: &TensorSpec) -> Result<TypedSimpleState, EmbedError> {
    without_panics(|| load_checked_unguarded(path, bytes, input, output)).unwrap_or_else(|message| Err(EmbedError::Load { path: path.into(), message }))
}

fn load_checked_unguarded(path: &Path, bytes: &[u8], input: &TensorSpec, output: &TensorSpec) -> Result<TypedSimpleState, EmbedError> {
    let model = tract_onnx::onnx().model_for_read(&mut &bytes[..]).map_err(load_err(path))?;
    let input_name = model.input_outlets().map_err(load_err(path))?.first().map(|o| model.node(o.node).name.clone());
    if input_name.as_deref() != Some(input.name.as_str()) {
        return Err(EmbedError::Input { path: path.into(), expected: input.clone(), found: format!("{input_name:?}") });
    }
    let shape: TVec<usize> = input.shape.iter().copied().collect();
    let typed = model
        .with_input_fact(0, f32::fact(&shape).into())
        .and_then(|m| m.into_optimized())
        .map_err(|e| EmbedError::Input { path: path.into(), expected: input.clone(), found: format!("incompatible ({e})") })?;
    let out_outlet = typed.output_outlets().map_err(load_err(path))?[0];
    let out_fact = typed.outlet_fact(out_outlet).map_err(load_err(path))?;
    let out_shape: Option<Vec<usize>> = out_fact.shape.as_concrete().map(|s| s.to_vec());
    let out_name = typed.node(out_outlet.node).name.clone();
    let out_label = typed.outlet_label(out_outlet).map(str::to_string).unwrap_or(out_name);
    if out_shape.as_deref() != Some(output.shape.as_slice()) || out_label != output.name {
        return Err(EmbedError::Output { path: path.into(), expected: output.clone(), found: format!("`{out_label}` {out_shape:?}") });
    }
    typed.into_runnable().and_then(|plan| plan.spawn()).map_err(load_err(path))
}

impl Embedder {
    /// Load `entry.file` (relative to `models_dir`), refusing it unless its sha256 and its tensor
    /// contract match the manifest.
    pub fn from_manifest(models_dir: &Path, entry: &EmbedderEntry) -> Result<Self, EmbedError> {
        let path = models_dir.join(&entry.file);
        let bytes = contract::read_verified(&path, &entry.sha256)?;
        Self::from_bytes(&path, &bytes, entry)
    }

    /// As [`Embedder::from_manifest`] without the checksum (evaluation of foreign models).
    pub fn from_bytes(path: &Path, bytes: &[u8], entry: &EmbedderEntry) -> Result<Self, EmbedError> {
        let state = load_checked(path, bytes, &entry.input, &entry.output)?;
        let dim = entry.output.shape.iter().product();
        Ok(Self {
            state,
            input: Arc::new(Tensor::zero::<f32>(&entry.input.shape).map_err(load_err(path))?),
            normalization: entry.normalization,
            crop_size: entry.crop_size,
            dim,
            output: vec![0.0; dim],
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn crop_size(&self) -> u32 {
        self.crop_size
    }

    /// The L2-normalised embedding of an aligned crop.
    pub fn embed(&mut self, crop: &RgbImage) -> Result<&[f32], EmbedError> {
        self.embed_raw(crop)?;
        l2_normalize(&mut self.output);
        Ok(&self.output)
    }

    /// The model's output for an aligned crop as it is, not normalised (for fitting statistics
    /// of the model's own outputs, `faceunlock-train whiten`).
    pub fn embed_raw(&mut self, crop: &RgbImage) -> Result<&[f32], EmbedError> {
        if crop.dimensions() != (self.crop_size, self.crop_size) {
            return Err(EmbedError::CropSize { expected: self.crop_size, found: crop.dimensions() });
        }
        let normalization = self.normalization;
        let input = refill_input(&mut self.input, |buf| normalization.write_chw(crop, buf)).map_err(|e| EmbedError::Run(e.to_string()))?;
        let out = self.state.run(tvec!(input)).map_err(|e| EmbedError::Run(format!("{e:#}")))?;
        let raw = f32_slice(&out[0]).map_err(|e| EmbedError::Run(e.to_string()))?;
        self.output.copy_from_slice(&raw[..self.dim]);
        Ok(&self.output)
    }
}

pub fn l2_normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Cosine similarity of two L2-normalised vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
