//! Face detection behind a trait, and a YuNet-compatible decoder run by tract: 12 outputs
//! (`cls_s`, `obj_s`, `bbox_s`, `kps_s` for strides 8, 16, 32), BGR 0..255 input whose height and
//! width are multiples of 32. YuNet from `../shared` serves development; our own distilled
//! detector has the same contract.

use crate::tensor_io::{f32_slice, refill_input, without_panics};
use faceunlock_core::align::warp_into;
use faceunlock_core::geometry::{Landmarks5, Similarity};
use faceunlock_core::grid::{self, STRIDES};
use image::RgbImage;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

/// Most faces one frame may report; the rest (lowest scores) are dropped.
pub const MAX_FACES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// `[x, y, w, h]` in frame pixels.
    pub face_box: [f32; 4],
    pub score: f32,
    pub landmarks: Landmarks5,
}

impl Detection {
    pub fn area(&self) -> f32 {
        self.face_box[2] * self.face_box[3]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("{path}: not a loadable detector: {message}")]
    Load { path: PathBuf, message: String },
    #[error("{path}: detector output `{name}` missing; expected the YuNet outputs cls/obj/bbox/kps for strides 8, 16, 32")]
    MissingOutput { path: PathBuf, name: String },
    #[error("{path}: detector input is `{found}`, the manifest expects `{expected}`")]
    InputName { path: PathBuf, expected: String, found: String },
    #[error("detector input size {0:?} must be positive multiples of 32")]
    InputSize([u32; 2]),
    #[error("frame of {found:?} pixels, expected exactly the detector's input size {expected:?}")]
    FrameSize { expected: [u32; 2], found: [u32; 2] },
    #[error("detection failed: {0}")]
    Run(String),
    #[error(transparent)]
    Contract(#[from] faceunlock_core::contract::ContractError),
}

pub trait FaceDetector {
    /// Faces in `frame`, highest score first.
    fn detect(&mut self, frame: &RgbImage) -> Result<&[Detection], DetectError>;
}

impl<D: FaceDetector + ?Sized> FaceDetector for Box<D> {
    fn detect(&mut self, frame: &RgbImage) -> Result<&[Detection], DetectError> {
        (**self).detect(frame)
    }
}

pub struct YuNet {
    /// The optimised plan's run state, kept across frames (its buffers are reused).
    state: TypedSimpleState,
    size: [u32; 2],
    /// Output index of cls, obj, bbox, kps for each stride.
    outputs: [[usize; 4]; 3],
    input: Arc<Tensor>,
    canvas: RgbImage,
    pub score_threshold: f32,
    pub nms_iou: f32,
    found: heapless::Vec<Detection, MAX_FACES>,
    candidates: Vec<Detection>,
}

impl YuNet {
    /// Load a YuNet-compatible model for a fixed input size `[width, height]`.
    pub fn from_bytes(path: &Path, bytes: &[u8], size: [u32; 2]) -> Result<Self, DetectError> {
        Self::with_contract(path, bytes, size, None)
    }

    /// Load the manifest's detector `entry.file` (relative to `models_dir`), refusing it unless
    /// its sha256 and its input name match the manifest.
    pub fn from_manifest(models_dir: &Path, entry: &faceunlock_core::contract::DetectorEntry, size: [u32; 2]) -> Result<Self, DetectError> {
        let path = models_dir.join(&entry.file);
        let bytes = faceunlock_core::contract::read_verified(&path, &entry.sha256)?;
        Self::with_contract(&path, &bytes, size, Some(&entry.input.name))
    }

    /// As [`Self::from_bytes`]; with `input_name`, the model's input must carry that name (the
    /// manifest's contract).
    pub fn with_contract(path: &Path, bytes: &[u8], size: [u32; 2], input_name: Option<&str>) -> Result<Self, DetectError> {
        without_panics(|| Self::with_contract_unguarded(path, bytes, size, input_name)).unwrap_or_else(|message| Err(DetectError::Load { path: path.into(), message }))
    }

