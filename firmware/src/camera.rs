//! V4L2 capture (feature `v4l`): the camera is found by a `/dev/v4l/by-id` glob, the first
//! preferred format the driver accepts is used as the driver reports it back, two mmap buffers,
//! warm-up frames dropped. A capture thread owns the stream, hands frames over through
//! [`crate::newest`] (the pipeline always gets the newest), and reopens the device when it
//! disappears (unplug) and comes back.

use crate::config::CameraConfig;
use crate::cost::Meter;
use crate::frame::{Frame, FrameError, FrameSource, yuyv_to_rgb};
use crate::newest::{self, Newest, Publisher};
use image::RgbImage;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;
use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

/// What the driver agreed to.
#[derive(Clone, Debug, PartialEq)]
struct Negotiated {
    path: PathBuf,
    fourcc: [u8; 4],
    width: u32,
    height: u32,
}

pub struct V4lCamera {
    format: Negotiated,
    frames: Newest,
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

/// Open the device, negotiate the format, start streaming, drop the warm-up frames.
fn open_stream(cfg: &CameraConfig) -> Result<(Stream<'static>, Negotiated), FrameError> {
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
    let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, 2).map_err(|e| cam_err(&name, format!("mmap streaming failed: {e}")))?;
    for _ in 0..cfg.warmup_frames {
        stream.next().map_err(|e| cam_err(&name, e))?;
    }
    Ok((stream, Negotiated { path, fourcc: fmt.fourcc.repr, width: fmt.width, height: fmt.height }))
}

/// The capture thread: publish every frame; on a capture error, reopen once a second until the
/// device is back with the same format, or the consumer is gone.
fn capture(cfg: CameraConfig, publisher: Publisher, ready: mpsc::Sender<Result<Negotiated, FrameError>>) {
    let (mut stream, format) = match open_stream(&cfg) {
        Ok(opened) => opened,
        Err(e) => return drop(ready.send(Err(e))),
    };
    let _ = ready.send(Ok(format.clone()));
    let name = format.path.display().to_string();
    while !publisher.closed() {
        match stream.next() {
            Ok((buf, _meta)) => publisher.publish_copy(buf),
            Err(e) => {
                log::warn!("camera {name}: {e}; reopening");
                drop(stream);
                stream = loop {
                    std::thread::sleep(Duration::from_secs(1));
                    if publisher.closed() {
                        return;
                    }
                    match open_stream(&cfg) {
                        Ok((s, f)) if f == format => break s,
                        Ok((_, f)) => return publisher.end(format!("reopened with another format ({f:?}, was {format:?})")),
                        Err(e) => log::debug!("camera {name}: still gone: {e}"),
                    }
                };
                log::info!("camera {name}: reopened");
            }
        }
    }
}

impl V4lCamera {
    pub fn open(cfg: &CameraConfig) -> Result<Self, FrameError> {
        let (publisher, frames) = newest::channel();
        let (ready, negotiated) = mpsc::channel();
        let thread_cfg = cfg.clone();
        std::thread::Builder::new()
            .name("v4l2-capture".into())
            .spawn(move || capture(thread_cfg, publisher, ready))
            .map_err(|e| cam_err(&cfg.device, format!("cannot start the capture thread: {e}")))?;
        let format = negotiated.recv_timeout(Duration::from_secs(10)).map_err(|_| cam_err(&cfg.device, "no answer from the device within 10 s"))??;
        let origin = format.path.display().to_string();
        log::info!("camera {origin} streaming {}x{} {}", format.width, format.height, String::from_utf8_lossy(&format.fourcc));
        Ok(Self { image: RgbImage::new(format.width, format.height), format, frames, origin })
    }
}

fn decode(format: &Negotiated, origin: &str, data: &[u8], image: &mut RgbImage) -> Result<(), FrameError> {
    match &format.fourcc {
        b"MJPG" => {
            *image = image::load_from_memory_with_format(data, image::ImageFormat::Jpeg).map_err(|e| cam_err(origin, format!("corrupt MJPEG frame: {e}")))?.to_rgb8();
            Ok(())
        }
        b"YUYV" => yuyv_to_rgb(data, image).map_err(|e| cam_err(origin, format!("YUYV frame of {} bytes: {e}", data.len()))),
        other => Err(cam_err(origin, format!("unsupported pixel format {}", String::from_utf8_lossy(other)))),
    }
}

impl FrameSource for V4lCamera {
    fn next_frame(&mut self) -> Result<Frame<'_>, FrameError> {
        let meter = Meter::start();
        let data = self.frames.wait(Duration::from_secs(3)).map_err(|m| cam_err(&self.origin, m))?;
        let capture = meter.stop();
        let meter = Meter::start();
        decode(&self.format, &self.origin, data, &mut self.image)?;
        Ok(Frame { image: &self.image, capture, decode: meter.stop(), origin: &self.origin })
    }

    fn describe(&self) -> String {
        let f = &self.format;
        format!("V4L2 camera {} ({}x{} {}, {} frames dropped so far)", f.path.display(), f.width, f.height, String::from_utf8_lossy(&f.fourcc), self.frames.dropped())
    }
}
