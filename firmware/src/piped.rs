//! Cameras read as raw I420 frames (YUV 4:2:0 planar) from a helper process's stdout:
//! `rpicam-vid` for Pi CSI cameras, whose own V4L2 node gives raw Bayer, and `gst-launch-1.0`
//! for Jetson CSI cameras, which NVIDIA's Argus stack (`nvarguscamerasrc`) serves.
//!
//! A reader thread hands frames over through [`crate::newest`], so the pipeline always gets the
//! newest complete one, drops each helper start's warm-up frames, and starts the helper again
//! (once a second until it runs) when it dies: a camera glitch or a restarted camera daemon costs
//! a few frames, not the service. Meanwhile a frame wait says why none comes.

use crate::config::{CameraBackend, CameraConfig};
use crate::cost::Meter;
use crate::frame::{Frame, FrameError, FrameSource, i420_to_rgb};
use crate::newest::{self, Newest, Publisher};
use image::RgbImage;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long a dead helper waits before it is started again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// How a backend's helper is started.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    /// What the installer should check when the helper cannot run.
    pub hint: &'static str,
}

impl Launch {
    /// The helper for `cfg.backend` (`rpicam` or `gstreamer`), once the camera section passes
    /// [`CameraConfig::problems`] (frame size, pipeline).
    pub fn for_camera(cfg: &CameraConfig) -> Result<Self, FrameError> {
        if let Some(problem) = cfg.problems().into_iter().next() {
            return Err(camera_error(&cfg.device, problem));
        }
        let (w, h) = (cfg.width.to_string(), cfg.height.to_string());
        Ok(match (cfg.backend, cfg.pipeline.as_deref()) {
            (CameraBackend::Rpicam, _) => Self {
                program: cfg.device.clone(),
                args: [&["--codec", "yuv420", "--width", &w, "--height", &h, "--framerate", &cfg.fps.to_string()][..], &["--timeout", "0", "--nopreview", "-o", "-"]].concat().into_iter().map(String::from).collect(),
                hint: "rpicam-vid from the rpicam-apps package and a connected camera (`rpicam-hello --list-cameras`)",
            },
            (CameraBackend::Gstreamer, Some(pipeline)) => Self {
                program: cfg.device.clone(),
                // gst-launch joins its arguments with spaces but escapes the spaces inside each
                // one, so the pipeline goes in as one argument per token; `-q` keeps its
                // status lines off stdout, where the frames go.
                args: std::iter::once("-q")
                    .chain(pipeline.split_whitespace())
                    .chain(["!", &format!("video/x-raw,format=I420,width={w},height={h}"), "!", "fdsink", "fd=1"])
                    .map(String::from)
                    .collect(),
                hint: "gst-launch-1.0 (gstreamer1.0-tools) and the pipeline's elements (on a Jetson, nvarguscamerasrc from JetPack and a connected CSI camera: `gst-inspect-1.0 nvarguscamerasrc`)",
            },
            (backend, _) => return Err(camera_error(&cfg.device, format!("backend {backend} is not read from a helper process"))),
        })
    }
}

fn camera_error(program: &str, message: String) -> FrameError {
    FrameError::Camera { device: program.to_string(), message }
}

/// The running helper, shared by the reader thread (which restarts it) and the source (which
/// stops it).
#[derive(Default)]
struct Helper {
    child: Option<Child>,
    /// Set once the source is dropped: no more starts.
    stopping: bool,
    restarts: u64,
    /// The helper's last line on stderr, for error messages, and the thread that reads it.
    last_message: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

fn lock(helper: &Mutex<Helper>) -> MutexGuard<'_, Helper> {
    helper.lock().unwrap_or_else(|p| p.into_inner())
}

/// Start the helper unless the source is stopping; its stdout carries the frames.
fn start(launch: &Launch, helper: &Mutex<Helper>) -> Result<ChildStdout, String> {
    let mut h = lock(helper);
    if h.stopping {
        return Err("the camera was closed".into());
    }
    let mut child = Command::new(&launch.program)
        .args(&launch.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start it ({e}); expected {}", launch.hint))?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    if let Some(stderr) = child.stderr.take() {
        let (last, program) = (Arc::clone(&h.last_message), launch.program.clone());
        // Ends with the helper's stderr, when it exits.
        h.stderr_reader = std::thread::Builder::new()
            .name("camera-helper-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok).filter(|l| !l.trim().is_empty()) {
                    log::debug!("{program}: {line}");
                    *last.lock().unwrap_or_else(|p| p.into_inner()) = line;
                }
            })
            .ok();
    }
    h.child = Some(child);
    Ok(stdout)
}

