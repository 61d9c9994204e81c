//! Our face detector, distilled from YuNet: a small depthwise-separable network with YuNet's
//! output contract (box + 5 landmarks per cell at strides 8, 16, 32), trained on the teacher's
//! detections on real photos and on the generator's ground truth, exported to ONNX and run by
//! the firmware's YuNet decoder unchanged.

pub mod data;
pub mod eval;
pub mod export;
pub mod hard_sets;
pub mod import;
pub mod model;
pub mod targets;
pub mod teacher;
pub mod training;
