//! faceunlock firmware: camera → detect → align → embed → match → unlock.
pub mod config;
pub mod decision;
pub mod detect;
pub mod embed;
pub mod frame;
pub mod quality;
pub mod relay;
mod tensor_io;
pub mod templates;