    fn with_contract_unguarded(path: &Path, bytes: &[u8], size: [u32; 2], input_name: Option<&str>) -> Result<Self, DetectError> {
        if size.iter().any(|s| *s == 0 || s % 32 != 0) {
            return Err(DetectError::InputSize(size));
        }
        let err = |e: TractError| DetectError::Load { path: path.into(), message: format!("{e:#}") };
        let shape = [1usize, 3, size[1] as usize, size[0] as usize];
        let model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(err)?;
        if let Some(expected) = input_name {
            let found = model.input_outlets().map_err(err)?.first().map(|o| model.node(o.node).name.clone()).unwrap_or_default();
            if found != expected {
                return Err(DetectError::InputName { path: path.into(), expected: expected.into(), found });
            }
        }
        let model = model
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.into_optimized())
            .map_err(err)?;
        let names: Vec<String> = model
            .output_outlets()
            .map_err(err)?
            .iter()
            .map(|o| model.outlet_label(*o).map(str::to_string).unwrap_or_else(|| model.node(o.node).name.clone()))
            .collect();
        let mut outputs = [[0usize; 4]; 3];
        for (k, s) in STRIDES.iter().enumerate() {
            for (j, kind) in ["cls", "obj", "bbox", "kps"].iter().enumerate() {
                let name = format!("{kind}_{s}");
                outputs[k][j] = names.iter().position(|n| *n == name).ok_or(DetectError::MissingOutput { path: path.into(), name })?;
            }
        }
        Ok(Self {
            state: model.into_runnable().and_then(|plan| plan.spawn()).map_err(err)?,
            size,
            outputs,
            input: Arc::new(Tensor::zero::<f32>(&shape).map_err(err)?),
            canvas: RgbImage::new(size[0], size[1]),
            score_threshold: 0.6,
            nms_iou: 0.3,
            found: heapless::Vec::new(),
            // One per anchor at most: decoding never grows it.
            candidates: Vec::with_capacity(STRIDES.iter().map(|s| size[0] as usize / s * (size[1] as usize / s)).sum()),
        })
    }

    pub fn from_file(path: &Path, size: [u32; 2]) -> Result<Self, DetectError> {
        let bytes = std::fs::read(path).map_err(|e| DetectError::Load { path: path.into(), message: e.to_string() })?;
        Self::from_bytes(path, &bytes, size)
    }

    /// Scale from frame to network input: shrink to fit if needed (never enlarge), keep the
    /// aspect ratio, pad right/bottom with black.
    fn scale_for(&self, frame: &RgbImage) -> f32 {
        (self.size[0] as f32 / frame.width() as f32).min(self.size[1] as f32 / frame.height() as f32).min(1.0)
    }

