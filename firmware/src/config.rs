//! The firmware configuration, one TOML file per board (`boards/*.toml`, installed to
//! `/usr/share/faceunlock/boards`; `/etc/faceunlock/board.toml` overrides, see `board`).
//! Every section rejects unknown keys so a typo is an error, not a silent
//! default. This file depends on serde alone: the workspace's `build.rs` includes it to
//! validate every board file at build time.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub board: BoardInfo,
    #[serde(default)]
    pub models: ModelsConfig,
    #[serde(default)]
    pub camera: CameraConfig,
    #[serde(default)]
    pub detector: DetectorConfig,
    #[serde(default)]
    pub decision: DecisionConfig,
    #[serde(default)]
    pub lockout: LockoutConfig,
    #[serde(default)]
    pub relay: RelayConfig,
    #[serde(default)]
    pub liveness: LivenessConfig,
    #[serde(default)]
    pub compute: ComputeConfig,
    #[serde(default)]
    pub storage: StorageConfig,
}

/// What the board is: used to pick the board file and to record bench environments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    pub id: String,
    /// Rust target triple the board's build uses.
    pub target: String,
    /// Substrings of `/proc/device-tree/model` that identify this board.
    pub model_match: Vec<String>,
    /// Files to read the SoC temperature (millidegrees) and throttle flags from.
    pub thermal_path: Option<PathBuf>,
    pub throttle_path: Option<PathBuf>,
    /// The package variant this board installs (`jetson`: `cargo deb --variant jetson`, named
    /// `faceunlock-jetson`); none: the plain `faceunlock` package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deb_variant: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    pub manifest: PathBuf,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self { manifest: PathBuf::from("models/manifest.toml") }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CameraBackend {
    /// A V4L2 device (USB webcams; Pi CSI cameras only through `rpicam`).
    V4l2,
    /// `rpicam-vid --codec yuv420 -o -`: Pi CSI cameras, whose raw V4L2 node gives Bayer.
    Rpicam,
    /// `gst-launch-1.0 -q PIPELINE ! video/x-raw,format=I420,… ! fdsink fd=1`: Jetson CSI
    /// cameras, read through NVIDIA's Argus stack (`nvarguscamerasrc`).
    Gstreamer,
    /// A directory of images, replayed in name order.
    Directory,
    /// One still image, repeated.
    Image,
}

impl std::fmt::Display for CameraBackend {
    /// The name a board file uses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V4l2 => "v4l2",
            Self::Rpicam => "rpicam",
            Self::Gstreamer => "gstreamer",
            Self::Directory => "directory",
            Self::Image => "image",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub backend: CameraBackend,
    /// Device glob for V4L2 (`/dev/v4l/by-id/*-video-index0`), the helper program for
    /// `rpicam` (`rpicam-vid`) and `gstreamer` (`gst-launch-1.0`), or the directory / image path.
    pub device: String,
    /// Preferred pixel formats in order (fourcc: `MJPG`, `YUYV`).
    pub formats: Vec<String>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Frames discarded after opening (and after a helper restart) while exposure settles.
    pub warmup_frames: u32,
    /// Backend `gstreamer`: the source elements up to a converter, as typed after
    /// `gst-launch-1.0` without shell quoting (elements and `!` separated by spaces). The
    /// firmware appends `! video/x-raw,format=I420,width=W,height=H ! fdsink fd=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
}

impl CameraConfig {
    /// The width multiple for which the backend's helper writes unpadded I420 planes (with an
    /// even height): 64 for `rpicam-vid`, 8 for GStreamer (4-byte aligned chroma rows); `None`
    /// for backends that do not read I420 from a helper.
    pub fn i420_width_multiple(&self) -> Option<u32> {
        match self.backend {
            CameraBackend::Rpicam => Some(64),
            CameraBackend::Gstreamer => Some(8),
            CameraBackend::V4l2 | CameraBackend::Directory | CameraBackend::Image => None,
        }
    }

