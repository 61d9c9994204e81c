//! The model manifest (`models/manifest.toml`) and the contract each shipped model must honour:
//! file checksum, tensor names and shapes, normalisation, calibrated thresholds.

use crate::normalize::Normalization;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid model manifest: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: sha256 is {found}, the manifest expects {expected} (wrong or corrupted model file)")]
    Checksum { path: PathBuf, expected: String, found: String },
    #[error("{path}: the manifest has no [{section}] entry")]
    Missing { path: PathBuf, section: &'static str },
}

/// A named tensor with a fixed shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

impl std::fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {:?}", self.name, self.shape)
    }
}

/// Decision thresholds on cosine similarity, each calibrated at a false-accept rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub far_1e3: f32,
    pub far_1e4: f32,
}

/// The face embedder: aligned crop in, embedding out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderEntry {
    pub file: String,
    pub sha256: String,
    pub input: TensorSpec,
    pub output: TensorSpec,
    pub crop_size: u32,
    pub normalization: Normalization,
    pub thresholds: Thresholds,
    pub parameters: u64,
    /// Free-form provenance: data, command, hardware, time, metrics.
    #[serde(default)]
    pub provenance: toml::Table,
}

/// The face detector: a YuNet-compatible ONNX model (BGR 0..255 input).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorEntry {
    pub file: String,
    pub sha256: String,
    pub input: TensorSpec,
    #[serde(default)]
    pub provenance: toml::Table,
}

/// The landmark refiner that follows the detector: a face crop aligned on the detector's
/// landmarks in (`[1, 3, S, S]`, normalised as `normalization` says), the landmarks' offsets
/// from the template out (`[1, 10]`, see [`crate::refine`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefinerEntry {
    pub file: String,
    pub sha256: String,
    pub input: TensorSpec,
    pub output: TensorSpec,
    pub normalization: Normalization,
    /// How many times the refiner is applied, each pass cropping on the previous one's result.
    pub passes: u32,
    #[serde(default)]
    pub provenance: toml::Table,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub embedder: Option<EmbedderEntry>,
    pub detector: Option<DetectorEntry>,
    /// Optional: without it the detector's landmarks are used as they are.
    pub refiner: Option<RefinerEntry>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, ContractError> {
        let text = std::fs::read_to_string(path).map_err(|source| ContractError::Io { path: path.into(), source })?;
        Self::from_toml(path, &text)
    }

    /// Parse a manifest's text; `path` names it in errors.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ContractError> {
        toml::from_str(text).map_err(|e| ContractError::Parse { path: path.into(), message: e.to_string() })
    }

    pub fn embedder(&self, manifest_path: &Path) -> Result<&EmbedderEntry, ContractError> {
        self.embedder.as_ref().ok_or(ContractError::Missing { path: manifest_path.into(), section: "embedder" })
    }

    pub fn detector(&self, manifest_path: &Path) -> Result<&DetectorEntry, ContractError> {
        self.detector.as_ref().ok_or(ContractError::Missing { path: manifest_path.into(), section: "detector" })
    }
}

/// Hex sha256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String, ContractError> {
    let bytes = std::fs::read(path).map_err(|source| ContractError::Io { path: path.into(), source })?;
    Ok(sha256_hex(&bytes))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Read `path` and check it against `expected`; returns the bytes on success.
pub fn read_verified(path: &Path, expected: &str) -> Result<Vec<u8>, ContractError> {
    let bytes = std::fs::read(path).map_err(|source| ContractError::Io { path: path.into(), source })?;
    let found = sha256_hex(&bytes);
    if !found.eq_ignore_ascii_case(expected) {
        return Err(ContractError::Checksum { path: path.into(), expected: expected.into(), found });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tampered_file_is_refused_with_both_digests() {
        let dir = std::env::temp_dir().join(format!("fu-contract-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("m.onnx");
        std::fs::write(&f, b"model bytes").unwrap();
        let good = sha256_hex(b"model bytes");
        assert_eq!(read_verified(&f, &good).unwrap(), b"model bytes");
        std::fs::write(&f, b"model bytez").unwrap();
        let err = read_verified(&f, &good).unwrap_err().to_string();
        assert!(err.contains("m.onnx") && err.contains(&good), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn unknown_manifest_keys_are_rejected() {
        let err = toml::from_str::<Manifest>("[embedder]\nfile='x'\nbogus=1\n").unwrap_err().to_string();
        assert!(err.contains("bogus") || err.contains("unknown"), "{err}");
    }
}
