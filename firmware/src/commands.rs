//! The CLI's commands over [`faceunlock::app::Unlocker`].

use anyhow::{Context, Result, bail};
use faceunlock::app::{Unlocker, Verdict};
use faceunlock::bench::{summarize, table};
use faceunlock::config::{Config, RelayBackend};
use faceunlock::frame::{FrameSource, ImageFiles};
use faceunlock::pipeline::{FaceOutcome, StageCosts};
use faceunlock::relay::{DryRunPin, Relay};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

pub fn open_camera(cfg: &Config) -> Result<Box<dyn FrameSource>> {
    use faceunlock::config::CameraBackend;
    match cfg.camera.backend {
        CameraBackend::Directory => Ok(Box::new(ImageFiles::open_dir(Path::new(&cfg.camera.device), true)?)),
        CameraBackend::Image => Ok(Box::new(faceunlock::frame::StillImage::open(Path::new(&cfg.camera.device))?)),
        #[cfg(feature = "v4l")]
        CameraBackend::V4l2 => Ok(Box::new(faceunlock::camera::V4lCamera::open(&cfg.camera)?)),
        #[cfg(not(feature = "v4l"))]
        CameraBackend::V4l2 => bail!("camera.backend = \"v4l2\" but this build has no `v4l` feature"),
        CameraBackend::Rpicam | CameraBackend::Gstreamer => Ok(Box::new(faceunlock::piped::PipedSource::open(&cfg.camera)?)),
    }
}

pub fn enroll(mut u: Unlocker, name: &str, mut source: Box<dyn FrameSource>) -> Result<i32> {
    let r = u.enroll(name, source.as_mut())?;
    println!("enrolled {name}: {} template(s) from {} frames ({} without a face, {} skipped, {} near-duplicates; liveness {:?})", r.templates, r.frames, r.no_face, r.skipped, r.duplicates, r.liveness);
    Ok(0)
}

pub fn verify(mut u: Unlocker, mut source: Box<dyn FrameSource>) -> Result<i32> {
    let r = match u.verify(source.as_mut())? {
        Verdict::LockedOut { remaining_s } => {
            println!("LOCKED OUT for {remaining_s} more seconds");
            return Ok(4);
        }
        Verdict::Attempted(r) => r,
    };
    match &r.accepted {
        Some(name) => println!("UNLOCKED: {name} (best score {:.3}, threshold {:.3}, {} frames)", r.best_score, u.threshold, r.frames),
        None if r.attack_suspected => println!("REJECTED: presentation attack suspected, the face moved but stayed flat ({} frames, liveness {:?})", r.frames, r.liveness),
        None => println!("REJECTED (best score {:.3}, threshold {:.3}, {} frames, {} faces, {} skipped{})", r.best_score, u.threshold, r.frames, r.faces, r.skipped, if r.turn_requested { ", no head turn seen" } else { "" }),
    }
    Ok(if r.accepted.is_some() { 0 } else { 3 })
}

fn build_relay(cfg: &Config) -> Result<Relay<AnyPin>> {
    let pulse = Duration::from_millis(cfg.relay.pulse_ms);
    let pin = match cfg.relay.backend {
        RelayBackend::DryRun => AnyPin::DryRun(DryRunPin::default()),
        #[cfg(feature = "cdev")]
        RelayBackend::Cdev => AnyPin::Cdev(cdev::open(&cfg.relay)?),
        #[cfg(not(feature = "cdev"))]
        RelayBackend::Cdev => bail!("relay.backend = \"cdev\" but this build has no `cdev` feature"),
    };
    Ok(Relay::new(pin, cfg.relay.active_low, pulse)?)
}

/// Drive the relay to locked and exit (the service unit's `ExecStopPost`, whatever stopped it).
pub fn lock(cfg: &Config) -> Result<i32> {
    build_relay(cfg).context("driving the relay to locked")?;
    println!("relay locked ({:?})", cfg.relay.backend);
    Ok(0)
}

/// The service until SIGINT/SIGTERM; the relay locks on every exit.
pub fn run_service(mut u: Unlocker, mut source: Box<dyn FrameSource>) -> Result<i32> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handlers")?;
    }
    let mut relay = build_relay(&u.config)?;
    u.serve(source.as_mut(), &mut relay, &stop)?;
    Ok(0)
}

