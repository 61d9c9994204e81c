//! The landmark refiner: a second, crop-level stage after our one-stage detector. The face is
//! aligned on the detector's landmarks into a small crop ([`faceunlock_core::refine`]) and a
//! small CNN regresses where the landmarks really are. It is trained on the same labelled faces
//! as the detector (YuNet's on LFW folds 1-5, the generator's ground truth), each cropped on
//! landmarks perturbed the way a detector errs, and exported to ONNX for the firmware's
//! [`faceunlock::refine::LandmarkRefiner`].

pub mod data;
pub mod export;
pub mod model;
pub mod training;