    fn decode(&mut self, out: &TVec<TValue>, scale: f32) -> Result<(), DetectError> {
        let run = |e: TractError| DetectError::Run(e.to_string());
        self.candidates.clear();
        let cols_of = |s: usize| self.size[0] as usize / s;
        for (k, s) in STRIDES.iter().enumerate() {
            let [ci, oi, bi, ki] = self.outputs[k];
            let (cls, obj) = (f32_slice(&out[ci]).map_err(run)?, f32_slice(&out[oi]).map_err(run)?);
            let (bbox, kps) = (f32_slice(&out[bi]).map_err(run)?, f32_slice(&out[ki]).map_err(run)?);
            let cols = cols_of(*s);
            for i in 0..cls.len() {
                let score = face_probability(cls[i], obj[i]);
                if score < self.score_threshold {
                    continue;
                }
                let face = grid::decode(i % cols, i / cols, *s, &bbox[i * 4..i * 4 + 4], &kps[i * 10..i * 10 + 10]);
                self.candidates.push(Detection {
                    face_box: face.face_box.map(|v| v / scale),
                    score,
                    landmarks: Landmarks5(face.landmarks.0.map(|[x, y]| [x / scale, y / scale])),
                });
            }
        }
        self.candidates.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));
        self.found.clear();
        for c in &self.candidates {
            if self.found.iter().all(|f| iou(&f.face_box, &c.face_box) < self.nms_iou) && self.found.push(*c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// A detector's raw answer at one stride, per cell of its input (row-major): the face
/// probability `√(cls·obj)` the decoder thresholds, and the box (4) and landmark (10)
/// regressions in [`grid`]'s encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelMaps {
    pub stride: usize,
    pub score: Vec<f32>,
    pub bbox: Vec<f32>,
    pub kps: Vec<f32>,
}

impl YuNet {
    /// The network's raw outputs on `frame`, which must be exactly its input size: a teacher's
    /// answer at every cell, for a student with the same contract to learn (decoded, these
    /// cells are what [`FaceDetector::detect`] reports).
    pub fn maps(&mut self, frame: &RgbImage) -> Result<Vec<LevelMaps>, DetectError> {
        if [frame.width(), frame.height()] != self.size {
            return Err(DetectError::FrameSize { expected: self.size, found: [frame.width(), frame.height()] });
        }
        let out = self.run_frame(frame, 1.0)?;
        let run = |e: TractError| DetectError::Run(e.to_string());
        let mut levels = Vec::with_capacity(STRIDES.len());
        for (k, &stride) in STRIDES.iter().enumerate() {
            let [ci, oi, bi, ki] = self.outputs[k];
            let (cls, obj) = (f32_slice(&out[ci]).map_err(run)?, f32_slice(&out[oi]).map_err(run)?);
            let score = cls.iter().zip(obj).map(|(c, o)| face_probability(*c, *o)).collect();
            levels.push(LevelMaps { stride, score, bbox: f32_slice(&out[bi]).map_err(run)?.to_vec(), kps: f32_slice(&out[ki]).map_err(run)?.to_vec() });
        }
        Ok(levels)
    }

    /// Run the network on `frame` scaled by `scale` into its input (padded with black).
    fn run_frame(&mut self, frame: &RgbImage, scale: f32) -> Result<TVec<TValue>, DetectError> {
        warp_into(frame, &Similarity { a: 1.0 / scale, b: 0.0, tx: 0.0, ty: 0.0 }, &mut self.canvas);
        let plane = (self.size[0] * self.size[1]) as usize;
        let canvas = &self.canvas;
        let input = refill_input(&mut self.input, |buf| {
            for (i, px) in canvas.as_raw().chunks_exact(3).enumerate() {
                // BGR order, raw 0..255.
                buf[i] = px[2] as f32;
                buf[plane + i] = px[1] as f32;
                buf[2 * plane + i] = px[0] as f32;
            }
        })
        .map_err(|e| DetectError::Run(e.to_string()))?;
        self.state.run(tvec!(input)).map_err(|e| DetectError::Run(format!("{e:#}")))
    }
}

impl FaceDetector for YuNet {
    fn detect(&mut self, frame: &RgbImage) -> Result<&[Detection], DetectError> {
        let scale = self.scale_for(frame);
        let out = self.run_frame(frame, scale)?;
        self.decode(&out, scale)?;
        Ok(&self.found)
    }
}

/// A cell's face probability from its class and objectness outputs.
fn face_probability(cls: f32, obj: f32) -> f32 {
    (cls.clamp(0.0, 1.0) * obj.clamp(0.0, 1.0)).sqrt()
}

/// Intersection over union of two `[x, y, w, h]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

#[cfg(test)]
mod tests {
    use super::iou;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert!((iou(&a, &a) - 1.0).abs() < 1e-6);
        assert_eq!(iou(&a, &[20.0, 0.0, 5.0, 5.0]), 0.0);
        assert!((iou(&a, &[5.0, 0.0, 10.0, 10.0]) - 50.0 / 150.0).abs() < 1e-6);
    }
}
