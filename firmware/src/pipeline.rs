//! One frame through the stages: detect → align → quality gate → embed, measuring each stage's
//! [`Cost`]. Buffers are owned and reused, so a warm pipeline does no per-frame image allocation.

use crate::cost::{Cost, Meter};
use crate::detect::{DetectError, Detection, FaceDetector};
use crate::embed::{EmbedError, Embedder};
use crate::quality::{self, Quality, Rejection};
use faceunlock_core::align::{AlignError, Aligner};
use faceunlock_core::geometry::CropSpec;
use image::RgbImage;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(transparent)]
    Align(#[from] AlignError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// What each stage of one frame cost (zero for stages not reached).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageCosts {
    pub capture: Cost,
    pub decode: Cost,
    pub detect: Cost,
    /// Alignment and the quality measures of the crop.
    pub align: Cost,
    pub embed: Cost,
    pub matching: Cost,
    /// The liveness check's share of the frame (tracking against the attempt's first face).
    pub liveness: Cost,
}

/// What a frame yielded.
#[derive(Debug, PartialEq)]
pub enum FaceOutcome<'a> {
    NoFace,
    /// A face was found but skipped by the quality gate.
    Skipped(Rejection, Quality),
    Embedded { face: Detection, embedding: &'a [f32], quality: Quality },
}

pub struct Pipeline {
    pub detector: Box<dyn FaceDetector + Send>,
    pub embedder: Embedder,
    aligner: Aligner,
    pub min_face_px: f32,
    pub gate: crate::config::DecisionConfig,
}

impl Pipeline {
    pub fn new(detector: Box<dyn FaceDetector + Send>, embedder: Embedder, min_face_px: f32, gate: crate::config::DecisionConfig) -> Self {
        let aligner = Aligner::new(CropSpec::arcface(embedder.crop_size()));
        Self { detector, embedder, aligner, min_face_px, gate }
    }

    /// The aligned crop of the last embedded face.
    pub fn last_crop(&self) -> &RgbImage {
        self.aligner.crop()
    }

    /// The largest detected face at least `min_face_px` wide: the one the pipeline follows.
    pub fn main_face(&mut self, frame: &RgbImage) -> Result<Option<Detection>, DetectError> {
        let faces = self.detector.detect(frame)?;
        Ok(faces.iter().filter(|f| f.face_box[2] >= self.min_face_px).max_by(|a, b| a.area().total_cmp(&b.area())).copied())
    }

    /// Process one frame: the largest face wide enough is aligned, gated and embedded.
    pub fn process(&mut self, frame: &RgbImage, costs: &mut StageCosts) -> Result<FaceOutcome<'_>, PipelineError> {
        let meter = Meter::start();
        let face = self.main_face(frame)?;
        costs.detect = meter.stop();
        let Some(face) = face else { return Ok(FaceOutcome::NoFace) };
        let meter = Meter::start();
        let crop = self.aligner.align(frame, &face.landmarks)?;
        let q = quality::measure(crop);
        costs.align = meter.stop();
        if let Some(why) = q.check(&self.gate) {
            return Ok(FaceOutcome::Skipped(why, q));
        }
        let meter = Meter::start();
        let embedding = self.embedder.embed(self.aligner.crop())?;
        costs.embed = meter.stop();
        Ok(FaceOutcome::Embedded { face, embedding, quality: q })
    }
}
