//! Frame sources behind one trait: a still image, a directory replayed in name order, and
//! (feature `v4l`) a V4L2 camera; helper processes for CSI cameras ([`crate::piped`]).

use crate::cost::{Cost, Meter};
use image::RgbImage;
use std::path::{Path, PathBuf};
use yuvutils_rs::{YuvError, YuvPackedImage, YuvPlanarImage, YuvRange, YuvStandardMatrix};

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

/// The colour space of the cameras' YUV frames (V4L2 YUYV, libcamera's and GStreamer's I420):
/// BT.601, limited range. Conversions go through `yuvutils-rs` (NEON on arm64, chosen at run
/// time: 0.7 M instructions for a 640×480 frame on a Cortex-A72, was 17.8 M in plain Rust), whose
/// fixed-point arithmetic stays within three levels of the exact formula at the corners of the
/// gamut and within one on greys, well under a camera's noise.
const CAMERA_YUV: (YuvRange, YuvStandardMatrix) = (YuvRange::Limited, YuvStandardMatrix::Bt601);

/// I420 (planar Y, then U and V at half resolution, even width and height) → RGB.
pub fn i420_to_rgb(i420: &[u8], out: &mut RgbImage) -> Result<(), YuvError> {
    let (w, h) = (out.width(), out.height());
    let luma = (w * h) as usize;
    let (y_plane, chroma) = i420.split_at(luma.min(i420.len()));
    let (u_plane, v_plane) = chroma.split_at((luma / 4).min(chroma.len()));
    let image = YuvPlanarImage { y_plane, y_stride: w, u_plane, u_stride: w / 2, v_plane, v_stride: w / 2, width: w, height: h };
    yuvutils_rs::yuv420_to_rgb(&image, out.as_mut(), 3 * w, CAMERA_YUV.0, CAMERA_YUV.1)
}

/// YUYV 4:2:2 (packed, even width) → RGB.
pub fn yuyv_to_rgb(data: &[u8], out: &mut RgbImage) -> Result<(), YuvError> {
    let (w, h) = (out.width(), out.height());
    let image = YuvPackedImage { yuy: data, yuy_stride: 2 * w, width: w, height: h };
    yuvutils_rs::yuyv422_to_rgb(&image, out.as_mut(), 3 * w, CAMERA_YUV.0, CAMERA_YUV.1)
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

    /// BT.601 limited range, exactly.
    fn bt601(y: u8, u: u8, v: u8) -> [f32; 3] {
        let (c, u, v) = (1.164 * (f32::from(y) - 16.0), f32::from(u) - 128.0, f32::from(v) - 128.0);
        [c + 1.596 * v, c - 0.392 * u - 0.813 * v, c + 2.017 * u].map(|x| x.clamp(0.0, 255.0))
    }

    /// Every legal (y, u, v) on a grid (limited range: y 16-235, u and v 16-240), as a 2-pixel
    /// wide image per (u, v) pair, one luma per row.
    #[test]
    fn i420_and_yuyv_convert_within_three_levels_of_the_formula() {
        let lumas: Vec<u8> = (16..=235u8).collect();
        for (u, v) in (16..=240u8).step_by(4).flat_map(|u| (16..=240u8).step_by(4).map(move |v| (u, v))) {
            let mut i420: Vec<u8> = lumas.iter().flat_map(|&y| [y, y]).collect();
            i420.extend(std::iter::repeat_n(u, lumas.len() / 2).chain(std::iter::repeat_n(v, lumas.len() / 2)));
            let yuyv: Vec<u8> = lumas.iter().flat_map(|&y| [y, u, y, v]).collect();
            let height = lumas.len() as u32;
            let (mut from_i420, mut from_yuyv) = (RgbImage::new(2, height), RgbImage::new(2, height));
            i420_to_rgb(&i420, &mut from_i420).unwrap();
            yuyv_to_rgb(&yuyv, &mut from_yuyv).unwrap();
            for (img, what) in [(&from_i420, "I420"), (&from_yuyv, "YUYV")] {
                for (px, &y) in img.pixels().zip(lumas.iter().flat_map(|y| [y, y])) {
                    let exact = bt601(y, u, v);
                    for c in 0..3 {
                        assert!((f32::from(px[c]) - exact[c]).abs() <= 3.0, "{what} y {y} u {u} v {v}: {:?} vs {exact:?}", px.0);
                    }
                }
            }
        }
    }

    #[test]
    fn a_frame_shorter_than_its_size_is_an_error_not_a_partial_image() {
        let mut img = RgbImage::new(4, 4);
        assert!(i420_to_rgb(&[16; 20], &mut img).is_err());
        assert!(yuyv_to_rgb(&[16; 24], &mut img).is_err());
    }

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
