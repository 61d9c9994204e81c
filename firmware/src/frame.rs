//! Frame sources behind one trait: a still image, a directory replayed in name order, and
//! (feature `v4l`) a V4L2 camera; helper processes for CSI cameras ([`crate::piped`]).

use crate::cost::{Cost, Meter};
use image::RgbImage;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{path}: {message}")]
    Source { path: PathBuf, message: String },
    #[error("{path}: not a decodable image ({message}); expected JPEG or PNG")]
    Decode { path: PathBuf, message: String },
    #[error("{0}: no more frames")]
    Exhausted(PathBuf),
    #[error("camera {device}: {message}")]
    Camera { device: String, message: String },
}

/// A captured frame and what getting it cost.
pub struct Frame<'a> {
    pub image: &'a RgbImage,
    /// Waiting for / reading the raw frame.
    pub capture: Cost,
    /// Turning it into RGB.
    pub decode: Cost,
    /// Where it came from (file name or device), for logs.
    pub origin: &'a str,
}

pub trait FrameSource {
    fn next_frame(&mut self) -> Result<Frame<'_>, FrameError>;
    /// A human description for logs and `doctor`.
    fn describe(&self) -> String;
}

/// One pixel of BT.601 limited-range YUV to RGB (V4L2 YUYV, libcamera's video streams).
pub fn bt601_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let (c, u, v) = (1.164 * (y as f32 - 16.0), u as f32 - 128.0, v as f32 - 128.0);
    [c + 1.596 * v, c - 0.392 * u - 0.813 * v, c + 2.017 * u].map(|x| x.round().clamp(0.0, 255.0) as u8)
}

/// Read and decode an image file into `into`: what the reading and the decoding cost.
pub fn decode_file(path: &Path, into: &mut RgbImage) -> Result<(Cost, Cost), FrameError> {
    let meter = Meter::start();
    let bytes = std::fs::read(path).map_err(|e| FrameError::Source { path: path.into(), message: e.to_string() })?;
    let read = meter.stop();
    let meter = Meter::start();
    *into = decode_image(path, &bytes)?;
    Ok((read, meter.stop()))
}

/// Largest image side and decoder allocation accepted: a camera frame or a photo fits, a file
/// whose header claims gigapixels is refused before anything is allocated.
pub const MAX_IMAGE_SIDE: u32 = 8192;
pub const MAX_IMAGE_ALLOC: u64 = 512 << 20;

/// Decode JPEG or PNG `bytes` (from `path`, named in errors) into RGB, within the limits above.
pub fn decode_image(path: &Path, bytes: &[u8]) -> Result<RgbImage, FrameError> {
    let err = |e: image::ImageError| FrameError::Decode { path: path.into(), message: e.to_string() };
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| err(e.into()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    Ok(reader.decode().map_err(err)?.to_rgb8())
}

/// One image, served again and again (decoded once).
pub struct StillImage {
    path: PathBuf,
    origin: String,
    image: RgbImage,
    decode: Cost,
}

impl StillImage {
    pub fn open(path: &Path) -> Result<Self, FrameError> {
        let mut image = RgbImage::new(0, 0);
        let (_, decode) = decode_file(path, &mut image)?;
        Ok(Self { path: path.into(), origin: path.display().to_string(), image, decode })
    }
}

impl FrameSource for StillImage {
    fn next_frame(&mut self) -> Result<Frame<'_>, FrameError> {
        Ok(Frame { image: &self.image, capture: Cost::default(), decode: self.decode, origin: &self.origin })
    }
    fn describe(&self) -> String {
        format!("still image {}", self.path.display())
    }
}

/// The images of a directory (`.jpg`, `.jpeg`, `.png`) in name order, or an explicit list.
pub struct ImageFiles {
    files: Vec<PathBuf>,
    next: usize,
    looping: bool,
    image: RgbImage,
    origin: String,
}

impl ImageFiles {
    pub fn from_list(files: Vec<PathBuf>, looping: bool) -> Self {
        Self { files, next: 0, looping, image: RgbImage::new(0, 0), origin: String::new() }
    }

    pub fn open_dir(dir: &Path, looping: bool) -> Result<Self, FrameError> {
        let err = |e: std::io::Error| FrameError::Source { path: dir.into(), message: e.to_string() };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(FrameError::Source { path: dir.into(), message: "no .jpg/.jpeg/.png images in this directory".into() });
        }
        Ok(Self::from_list(files, looping))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl FrameSource for ImageFiles {
    fn next_frame(&mut self) -> Result<Frame<'_>, FrameError> {
        if self.next >= self.files.len() {
            if !self.looping || self.files.is_empty() {
                return Err(FrameError::Exhausted(self.files.last().cloned().unwrap_or_default()));
            }
            self.next = 0;
        }
        let path = &self.files[self.next];
        self.next += 1;
        let (capture, decode) = decode_file(path, &mut self.image)?;
        self.origin = path.display().to_string();
        Ok(Frame { image: &self.image, capture, decode, origin: &self.origin })
    }
    fn describe(&self) -> String {
        format!("{} image file(s){}", self.files.len(), if self.looping { ", looping" } else { "" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_replays_in_name_order_and_reports_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3])).save(dir.path().join("b.png")).unwrap();
        RgbImage::from_pixel(2, 2, image::Rgb([9, 9, 9])).save(dir.path().join("a.png")).unwrap();
        std::fs::write(dir.path().join("c.jpg"), b"not a jpeg").unwrap();
        let mut src = ImageFiles::open_dir(dir.path(), false).unwrap();
        assert_eq!(src.next_frame().unwrap().image.width(), 2);
        assert_eq!(src.next_frame().unwrap().image.width(), 4);
        let err = src.next_frame().err().unwrap().to_string();
        assert!(err.contains("c.jpg") && err.contains("JPEG or PNG"), "{err}");
        assert!(matches!(src.next_frame(), Err(FrameError::Exhausted(_))));
    }
}
