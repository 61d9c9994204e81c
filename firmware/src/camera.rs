//! V4L2 capture (feature `v4l`): the camera is found by a `/dev/v4l/by-id` glob, the first
//! preferred format the driver accepts is used as the driver reports it back, two mmap buffers,
//! warm-up frames dropped, and the device reopened when it disappears (unplug).

use crate::config::CameraConfig;
use crate::frame::{Frame, FrameError, FrameSource};
use image::RgbImage;
use std::path::PathBuf;
use std::time::Instant;
use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

pub struct V4lCamera {
    cfg: CameraConfig,
    path: PathBuf,
    stream: Stream<'static>,
    fourcc: [u8; 4],
    width: u32,
    height: u32,
    image: RgbImage,
    origin: String,
}

fn cam_err(device: &str, message: impl std::fmt::Display) -> FrameError {
    FrameError::Camera { device: device.into(), message: message.to_string() }
}

/// Resolve a pattern with at most one `*` in its file name.
pub fn resolve_device(pattern: &str) -> Result<PathBuf, FrameError> {
    let p = PathBuf::from(pattern);
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let Some((prefix, suffix)) = name.split_once('*') else { return Ok(p) };
    let dir = p.parent().unwrap_or(std::path::Path::new("/"));
    let mut hits: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| cam_err(pattern, format!("cannot list {}: {e} (is a camera plugged in?)", dir.display())))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|c| c.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix)))
        .collect();
    hits.sort();
    hits.into_iter().next().ok_or_else(|| cam_err(pattern, "no device matches (is a camera plugged in?)"))
}

impl V4lCamera {
    pub fn open(cfg: &CameraConfig) -> Result<Self, FrameError> {
        let path = resolve_device(&cfg.device)?;
        let name = path.display().to_string();
        let dev = Device::with_path(&path).map_err(|e| cam_err(&name, format!("open failed: {e}")))?;
        let mut chosen = None;
        for want in &cfg.formats {
            let Ok(code) = <[u8; 4]>::try_from(want.as_bytes()) else { continue };
            let mut fmt = dev.format().map_err(|e| cam_err(&name, e))?;
            fmt.width = cfg.width;
            fmt.height = cfg.height;
            fmt.fourcc = FourCC::new(&code);
            let got = dev.set_format(&fmt).map_err(|e| cam_err(&name, e))?;
            if got.fourcc.repr == code {
                chosen = Some(got);
                break;
            }
        }
        let fmt = chosen.ok_or_else(|| cam_err(&name, format!("the driver accepts none of the formats {:?}", cfg.formats)))?;
        let stream = Stream::with_buffers(&dev, Type::VideoCapture, 2).map_err(|e| cam_err(&name, format!("mmap streaming failed: {e}")))?;
        let mut cam = Self {
            cfg: cfg.clone(),
            path,
            stream,
            fourcc: fmt.fourcc.repr,
            width: fmt.width,
            height: fmt.height,
            image: RgbImage::new(fmt.width, fmt.height),
            origin: name,
        };
        log::info!("camera {} streaming {}x{} {}", cam.origin, cam.width, cam.height, String::from_utf8_lossy(&cam.fourcc));
        for _ in 0..cfg.warmup_frames {
            cam.stream.next().map_err(|e| cam_err(&cam.origin, e))?;
        }
        Ok(cam)
    }

    fn decode(&mut self, data: &[u8]) -> Result<(), FrameError> {
        match &self.fourcc {
            b"MJPG" => {
                self.image = image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
                    .map_err(|e| cam_err(&self.origin, format!("corrupt MJPEG frame: {e}")))?
                    .to_rgb8();
                Ok(())
            }
            b"YUYV" => {
                yuyv_to_rgb(data, &mut self.image);
                Ok(())
            }
            other => Err(cam_err(&self.origin, format!("unsupported pixel format {}", String::from_utf8_lossy(other)))),
        }
    }
}

/// YUYV 4:2:2 to RGB (BT.601, limited range).
pub fn yuyv_to_rgb(data: &[u8], out: &mut RgbImage) {
    let raw: &mut [u8] = out;
    let pairs = raw.len() / 6;
    for (i, px) in data.chunks_exact(4).enumerate().take(pairs) {
        let (y0, u, y1, v) = (px[0] as f32, px[1] as f32 - 128.0, px[2] as f32, px[3] as f32 - 128.0);
        for (k, y) in [y0, y1].into_iter().enumerate() {
            let c = 1.164 * (y - 16.0);
            let rgb = [c + 1.596 * v, c - 0.392 * u - 0.813 * v, c + 2.017 * u];
            let o = (i * 2 + k) * 3;
            for j in 0..3 {
                raw[o + j] = rgb[j].clamp(0.0, 255.0) as u8;
            }
        }
    }
}

impl FrameSource for V4lCamera {
    fn next_frame(&mut self) -> Result<Frame<'_>, FrameError> {
        let t0 = Instant::now();
        let data = match self.stream.next() {
            Ok((buf, _meta)) => buf.to_vec(),
            Err(e) => {
                log::warn!("camera {}: {e}; reopening", self.origin);
                *self = Self::open(&self.cfg)?;
                self.stream.next().map_err(|e| cam_err(&self.origin, e))?.0.to_vec()
            }
        };
        let capture = t0.elapsed();
        let t1 = Instant::now();
        self.decode(&data)?;
        Ok(Frame { image: &self.image, capture, decode: t1.elapsed(), origin: &self.origin })
    }

    fn describe(&self) -> String {
        format!("V4L2 camera {} ({}x{} {})", self.path.display(), self.width, self.height, String::from_utf8_lossy(&self.fourcc))
    }
}
