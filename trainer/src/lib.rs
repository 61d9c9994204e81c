//! Seg-Distilled-ID trainer: a MobileNetV2 encoder trained jointly on face identification and a
//! segmentation teacher (Burn), evaluated through tract, exported as ONNX without the teacher.
//!
//! ```no_run
//! use burn::backend::Autodiff;
//! use trainer::{model::{ModelConfig, EncoderConfig}, training::TrainConfig};
//!
//! let cfg = TrainConfig::new(ModelConfig::new(EncoderConfig::new(), 67));
//! let (train, val) = (vec![], vec![]); // SampleRefs from faceunlock_data loaders
//! let report = trainer::training::train::<Autodiff<burn::backend::Flex>>(
//!     &cfg, &train, &val, std::path::Path::new("runs/joint"), &Default::default()).unwrap();
//! println!("best epoch {}", report.state.best_epoch);
//! ```

pub mod checkpoint;
pub mod data;
pub mod detector;
pub mod distill;
pub mod eval;
pub mod export;
pub mod inference;
pub mod kd;
pub mod landmarks;
pub mod loss;
pub mod model;
pub mod refiner;
pub mod sources;
pub mod steps;
pub mod training;
pub mod whiten;