    /// What is wrong with the camera section, one message per problem.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let (w, h) = (self.width, self.height);
        if let Some(multiple) = self.i420_width_multiple()
            && (w == 0 || h == 0 || !w.is_multiple_of(multiple) || !h.is_multiple_of(2))
        {
            p.push(format!("camera: {w}×{h} for {}: expected a width that is a multiple of {multiple} and an even height (unpadded I420)", self.backend));
        }
        match (self.backend, self.pipeline.as_deref().map(str::trim)) {
            (CameraBackend::Gstreamer, None | Some("")) => p.push("camera: backend \"gstreamer\" needs camera.pipeline (e.g. \"nvarguscamerasrc ! nvvidconv\")".into()),
            (CameraBackend::Gstreamer, Some(pipeline)) if pipeline.contains("fdsink") || pipeline.ends_with('!') => {
                p.push(format!("camera.pipeline = \"{pipeline}\": expected the source elements only, not ending in `!`; the firmware appends the I420 caps and `fdsink`"))
            }
            (CameraBackend::Gstreamer, Some(_)) | (_, None) => {}
            (backend, Some(_)) => p.push(format!("camera.pipeline is read by backend \"gstreamer\" only, not \"{backend}\"")),
        }
        for f in &self.formats {
            if f.len() != 4 {
                p.push(format!("camera.formats: `{f}` is not a fourcc (expected 4 characters, e.g. MJPG)"));
            }
        }
        p
    }
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            backend: CameraBackend::V4l2,
            device: "/dev/v4l/by-id/*-video-index0".into(),
            formats: vec!["MJPG".into(), "YUYV".into()],
            width: 640,
            height: 480,
            fps: 15,
            warmup_frames: 5,
            pipeline: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// Network input `[width, height]`, multiples of 32.
    pub input_size: [u32; 2],
    pub score_threshold: f32,
    /// Faces whose box is narrower than this (frame pixels) are ignored.
    pub min_face_px: f32,
    /// Look again at a frame without a face, or with a face wider than 0.4 of its shorter side,
    /// padded by a quarter of its size on each side ([`crate::pad_retry`]): finds faces that
    /// fill the frame; costs a second detection on such frames.
    #[serde(default = "retry_padded")]
    pub pad_retry: bool,
}