pub fn list(u: &Unlocker) -> Result<i32> {
    for p in u.store.people() {
        println!("{}\t{} templates\tenrolled {}", p.name, p.templates.len(), p.enrolled_at);
    }
    Ok(0)
}

pub fn embed(mut u: Unlocker, images: &[std::path::PathBuf]) -> Result<i32> {
    let mut failures = 0;
    let mut costs = StageCosts::default();
    for path in images {
        let line = match image::open(path) {
            Err(e) => serde_json::json!({"image": path, "error": format!("not a decodable image: {e}")}),
            Ok(img) => match u.pipeline.process(&img.to_rgb8(), &mut costs) {
                Ok(FaceOutcome::Embedded { embedding, face, .. }) => serde_json::json!({"image": path, "score": face.score, "embedding": embedding}),
                Ok(FaceOutcome::NoFace) => serde_json::json!({"image": path, "error": "no face found"}),
                Ok(FaceOutcome::Skipped(why, _)) => serde_json::json!({"image": path, "error": format!("face skipped: {why:?}")}),
                Err(e) => serde_json::json!({"image": path, "error": e.to_string()}),
            },
        };
        failures += line.get("error").is_some() as usize;
        println!("{line}");
    }
    Ok(if failures > 0 { 2 } else { 0 })
}

/// Frames of one attempt in the bench's liveness timing.
const ATTEMPT_FRAMES: usize = faceunlock_data::synth::attack::ATTEMPT_FRAMES;

