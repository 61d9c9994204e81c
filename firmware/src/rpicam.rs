//! Pi CSI cameras through `rpicam-vid`. A CSI sensor's own V4L2 node gives raw Bayer, so the Pi
//! camera stack's tool does the ISP work and writes I420 (YUV 4:2:0 planar) frames to stdout:
//! `rpicam-vid --codec yuv420 --width W --height H --framerate F --timeout 0 --nopreview -o -`.
//! A reader thread keeps only the newest complete frame, so a slow consumer never works on a
//! stale one; frames it had no time for are counted as dropped.

use crate::config::CameraConfig;
use crate::frame::{Frame, FrameError, FrameSource};
use image::RgbImage;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The newest frame the reader has completed.
#[derive(Default)]
struct Latest {
    i420: Vec<u8>,
    /// Frames completed so far; 0: none yet.
    sequence: u64,
    /// Why the reader stopped (the stream ended or failed).
    ended: Option<String>,
}

type Shared = Arc<(Mutex<Latest>, Condvar)>;

pub struct RpicamSource {
    program: String,
    child: Child,
    shared: Shared,
    /// The consumer's copy of the I420 bytes (swapped with the reader's, never reallocated).
    i420: Vec<u8>,
    consumed: u64,
    dropped: u64,
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
        if w % 64 != 0 || h % 2 != 0 {
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
        let frame_bytes = (w * h * 3 / 2) as usize;
        let shared: Shared = Arc::default();
        let mut stdout = child.stdout.take().ok_or_else(|| camera_error(&program, "no stdout pipe".into()))?;
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("rpicam-reader".into())
            .spawn(move || {
                let mut buf = vec![0u8; frame_bytes];
                let (lock, ready) = &*writer;
                let ended = loop {
                    if let Err(e) = stdout.read_exact(&mut buf) {
                        break if e.kind() == std::io::ErrorKind::UnexpectedEof { "the stream ended".to_string() } else { e.to_string() };
                    }
                    let mut latest = lock.lock().unwrap_or_else(|p| p.into_inner());
                    if latest.i420.len() != frame_bytes {
                        latest.i420 = vec![0; frame_bytes];
                    }
                    std::mem::swap(&mut latest.i420, &mut buf);
                    latest.sequence += 1;
                    ready.notify_all();
                };
                lock.lock().unwrap_or_else(|p| p.into_inner()).ended = Some(ended);
                ready.notify_all();
            })
            .map_err(|e| camera_error(&program, format!("cannot start the reader thread: {e}")))?;
        let mut source = Self {
            origin: format!("{program} {w}×{h}"),
            program,
            child,
            shared,
            i420: vec![0; frame_bytes],
            consumed: 0,
            dropped: 0,
            image: RgbImage::new(w, h),
        };
        for _ in 0..cfg.warmup_frames {
            source.wait_newest(Duration::from_secs(5))?;
        }
        source.dropped = 0;
        Ok(source)
    }

    /// Frames the reader completed that the consumer never saw (it was busy).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Block until a frame newer than the last one consumed is complete; take it.
    fn wait_newest(&mut self, timeout: Duration) -> Result<(), FrameError> {
        let (lock, ready) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut latest = lock.lock().unwrap_or_else(|p| p.into_inner());
        while latest.sequence == self.consumed {
            if let Some(why) = &latest.ended {
                return Err(camera_error(&self.program, format!("{why} (after {} frames)", latest.sequence)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(camera_error(&self.program, format!("no frame within {} ms", timeout.as_millis())));
            }
            latest = ready.wait_timeout(latest, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        self.dropped += latest.sequence - self.consumed - 1;
        self.consumed = latest.sequence;
        std::mem::swap(&mut self.i420, &mut latest.i420);
        Ok(())
    }
}

/// I420 → RGB, BT.601 limited range (what libcamera's video streams use by default).
pub fn i420_to_rgb(i420: &[u8], out: &mut RgbImage) {
    let (w, h) = (out.width() as usize, out.height() as usize);
    let (y_plane, chroma) = i420.split_at(w * h);
    let (u_plane, v_plane) = chroma.split_at(w * h / 4);
    for (row, line) in out.as_mut().chunks_exact_mut(w * 3).enumerate() {
        for (col, px) in line.chunks_exact_mut(3).enumerate() {
            let y = 1.164 * (y_plane[row * w + col] as f32 - 16.0);
            let c = (row / 2) * (w / 2) + col / 2;
            let (u, v) = (u_plane[c] as f32 - 128.0, v_plane[c] as f32 - 128.0);
            let to_u8 = |x: f32| x.round().clamp(0.0, 255.0) as u8;
            px[0] = to_u8(y + 1.596 * v);
            px[1] = to_u8(y - 0.392 * u - 0.813 * v);
            px[2] = to_u8(y + 2.017 * u);
        }
    }
}

impl FrameSource for RpicamSource {
    fn next_frame(&mut self) -> Result<Frame<'_>, FrameError> {
        let t0 = Instant::now();
        self.wait_newest(Duration::from_secs(2))?;
        let t1 = Instant::now();
        i420_to_rgb(&self.i420, &mut self.image);
        Ok(Frame { image: &self.image, capture: t1 - t0, decode: t1.elapsed(), origin: &self.origin })
    }

    fn describe(&self) -> String {
        format!("rpicam: {}", self.origin)
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
