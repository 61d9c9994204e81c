//! Landmark refinement after detection: each detected face is cropped on the template through
//! the detector's landmarks (at the refiner's input size) and a small ONNX regressor, run by
//! tract, says where the landmarks really are in that crop ([`faceunlock_core::refine`]); they
//! are mapped back to the frame. A one-stage detector regresses landmarks from coarse grid
//! cells; the crop stage sees the face at a fixed scale and pose.
//!
//! [`Refined`] wraps any [`FaceDetector`], so everything downstream (alignment, liveness
//! tracking, evaluation) gets the refined landmarks.

use crate::detect::{DetectError, Detection, FaceDetector, MAX_FACES};
use crate::embed::{EmbedError, load_checked, load_err};
use crate::tensor_io::{f32_slice, refill_input};
use faceunlock_core::align::Aligner;
use faceunlock_core::contract::{self, RefinerEntry};
use faceunlock_core::geometry::{Landmarks5, Similarity};
use faceunlock_core::normalize::Normalization;
use faceunlock_core::refine::{crop_spec, decode};
use image::RgbImage;
use std::path::Path;
use tract_onnx::prelude::*;

pub struct LandmarkRefiner {
    /// The optimised plan's run state, kept across frames (its buffers are reused).
    state: TypedSimpleState,
    input: Arc<Tensor>,
    aligner: Aligner,
    normalization: Normalization,
    passes: u32,
}

impl LandmarkRefiner {
    /// Load the manifest's refiner `entry.file` (relative to `models_dir`), refusing it unless
    /// its sha256 and its tensor contract match the manifest (square input `[1, 3, S, S]`,
    /// output `[1, 10]`).
    pub fn from_manifest(models_dir: &Path, entry: &RefinerEntry) -> Result<Self, EmbedError> {
        let path = models_dir.join(&entry.file);
        let bytes = contract::read_verified(&path, &entry.sha256)?;
        Self::from_bytes(&path, &bytes, entry)
    }

    /// As [`Self::from_manifest`] without the checksum (evaluation of a model being trained).
    pub fn from_bytes(path: &Path, bytes: &[u8], entry: &RefinerEntry) -> Result<Self, EmbedError> {
        let size = match entry.input.shape[..] {
            [1, 3, h, w] if h == w && h > 0 => h as u32,
            _ => return Err(EmbedError::Input { path: path.into(), expected: entry.input.clone(), found: "a manifest shape other than [1, 3, S, S]".into() }),
        };
        if entry.output.shape != [1, 10] {
            return Err(EmbedError::Output { path: path.into(), expected: entry.output.clone(), found: "a manifest shape other than [1, 10]".into() });
        }
        let state = load_checked(path, bytes, &entry.input, &entry.output)?;
        Ok(Self {
            state,
            input: Arc::new(Tensor::zero::<f32>(&entry.input.shape).map_err(load_err(path))?),
            aligner: Aligner::new(crop_spec(size)),
            normalization: entry.normalization,
            passes: entry.passes.max(1),
        })
    }

    /// The refined landmarks of a face the detector placed at `marks`; `marks` themselves when
    /// they are degenerate (no crop can be made on them).
    pub fn refine(&mut self, frame: &RgbImage, marks: &Landmarks5) -> Result<Landmarks5, DetectError> {
        let mut current = *marks;
        for _ in 0..self.passes {
            let Ok(to_frame) = self.aligner.crop_to_frame(&current, &Similarity::IDENTITY) else { return Ok(current) };
            let crop = self.aligner.warp(frame, &to_frame);
            let normalization = self.normalization;
            let input = refill_input(&mut self.input, |buf| normalization.write_chw(crop, buf)).map_err(|e| DetectError::Run(e.to_string()))?;
            let out = self.state.run(tvec!(input)).map_err(|e| DetectError::Run(format!("landmark refiner: {e:#}")))?;
            let raw = f32_slice(&out[0]).map_err(|e| DetectError::Run(e.to_string()))?;
            current = decode(raw, self.aligner.spec()).transformed(&to_frame);
        }
        Ok(current)
    }
}

/// A detector whose faces' landmarks are refined.
pub struct Refined<D> {
    pub detector: D,
    pub refiner: LandmarkRefiner,
    found: heapless::Vec<Detection, MAX_FACES>,
}

impl<D> Refined<D> {
    pub fn new(detector: D, refiner: LandmarkRefiner) -> Self {
        Self { detector, refiner, found: heapless::Vec::new() }
    }
}

impl<D: FaceDetector> FaceDetector for Refined<D> {
    fn detect(&mut self, frame: &RgbImage) -> Result<&[Detection], DetectError> {
        self.found.clear();
        for face in self.detector.detect(frame)? {
            let refined = Detection { landmarks: self.refiner.refine(frame, &face.landmarks)?, ..*face };
            // Both hold at most MAX_FACES.
            let _ = self.found.push(refined);
        }
        Ok(&self.found)
    }
}