pub fn bench(mut u: Unlocker, cfg: &Config, frames: usize, source: Option<&Path>, json: Option<&Path>) -> Result<i32> {
    if frames < 2 {
        bail!("--frames must be at least 2 (one cold, the rest warm)");
    }
    let work = tempfile_dir()?;
    let mut src: Box<dyn FrameSource> = match source {
        Some(p) => crate::open_source(cfg, Some(p))?,
        None => {
            let g = faceunlock_data::synth::Generator::new(11);
            let views: Vec<_> = [-20.0, -10.0, 0.0, 10.0, 20.0].iter().map(|y| faceunlock_data::synth::View::posed(*y, 0.0, 0.0)).collect();
            Box::new(ImageFiles::from_list(faceunlock::demo::render_views(&g, 0, &views, &work)?, true))
        }
    };
    let people = u.store.people().to_vec();
    let mut environment = faceunlock::environment::Environment::start(cfg);
    let mut recorded = Vec::with_capacity(frames);
    let mut track = faceunlock::liveness::Track::default();
    for i in 0..frames {
        let frame = src.next_frame()?;
        let mut costs = StageCosts { capture: frame.capture, decode: frame.decode, ..Default::default() };
        // As in an attempt of ATTEMPT_FRAMES frames: the first face starts the track, each later
        // one is tracked against it.
        if i % ATTEMPT_FRAMES == 0 {
            track.clear();
        }
        faceunlock::bench::measure_frame(&mut u.pipeline, &people, &mut track, frame.image, &mut costs)?;
        recorded.push(costs);
    }
    environment.finish(cfg);
    let stats = summarize(&recorded);
    print!("{}", table(&stats));
    let per_frame = stats.last().map_or(0.0, |total| total.allocations);
    println!("heap allocations per warm frame: {per_frame:.1}");
    let report = serde_json::json!({
        "frames": frames,
        "source": src.describe(),
        "environment": environment,
        "allocations_per_warm_frame": per_frame,
        "stages": stats,
    });
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{report}");
    let _ = std::fs::remove_dir_all(&work);
    Ok(0)
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("faceunlock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Check what can be checked and print one verdict line; exit status 0 only when all pass.
pub fn doctor(cfg: &Config, detector: Option<&Path>) -> i32 {
    let mut failed = 0;
    let mut check = |what: &str, r: Result<String>| match r {
        Ok(detail) => println!("ok    {what}: {detail}"),
        Err(e) => {
            failed += 1;
            println!("FAIL  {what}: {e:#}");
        }
    };
    check("config", if cfg.problems().is_empty() { Ok("valid".into()) } else { Err(anyhow::anyhow!(cfg.problems().join("; "))) });
    check("models", Unlocker::open(cfg.clone(), detector).map(|u| format!("embedder {}…, threshold {:.3}, {} people enrolled", &u.model_sha256[..12.min(u.model_sha256.len())], u.threshold, u.store.people().len())));
    check("camera", open_camera(cfg).map(|s| s.describe()));
    check("relay", build_relay(cfg).map(|_| format!("{:?}, driven to locked", cfg.relay.backend)));
    check("store key", store_key(cfg));
    let state = &cfg.storage.state_dir;
    check("state dir", std::fs::create_dir_all(state).map(|_| state.display().to_string()).with_context(|| format!("creating {}", state.display())));
    println!("{}", if failed == 0 { "verdict: READY".to_string() } else { format!("verdict: NOT READY ({failed} check(s) failed)") });
    if failed == 0 { 0 } else { 1 }
}

/// Where the store key comes from, refusing a key file that others can read or its group write
/// (0440 with the service's group is the fallback where systemd cannot pass credentials).
fn store_key(cfg: &Config) -> Result<String> {
    use faceunlock::state::key::{KEY_FILE_MODE, StoreKey};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if let Some(credential) = StoreKey::credential() {
        let key = StoreKey::read(&credential)?;
        return Ok(format!("systemd credential {} (key {})", credential.display(), key.fingerprint()));
    }
    let path = &cfg.storage.key_file;
    let key = StoreKey::read(path).context("create it with `faceunlock keygen` (the package's postinst does)")?;
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o037 != 0 {
        bail!("{}: mode {mode:04o}, expected {KEY_FILE_MODE:04o} (readable by root only): `chmod 0400 {}`", path.display(), path.display());
    }
    Ok(format!("{} (mode {mode:04o}, owner uid {}, key {})", path.display(), meta.uid(), key.fingerprint()))
}

pub fn keygen(path: &Path) -> Result<i32> {
    let key = faceunlock::state::key::StoreKey::create(path)?;
    println!("created the store key {} (mode 0400, key {})", path.display(), key.fingerprint());
    Ok(0)
}

/// An unlocker whose state (templates, lockout) lives in a scratch directory, never the device's:
/// for the demo and the evaluations. The caller removes the directory when done.
fn scratch_unlocker(mut cfg: Config, detector: Option<&Path>) -> Result<(Unlocker, std::path::PathBuf)> {
    let work = tempfile_dir()?;
    cfg.storage.state_dir = work.join("state");
    cfg.storage.key_file = work.join("store.key");
    Ok((Unlocker::open(cfg, detector)?, work))
}

pub fn demo(cfg: Config, detector: Option<&Path>, seed: u64, manifest_threshold: bool) -> Result<i32> {
    let configured = cfg.decision.threshold.is_some();
    let (mut u, work) = scratch_unlocker(cfg, detector)?;
    if manifest_threshold || configured {
        let from = if configured { "set in the configuration" } else { "the manifest's, calibrated on LFW photos" };
        println!("threshold {:.4} (cosine similarity; {from})", u.threshold);
    } else {
        let listed = u.threshold;
        let c = faceunlock::demo::use_calibrated_threshold(&mut u, seed)?;
        println!(
            "threshold {:.4} (cosine similarity), calibrated at FAR {:.0e} on {} other generated people: {} impostor pairs from {} of {} frames; {:.1} % of their genuine pairs reach it",
            c.threshold,
            c.far,
            faceunlock::demo::CALIBRATION_PEOPLE.len(),
            c.impostor_pairs,
            c.faces,
            c.frames,
            100.0 * c.genuine_accepted
        );
        println!("(the manifest's threshold at the same FAR, calibrated on LFW photos for real faces, is {listed:.4}: --manifest-threshold uses it)");
    }
    let r = faceunlock::demo::run(&mut u, &work, seed)?;
    let genuine_ok = r.genuine.iter().filter(|g| g.2.as_deref() == Some(g.0.as_str())).count();
    let impostor_ok = r.impostor.iter().filter(|i| i.1.is_none()).count();
    println!("\nenrolled people unlocked at other poses: {genuine_ok}/{}; strangers rejected: {impostor_ok}/{}", r.genuine.len(), r.impostor.len());
    println!("\nper-stage latency over {} frames:\n{}", r.frames.len(), table(&summarize(&r.frames)));
    let _ = std::fs::remove_dir_all(&work);
    Ok(0)
}

pub fn liveness_eval(cfg: Config, detector: Option<&Path>, people: u32, seed: u64, sweep: bool, out: Option<&Path>) -> Result<i32> {
    use faceunlock::attack_eval;
    let (mut u, work) = scratch_unlocker(cfg.clone(), detector)?;
    let started = Instant::now();
    let g = faceunlock_data::synth::Generator::new(seed);
    let scored = attack_eval::score_people(&mut u.pipeline, &g, 0..people, |p| {
        if (p + 1) % 50 == 0 {
            log::info!("{} of {people} people ({:.0} s)", p + 1, started.elapsed().as_secs_f64());
        }
    })?;
    let _ = std::fs::remove_dir_all(&work);
    if let Some(path) = out {
        let lines: Vec<String> = scored.iter().map(serde_json::to_string).collect::<Result<_, _>>()?;
        std::fs::write(path, lines.join("\n") + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    let l = &cfg.liveness;
    println!("generator seed {seed}, {people} people; min_parallax {}, min_motion {}", l.min_parallax, l.min_motion);
    print!("{}", attack_eval::table(&scored, l));
    if sweep {
        let thresholds: Vec<f32> = (1..=24).map(|k| k as f32 * 0.0025).collect();
        print!("\n{}", attack_eval::sweep(&scored, l, &thresholds));
    }
    Ok(0)
}

/// Pin errors of every backend, reduced to text, so one relay type serves all backends.
#[derive(Debug)]
pub struct PinError(#[allow(dead_code, reason = "shown through Debug in RelayError")] String);

impl embedded_hal::digital::Error for PinError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

/// The relay pin of whichever backend the config names.
pub enum AnyPin {
    DryRun(DryRunPin),
    #[cfg(feature = "cdev")]
    Cdev(linux_embedded_hal::CdevPin),
}

impl embedded_hal::digital::ErrorType for AnyPin {
    type Error = PinError;
}

fn pin_err(e: impl std::fmt::Debug) -> PinError {
    PinError(format!("{e:?}"))
}

impl embedded_hal::digital::OutputPin for AnyPin {
    fn set_low(&mut self) -> Result<(), PinError> {
        match self {
            AnyPin::DryRun(p) => embedded_hal::digital::OutputPin::set_low(p).map_err(pin_err),
            #[cfg(feature = "cdev")]
            AnyPin::Cdev(p) => embedded_hal::digital::OutputPin::set_low(p).map_err(pin_err),
        }
    }
    fn set_high(&mut self) -> Result<(), PinError> {
        match self {
            AnyPin::DryRun(p) => embedded_hal::digital::OutputPin::set_high(p).map_err(pin_err),
            #[cfg(feature = "cdev")]
            AnyPin::Cdev(p) => embedded_hal::digital::OutputPin::set_high(p).map_err(pin_err),
        }
    }
}

#[cfg(feature = "cdev")]
mod cdev {
    use anyhow::{Context, Result, bail};
    use faceunlock::config::RelayConfig;
    use linux_embedded_hal::CdevPin;
    use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags, chips};

    /// The relay line: chip found by label, line by name, else by offset; requested as an
    /// output at the *locked* level.
    pub fn open(cfg: &RelayConfig) -> Result<CdevPin> {
        let mut chip = find_chip(&cfg.chip_label)?;
        let offset = match &cfg.line_name {
            Some(name) => (0..chip.num_lines()).find(|o| chip.get_line(*o).and_then(|l| l.info()).is_ok_and(|i| i.name() == Some(name.as_str()))).or(cfg.line_offset),
            None => cfg.line_offset,
        };
        let Some(offset) = offset else { bail!("gpiochip `{}` has no line named {:?} and no line_offset is set", cfg.chip_label, cfg.line_name) };
        let line = chip.get_line(offset).with_context(|| format!("gpiochip `{}` line {offset}", cfg.chip_label))?;
        let locked_level = u8::from(cfg.active_low);
        let handle = line.request(LineRequestFlags::OUTPUT, locked_level, "faceunlock").with_context(|| format!("requesting gpiochip `{}` line {offset} (in use? permissions?)", cfg.chip_label))?;
        CdevPin::new(handle).context("wrapping the GPIO line")
    }

    fn find_chip(label: &str) -> Result<Chip> {
        for chip in chips().context("listing /dev/gpiochip*")? {
            let chip = chip?;
            if chip.label() == label {
                return Ok(chip);
            }
        }
        bail!("no gpiochip labelled `{label}` (see `gpiodetect`)")
    }
}
