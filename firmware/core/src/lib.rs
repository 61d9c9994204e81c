//! What the firmware and the trainer must agree on, in one place: the canonical face crop
//! (geometry and 5-point alignment), the pixel normalisation, the landmark refiner's crop and
//! outputs, the rule that calibrates a threshold at a false-accept rate, and the model contract
//! that a shipped ONNX file is checked against.
//!
//! ```
//! use faceunlock_core::{align::Aligner, geometry::{Landmarks5, CropSpec}};
//! use image::RgbImage;
//!
//! let frame = RgbImage::from_pixel(320, 240, image::Rgb([120, 100, 90]));
//! let spec = CropSpec::default(); // 128×128, ArcFace-style template
//! // Five points: left eye, right eye, nose tip, left and right mouth corner (image pixels).
//! let marks = Landmarks5::new([[140.0, 100.0], [180.0, 100.0], [160.0, 122.0], [144.0, 145.0], [176.0, 145.0]]);
//! let mut aligner = Aligner::new(spec);
//! let crop = aligner.align(&frame, &marks).unwrap();
//! assert_eq!((crop.width(), crop.height()), (128, 128));
//! ```

pub mod align;
pub mod calibration;
pub mod contract;
pub mod geometry;
pub mod grid;
pub mod homography;
pub mod normalize;
pub mod refine;