fn retry_padded() -> bool {
    true
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self { input_size: [320, 256], score_threshold: 0.6, min_face_px: 48.0, pad_retry: retry_padded() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetFar {
    #[serde(rename = "1e-3")]
    OneInAThousand,
    #[serde(rename = "1e-4")]
    OneInTenThousand,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionConfig {
    /// Which calibrated threshold of the manifest to use.
    pub target_far: TargetFar,
    /// Overrides the manifest's threshold (cosine similarity).
    pub threshold: Option<f32>,
    /// Accept when `votes` of the last `window` frames match the same person.
    pub votes: usize,
    pub window: usize,
    pub attempt_timeout_ms: u64,
    /// Mean luma bounds of the face; frames outside are skipped as too dark / too bright.
    pub min_brightness: f32,
    pub max_brightness: f32,
    /// Minimum variance of the Laplacian of the aligned crop; blurrier frames are skipped.
    pub min_sharpness: f32,
    /// Frames an enrolment collects.
    pub enroll_frames: usize,
    /// An enrolment frame whose cosine similarity to a template already taken reaches this adds
    /// nothing and is not kept (the person is asked for another pose).
    pub enroll_duplicate_similarity: f32,
}

impl Default for DecisionConfig {
    fn default() -> Self {
        Self {
            target_far: TargetFar::OneInAThousand,
            threshold: None,
            votes: 2,
            window: 3,
            attempt_timeout_ms: 4000,
            min_brightness: 35.0,
            max_brightness: 225.0,
            min_sharpness: 15.0,
            enroll_frames: 5,
            enroll_duplicate_similarity: 0.995,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutConfig {
    /// Consecutive failed attempts before a lockout.
    pub max_failures: u32,
    pub base_seconds: u64,
    /// Each further lockout doubles, up to this.
    pub max_seconds: u64,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self { max_failures: 5, base_seconds: 30, max_seconds: 3600 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelayBackend {
    /// Log the relay's state instead of driving a pin (dev box).
    DryRun,
    /// A GPIO line through the Linux character device.
    Cdev,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    pub backend: RelayBackend,
    /// gpiochip label (e.g. `pinctrl-bcm2711`), stable across kernels unlike chip numbers.
    pub chip_label: String,
    pub line_name: Option<String>,
    /// Used when no line carries `line_name`.
    pub line_offset: Option<u32>,
    pub active_low: bool,
    pub pulse_ms: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self { backend: RelayBackend::DryRun, chip_label: String::new(), line_name: None, line_offset: None, active_low: false, pulse_ms: 1500 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessConfig {
    /// Check attempts for presentation attacks (`run`, `verify`) and enrolments.
    pub enabled: bool,
    /// Parallax (inter-ocular distances) at or above which the face is a head, not a picture.
    pub min_parallax: f32,
    /// Deformation beyond a similarity (inter-ocular distances) from which a track without
    /// parallax is judged flat; below it the face has not moved enough to tell.
    pub min_motion: f32,
    /// How long the attempt is extended after asking for a head turn.
    pub turn_timeout_ms: u64,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self { enabled: true, min_parallax: 0.004, min_motion: 0.05, turn_timeout_ms: 3000 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeConfig {
    /// Inference threads (tract); 1 keeps a core free for capture.
    pub threads: usize,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        Self { threads: 1 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub state_dir: PathBuf,
    /// Keep the aligned crops of enrolment frames (off: only embeddings are stored).
    pub keep_images: bool,
    /// The key that seals the state files (32 bytes, root-only; `faceunlock keygen`). The
    /// systemd credential `store.key` takes its place where the service is given one.
    #[serde(default = "StorageConfig::default_key_file")]
    pub key_file: PathBuf,
}

impl StorageConfig {
    pub const DEFAULT_KEY_FILE: &str = "/etc/faceunlock/store.key";

    fn default_key_file() -> PathBuf {
        PathBuf::from(Self::DEFAULT_KEY_FILE)
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { state_dir: PathBuf::from("/var/lib/faceunlock"), keep_images: false, key_file: Self::default_key_file() }
    }
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        let problems = cfg.problems();
        if problems.is_empty() { Ok(cfg) } else { Err(problems.join("; ")) }
    }

    /// Values that parse but cannot work, each as a sentence naming the key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let [w, h] = self.detector.input_size;
        if w == 0 || h == 0 || w % 32 != 0 || h % 32 != 0 {
            p.push(format!("detector.input_size = [{w}, {h}]: expected positive multiples of 32"));
        }
        let d = &self.decision;
        if d.votes == 0 || d.votes > d.window {
            p.push(format!("decision.votes = {}: expected 1..=decision.window ({})", d.votes, d.window));
        }
        if d.window > 16 {
            p.push(format!("decision.window = {}: expected at most 16 frames", d.window));
        }
        if let Some(t) = d.threshold
            && !(-1.0..=1.0).contains(&t)
        {
            p.push(format!("decision.threshold = {t}: expected a cosine similarity in [-1, 1]"));
        }
        if d.enroll_frames == 0 {
            p.push("decision.enroll_frames = 0: expected at least 1".into());
        }
        if !(d.enroll_duplicate_similarity > -1.0 && d.enroll_duplicate_similarity <= 1.0) {
            p.push(format!("decision.enroll_duplicate_similarity = {}: expected a cosine similarity in (-1, 1]", d.enroll_duplicate_similarity));
        }
        if self.lockout.max_failures == 0 {
            p.push("lockout.max_failures = 0: expected at least 1".into());
        }
        if self.relay.backend == RelayBackend::Cdev && self.relay.line_name.is_none() && self.relay.line_offset.is_none() {
            p.push("relay: backend \"cdev\" needs line_name or line_offset".into());
        }
        if self.relay.pulse_ms == 0 || self.relay.pulse_ms > 30_000 {
            p.push(format!("relay.pulse_ms = {}: expected 1..=30000", self.relay.pulse_ms));
        }
        let l = &self.liveness;
        if !(l.min_parallax > 0.0 && l.min_parallax < 1.0) {
            p.push(format!("liveness.min_parallax = {}: expected inter-ocular distances in (0, 1)", l.min_parallax));
        }
        if !(l.min_motion > l.min_parallax && l.min_motion < 2.0) {
            p.push(format!("liveness.min_motion = {}: expected more than min_parallax ({}) and less than 2", l.min_motion, l.min_parallax));
        }
        if self.compute.threads == 0 {
            p.push("compute.threads = 0: expected at least 1".into());
        }
        p.extend(self.camera.problems());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_an_enrolment_similarity_outside_the_cosine_range_is_named() {
        assert_eq!(Config::default().problems(), Vec::<String>::new());
        let mut cfg = Config::default();
        cfg.decision.enroll_duplicate_similarity = 1.5;
        assert_eq!(cfg.problems(), vec!["decision.enroll_duplicate_similarity = 1.5: expected a cosine similarity in (-1, 1]".to_string()]);
    }

    #[test]
    fn a_gstreamer_camera_needs_a_pipeline_of_source_elements_and_no_other_backend_takes_one() {
        let mut cfg = Config::default();
        cfg.camera.backend = CameraBackend::Gstreamer;
        assert_eq!(cfg.problems(), ["camera: backend \"gstreamer\" needs camera.pipeline (e.g. \"nvarguscamerasrc ! nvvidconv\")"]);
        cfg.camera.pipeline = Some("nvarguscamerasrc ! nvvidconv ! fdsink".into());
        assert!(cfg.problems()[0].contains("the firmware appends the I420 caps and `fdsink`"), "{:?}", cfg.problems());
        cfg.camera.pipeline = Some("nvarguscamerasrc ! nvvidconv".into());
        cfg.camera.width = 636;
        assert_eq!(cfg.problems(), ["camera: 636×480 for gstreamer: expected a width that is a multiple of 8 and an even height (unpadded I420)"]);
        cfg.camera.backend = CameraBackend::V4l2;
        assert_eq!(cfg.problems(), ["camera.pipeline is read by backend \"gstreamer\" only, not \"v4l2\""]);
    }
}
