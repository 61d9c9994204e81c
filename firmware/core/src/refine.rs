//! The landmark refiner's contract, shared by the trainer (its targets) and the firmware (its
//! decoding). A detected face is cropped on the ArcFace template through the detector's own
//! landmarks (the same alignment as the embedder's, at the refiner's crop size); the refiner
//! returns where the five landmarks really are in that crop, as offsets from the template in
//! crop widths, ten values `[x0, y0, …, x4, y4]`.
//!
//! ```
//! use faceunlock_core::refine::{crop_spec, decode, encode};
//! let spec = crop_spec(64);
//! let mut marks = spec.template;
//! marks.0[2][0] += 3.2; // the nose 3.2 px right of the template's
//! let out = encode(&marks, &spec);
//! assert!((out[4] - 0.05).abs() < 1e-6);
//! assert_eq!(decode(&out, &spec), marks);
//! ```

use crate::geometry::{CropSpec, Landmarks5};

/// The refiner's crop side the trainer makes by default.
pub const REFINE_CROP: u32 = 64;

/// The crop a refiner of input side `size` sees.
pub fn crop_spec(size: u32) -> CropSpec {
    CropSpec::arcface(size)
}

/// Landmarks in crop pixels → the refiner's ten outputs.
pub fn encode(marks: &Landmarks5, spec: &CropSpec) -> [f32; 10] {
    let s = spec.size as f32;
    std::array::from_fn(|i| (marks.0[i / 2][i % 2] - spec.template.0[i / 2][i % 2]) / s)
}

/// The refiner's outputs (at least ten) → landmarks in crop pixels.
pub fn decode(out: &[f32], spec: &CropSpec) -> Landmarks5 {
    let s = spec.size as f32;
    Landmarks5(std::array::from_fn(|p| std::array::from_fn(|c| spec.template.0[p][c] + out[2 * p + c] * s)))
}