/// Reap the helper after its stream ended: its exit status and last message.
fn reap(helper: &Mutex<Helper>) -> String {
    let mut h = lock(helper);
    let exit = match h.child.take().map(|mut c| c.wait()) {
        Some(Ok(status)) => status.to_string(),
        Some(Err(e)) => format!("wait failed: {e}"),
        None => "not running".into(),
    };
    // The helper is gone, so its stderr ends too (unless a child of its own still holds it).
    if let Some(reader) = h.stderr_reader.take() {
        for _ in 0..50 {
            if reader.is_finished() {
                let _ = reader.join();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let last = std::mem::take(&mut *h.last_message.lock().unwrap_or_else(|p| p.into_inner()));
    if last.is_empty() { exit } else { format!("{exit}; its last message: {last}") }
}

/// Fill `buf` with one frame: `Ok(None)` when it is full, `Ok(Some(n))` when the stream ended
/// after `n` bytes of it.
fn read_frame(stdout: &mut ChildStdout, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    let mut filled = 0;
    while filled < buf.len() {
        match stdout.read(&mut buf[filled..]) {
            Ok(0) => return Ok(Some(filled)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The reader thread: publish every frame after the warm-up ones; when the stream ends, report
/// why and start the helper again, unless it never gave a frame (then the stream is over: a
/// helper that cannot start the camera is the installer's to fix, and `open` says why).
fn pump(launch: Launch, cfg: CameraConfig, helper: Arc<Mutex<Helper>>, publisher: Publisher, mut stdout: ChildStdout) {
    let (w, h) = (cfg.width, cfg.height);
    let frame_bytes = (w * h * 3 / 2) as usize;
    let mut buf = vec![0u8; frame_bytes];
    let mut published_any = false;
    loop {
        let mut frames = 0u64;
        let ended = loop {
            match read_frame(&mut stdout, &mut buf) {
                Ok(None) => {
                    frames += 1;
                    if frames > cfg.warmup_frames as u64 {
                        publisher.publish_swap(&mut buf);
                        buf.resize(frame_bytes, 0);
                        published_any = true;
                    }
                }
                Ok(Some(0)) => break "the stream ended".to_string(),
                Ok(Some(n)) => break format!("the stream ended {n} bytes into a {w}×{h} I420 frame of {frame_bytes} bytes, after {frames} frames: its frames are not camera.width × camera.height"),
                Err(e) => break format!("reading its stdout failed: {e}"),
            }
        };
        let why = format!("{} stopped: {ended} (exit: {})", launch.program, reap(&helper));
        if publisher.closed() || lock(&helper).stopping {
            return;
        }
        if !published_any {
            return publisher.end(why);
        }
        log::warn!("camera {why}; starting it again");
        publisher.report(why.clone());
        stdout = loop {
            std::thread::sleep(RESTART_DELAY);
            match start(&launch, &helper) {
                Ok(out) => break out,
                Err(_) if lock(&helper).stopping => return,
                Err(e) => publisher.report(format!("{why}; starting it again failed: {e}")),
            }
        };
        lock(&helper).restarts += 1;
    }
}

pub struct PipedSource {
    launch: Launch,
    helper: Arc<Mutex<Helper>>,
    frames: Newest,
    image: RgbImage,
    origin: String,
}

impl PipedSource {
    /// Start the helper for `cfg` and wait for its first frame after `cfg.warmup_frames`.
    pub fn open(cfg: &CameraConfig) -> Result<Self, FrameError> {
        let launch = Launch::for_camera(cfg)?;
        let helper = Arc::new(Mutex::new(Helper::default()));
        let stdout = start(&launch, &helper).map_err(|e| camera_error(&launch.program, e))?;
        let (publisher, frames) = newest::channel();
        let (pump_launch, pump_cfg, pump_helper) = (launch.clone(), cfg.clone(), Arc::clone(&helper));
        let origin = format!("{} {}×{}", launch.program, cfg.width, cfg.height);
        // Built before the thread starts: an error below drops it, which stops the helper.
        let mut source = Self { launch, helper, frames, image: RgbImage::new(cfg.width, cfg.height), origin };
        std::thread::Builder::new()
            .name("camera-helper-reader".into())
            .spawn(move || pump(pump_launch, pump_cfg, pump_helper, publisher, stdout))
            .map_err(|e| camera_error(&source.launch.program, format!("cannot start the reader thread: {e}")))?;
        let first_frames = Duration::from_secs(5) + Duration::from_secs_f64(cfg.warmup_frames as f64 / cfg.fps.max(1) as f64);
        if let Err(why) = source.frames.wait(first_frames) {
            return Err(camera_error(&source.launch.program, format!("{why} while waiting for the first frame; expected {}", source.launch.hint)));
        }
        source.frames.reset_dropped();
        Ok(source)
    }
}

impl FrameSource for PipedSource {
    fn next_frame(&mut self) -> Result<Frame<'_>, FrameError> {
        let meter = Meter::start();
        let i420 = self.frames.wait(Duration::from_secs(2)).map_err(|m| camera_error(&self.launch.program, m))?;
        let capture = meter.stop();
        let meter = Meter::start();
        i420_to_rgb(i420, &mut self.image).map_err(|e| camera_error(&self.launch.program, format!("I420 frame of {} bytes: {e}", i420.len())))?;
        Ok(Frame { image: &self.image, capture, decode: meter.stop(), origin: &self.origin })
    }

    fn describe(&self) -> String {
        format!("{} ({} frames dropped so far, {} restarts)", self.origin, self.frames.dropped(), lock(&self.helper).restarts)
    }
}

impl Drop for PipedSource {
    fn drop(&mut self) {
        let mut h = lock(&self.helper);
        h.stopping = true;
        // The reader thread sees the end of the stream, then `stopping`, and ends.
        if let Some(mut child) = h.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// A stand-in helper named `program` that counts its starts in `starts` and writes `frames`
    /// I420 frames of `bytes` bytes each (a whole frame: 64×48×3/2), with luma 16 + 40·i for
    /// frame i and neutral chroma, then sleeps `linger` seconds and exits.
    fn stand_in(dir: &Path, program: &str, frames: u32, bytes: u32, linger: u32) -> String {
        let path = dir.join(program);
        let script = format!(
            "#!/bin/sh\necho start >> \"$0.starts\"\necho 'warming up' >&2\ni=0\nwhile [ $i -lt {frames} ]; do\n  y=$(printf '%03o' $((16 + 40 * i)))\n  {{ head -c 3072 /dev/zero | tr '\\000' \"\\\\$y\"; head -c 1536 /dev/zero | tr '\\000' '\\200'; }} | head -c {bytes}\n  i=$((i+1))\ndone\nsleep {linger}\necho 'camera gone' >&2\nexit 3\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    fn starts(program: &str) -> usize {
        std::fs::read_to_string(format!("{program}.starts")).map_or(0, |s| s.lines().count())
    }

    fn config(backend: CameraBackend, program: String, warmup_frames: u32) -> CameraConfig {
        let pipeline = (backend == CameraBackend::Gstreamer).then(|| "nvarguscamerasrc ! nvvidconv".to_string());
        CameraConfig { backend, device: program, width: 64, height: 48, warmup_frames, pipeline, ..CameraConfig::default() }
    }

    const BACKENDS: [(CameraBackend, &str); 2] = [(CameraBackend::Rpicam, "rpicam-vid"), (CameraBackend::Gstreamer, "gst-launch-1.0")];
    const FRAME: u32 = 64 * 48 * 3 / 2;

    #[test]
    fn each_helper_is_launched_for_i420_frames_of_the_configured_size() {
        let rpicam = Launch::for_camera(&config(CameraBackend::Rpicam, "rpicam-vid".into(), 0)).unwrap();
        assert_eq!(rpicam.args.join(" "), "--codec yuv420 --width 64 --height 48 --framerate 15 --timeout 0 --nopreview -o -");
        let mut cfg = config(CameraBackend::Gstreamer, "gst-launch-1.0".into(), 0);
        cfg.pipeline = Some("nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720  ! nvvidconv".into());
        let gst = Launch::for_camera(&cfg).unwrap();
        assert_eq!(gst.args, ["-q", "nvarguscamerasrc", "sensor-id=0", "!", "video/x-raw(memory:NVMM),width=1280,height=720", "!", "nvvidconv", "!", "video/x-raw,format=I420,width=64,height=48", "!", "fdsink", "fd=1"]);
    }

    #[test]
    fn a_size_the_helper_would_pad_is_refused_by_name() {
        for (backend, program) in BACKENDS {
            let mut cfg = config(backend, program.into(), 0);
            cfg.width = 60;
            let err = PipedSource::open(&cfg).err().unwrap().to_string();
            assert!(err.contains(program) && err.contains("60×48") && err.contains("multiple of"), "{err}");
        }
    }

    #[test]
    fn the_newest_frame_is_served_as_rgb_and_older_ones_are_dropped() {
        for (backend, program) in BACKENDS {
            let dir = tempfile::tempdir().unwrap();
            let mut src = PipedSource::open(&config(backend, stand_in(dir.path(), program, 5, FRAME, 30), 1)).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            let frame = src.next_frame().unwrap();
            assert_eq!(frame.image.dimensions(), (64, 48));
            // Frame 4: Y = 176 → (176 − 16) · 1.164 = 186.2, within a level (fixed-point).
            let px = frame.image.get_pixel(10, 10).0;
            assert!(grey_within_a_level(px, 186), "{program}: the last frame written: {px:?}");
            assert!(src.describe().contains("0 restarts"), "{}", src.describe());
            assert!(src.frames.dropped() >= 1, "{program}: frames 2 and 3 were never taken: {}", src.describe());
        }
    }

    #[test]
    fn a_helper_that_dies_is_started_again_and_frames_resume() {
        for (backend, program) in BACKENDS {
            let dir = tempfile::tempdir().unwrap();
            let program = stand_in(dir.path(), program, 2, FRAME, 0);
            let mut src = PipedSource::open(&config(backend, program.clone(), 0)).unwrap();
            let mut served = 0;
            while served < 4 {
                // A frame, or the wait that spans a restart.
                match src.next_frame() {
                    Ok(_) => served += 1,
                    Err(e) => assert!(e.to_string().contains("camera gone"), "{e}"),
                }
            }
            assert!(starts(&program) >= 2, "four frames from a helper that writes two need a restart");
            assert!(!src.describe().contains(" 0 restarts"), "{}", src.describe());
            drop(src);
            let after_drop = starts(&program);
            std::thread::sleep(RESTART_DELAY * 2);
            assert_eq!(starts(&program), after_drop, "{program}: no start after the source is dropped");
        }
    }

    #[test]
    fn frames_of_the_wrong_size_are_a_clear_error() {
        for (backend, program) in BACKENDS {
            let dir = tempfile::tempdir().unwrap();
            let err = PipedSource::open(&config(backend, stand_in(dir.path(), program, 1, FRAME / 2, 0), 0)).err().unwrap().to_string();
            assert!(err.contains(&format!("2304 bytes into a 64×48 I420 frame of {FRAME} bytes")) && err.contains("not camera.width × camera.height"), "{err}");
            assert!(err.contains("exit status: 3") && err.contains("camera gone"), "{program}: the exit and the helper's last message: {err}");
        }
    }

    #[test]
    fn a_gstreamer_camera_without_a_pipeline_is_refused_with_the_configs_reason() {
        let mut cfg = config(CameraBackend::Gstreamer, "gst-launch-1.0".into(), 0);
        cfg.pipeline = None;
        let err = PipedSource::open(&cfg).err().unwrap().to_string();
        assert!(err.contains("needs camera.pipeline"), "{err}");
    }

    #[test]
    fn a_missing_helper_is_named_with_what_to_install() {
        for (backend, program) in BACKENDS {
            let err = PipedSource::open(&config(backend, format!("/nonexistent/{program}"), 0)).err().unwrap().to_string();
            assert!(err.contains(&format!("/nonexistent/{program}")) && err.contains("expected") && err.contains(program), "{err}");
        }
    }

    /// A grey (equal channels) within one level of `level`: the fixed-point conversion's
    /// rounding, which differs between its code paths (Cortex-A76 and x86 disagree on 128.04).
    fn grey_within_a_level(px: [u8; 3], level: u8) -> bool {
        px.iter().all(|c| c.abs_diff(level) <= 1) && px[0] == px[1] && px[1] == px[2]
    }

    #[test]
    fn black_and_mid_grey_convert_as_bt601() {
        let mut img = RgbImage::new(2, 2);
        i420_to_rgb(&[16, 126, 16, 126, 128, 128], &mut img).unwrap();
        assert_eq!(img.get_pixel(0, 1).0, [0, 0, 0]);
        // (126 − 16) · 1.164 = 128.04: a grey, within a level (the fixed-point paths differ by core).
        let px = img.get_pixel(1, 1).0;
        assert!(grey_within_a_level(px, 128), "{px:?}");
    }
}
