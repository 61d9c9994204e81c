//! Pi CSI cameras through `rpicam-vid`. A CSI sensor's own V4L2 node gives raw Bayer, so the Pi
//! camera stack's tool does the ISP work and writes I420 (YUV 4:2:0 planar) frames to stdout:
//! `rpicam-vid --codec yuv420 --width W --height H --framerate F --timeout 0 --nopreview -o -`.
//! A reader thread hands frames over through [`crate::newest`]: the pipeline always gets the
//! newest complete one.

use crate::config::CameraConfig;
use crate::cost::Meter;
use crate::frame::{Frame, FrameError, FrameSource, bt601_to_rgb};
use crate::newest::{self, Newest};
use image::RgbImage;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RpicamSource {
    program: String,
    child: Child,
    frames: Newest,
    image: RgbImage,
    origin: String,
}

fn camera_error(program: &str, message: String) -> FrameError {
    FrameError::Camera { device: program.to_string(), message }
}

impl RpicamSource {
    /// Start `cfg.device` (the `rpicam-vid` program) and skip `cfg.warmup_frames`.
    pub fn open(cfg: &CameraConfig) -> Result<Self, FrameError> {
        let program = cfg.device.clone();
        let (w, h) = (cfg.width, cfg.height);
        if !cfg.fits_rpicam() {
            return Err(camera_error(&program, format!("{w}×{h}: rpicam frames need a width that is a multiple of 64 and an even height")));
        }
        let mut child = Command::new(&program)
            .args(["--codec", "yuv420", "--width", &w.to_string(), "--height", &h.to_string(), "--framerate", &cfg.fps.to_string()])
            .args(["--timeout", "0", "--nopreview", "-o", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| camera_error(&program, format!("cannot start it ({e}); expected rpicam-vid from the rpicam-apps package")))?;
        let mut stdout = child.stdout.take().ok_or_else(|| camera_error(&program, "no stdout pipe".into()))?;
        let (publisher, frames) = newest::channel();
        let frame_bytes = (w * h * 3 / 2) as usize;
        std::thread::Builder::new()
            .name("rpicam-reader".into())
            .spawn(move || {
                let mut buf = vec![0u8; frame_bytes];
                loop {
                    if let Err(e) = stdout.read_exact(&mut buf) {
                        let why = if e.kind() == std::io::ErrorKind::UnexpectedEof { "the stream ended".to_string() } else { e.to_string() };
                        return publisher.end(why);
                    }
                    publisher.publish_swap(&mut buf);
                    buf.resize(frame_bytes, 0);
                }
            })
            .map_err(|e| camera_error(&program, format!("cannot start the reader thread: {e}")))?;
        let mut source = Self { origin: format!("{program} {w}×{h}"), program, child, frames, image: RgbImage::new(w, h) };
        for _ in 0..cfg.warmup_frames {
            if let Err(why) = source.frames.wait(Duration::from_secs(5)) {
                let exit = source.child.try_wait().ok().flatten().map_or_else(|| "still running".to_string(), |s| s.to_string());
                return Err(camera_error(&source.program, format!("{why} while waiting for the first frames ({exit}); expected rpicam-vid from the rpicam-apps package and a connected camera")));
            }
        }
        source.frames.reset_dropped();
        Ok(source)
    }
}

/// I420 (planar Y, then U and V at half resolution) → RGB.
pub fn i420_to_rgb(i420: &[u8], out: &mut RgbImage) {
    let (w, h) = (out.width() as usize, out.height() as usize);
    let (y_plane, chroma) = i420.split_at(w * h);
    let (u_plane, v_plane) = chroma.split_at(w * h / 4);
    for (row, line) in out.as_mut().chunks_exact_mut(w * 3).enumerate() {
        for (col, px) in line.chunks_exact_mut(3).enumerate() {
            let c = (row / 2) * (w / 2) + col / 2;
            px.copy_from_slice(&bt601_to_rgb(y_plane[row * w + col], u_plane[c], v_plane[c]));
        }
    }
}

impl FrameSource for RpicamSource {
    fn next_frame(&mut self) -> Result<Frame<'_>, FrameError> {
        let meter = Meter::start();
        let i420 = self.frames.wait(Duration::from_secs(2)).map_err(|m| camera_error(&self.program, m))?;
        let capture = meter.stop();
        let meter = Meter::start();
        i420_to_rgb(i420, &mut self.image);
        Ok(Frame { image: &self.image, capture, decode: meter.stop(), origin: &self.origin })
    }

    fn describe(&self) -> String {
        format!("rpicam: {} ({} frames dropped so far)", self.origin, self.frames.dropped())
    }
}

impl Drop for RpicamSource {
    fn drop(&mut self) {
        // The reader thread ends on EOF once the child is gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for `rpicam-vid`: `frames` I420 frames of luma `y` and neutral chroma.
    fn fake_rpicam(dir: &std::path::Path, frames: u32, y: u8) -> String {
        let path = dir.join("rpicam-vid");
        let script = format!(
            "#!/bin/sh\n[ \"$2\" = yuv420 ] || exit 2\nw=$4; h=$6\ni=0\nwhile [ $i -lt {frames} ]; do\n  head -c $((w*h)) /dev/zero | tr '\\000' '\\{y:03o}'\n  head -c $((w*h/2)) /dev/zero | tr '\\000' '\\200'\n  i=$((i+1))\ndone\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    fn config(program: String) -> CameraConfig {
        CameraConfig { backend: crate::config::CameraBackend::Rpicam, device: program, width: 64, height: 48, warmup_frames: 1, ..CameraConfig::default() }
    }

    #[test]
    fn frames_arrive_as_rgb_then_the_end_of_the_stream_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = RpicamSource::open(&config(fake_rpicam(dir.path(), 4, 235))).unwrap();
        let frame = src.next_frame().unwrap();
        assert_eq!(frame.image.dimensions(), (64, 48));
        assert_eq!(frame.image.get_pixel(10, 10).0, [255, 255, 255], "Y = 235 is white in limited range");
        let mut more = 0;
        let err = loop {
            match src.next_frame() {
                Ok(_) => more += 1,
                Err(e) => break e.to_string(),
            }
        };
        assert!(more <= 2, "at most the two frames left after warm-up and the first, got {more}");
        assert!(err.contains("rpicam-vid") && err.contains("ended"), "{err}");
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = RpicamSource::open(&config("/nonexistent/rpicam-vid".into())).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/rpicam-vid") && err.contains("rpicam-apps"), "{err}");
    }

    #[test]
    fn black_and_mid_grey_convert_as_bt601() {
        let mut img = RgbImage::new(2, 2);
        i420_to_rgb(&[16, 126, 16, 126, 128, 128], &mut img);
        assert_eq!(img.get_pixel(0, 1).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(1, 1).0, [128, 128, 128]);
    }
}
