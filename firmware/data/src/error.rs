//! Errors of the data crate: every one names the file and what was expected of it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a readable image ({message}); expected a JPEG or PNG file")]
    Decode { path: PathBuf, message: String },
    #[error("{path}: cannot encode ({message})")]
    Encode { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    Format { path: PathBuf, line: usize, message: String },
    #[error("{path}: mask is {found:?}, expected {expected:?} to match its image")]
    MaskSize { path: PathBuf, expected: (u32, u32), found: (u32, u32) },
    #[error("{path}: pixel ({x}, {y}) has colour {colour:?}, expected pure red, green or blue")]
    MaskColour { path: PathBuf, x: u32, y: u32, colour: [u8; 3] },
    #[error("{path}: class index {value} at ({x}, {y}), expected 0..13")]
    MaskClass { path: PathBuf, x: u32, y: u32, value: u8 },
}

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.to_path_buf(), source }
}

/// Write `bytes` to `path` so that a crash leaves either the old file or the new one, never a
/// torn mix: temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

pub fn read_text(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

pub fn decode_rgb(path: &Path) -> Result<image::RgbImage, DataError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    image::load_from_memory(&bytes)
        .map(|i| i.to_rgb8())
        .map_err(|e| DataError::Decode { path: path.into(), message: e.to_string() })
}
