//! The device's behaviour, wired from a [`Config`]: load and check the models, enrol people,
//! run verification attempts (K-of-N votes, timeout, quality gate), keep the lockout state.

use crate::config::{Config, TargetFar};
use crate::decision::{FrameVote, Lockout, Voter, best_match};
use crate::detect::{FaceDetector, YuNet};
use crate::pad_retry::PadRetry;
use crate::refine::{LandmarkRefiner, Refined};
use crate::embed::{Embedder, cosine};
use crate::frame::{FrameError, FrameSource};
use crate::liveness::{self, Assessment, Track};
use crate::cost::Meter;
use crate::pipeline::{FaceOutcome, Pipeline, StageCosts};
use crate::relay::Relay;
use crate::state::StateDir;
use crate::templates::TemplateStore;
use embedded_hal::digital::OutputPin;
use std::sync::atomic::{AtomicBool, Ordering};
use anyhow::{Context, Result, bail};
use faceunlock_core::contract::Manifest;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Everything the firmware needs to decide: pipeline, templates, threshold.
pub struct Unlocker {
    pub config: Config,
    pub pipeline: Pipeline,
    pub store: TemplateStore,
    /// Where the templates and the lockout state are sealed.
    pub state: StateDir,
    pub threshold: f32,
    pub model_sha256: String,
    /// The liveness track, kept across attempts so its buffers are reused (cleared per attempt).
    track: Track,
}

/// Resolve the detector: an explicit path wins (its landmarks used as they are), else the
/// manifest's `[detector]`, followed by its `[refiner]` when the manifest has one.
pub fn load_detector(cfg: &Config, manifest: &Manifest, manifest_path: &Path, explicit: Option<&Path>) -> Result<Box<dyn FaceDetector + Send>> {
    let models_dir = manifest_path.parent().unwrap_or(Path::new("."));
    let mut det = match (explicit, &manifest.detector) {
        (Some(path), _) => YuNet::from_file(path, cfg.detector.input_size)?,
        (None, Some(entry)) => YuNet::from_manifest(models_dir, entry, cfg.detector.input_size)?,
        (None, None) => bail!(
            "{} has no [detector] entry and no --detector was given; for development pass --detector ../shared/models/yunet.onnx",
            manifest_path.display()
        ),
    };
    det.score_threshold = cfg.detector.score_threshold;
    let det: Box<dyn FaceDetector + Send> = match (explicit, &manifest.refiner) {
        (None, Some(entry)) => {
            let refiner = LandmarkRefiner::from_manifest(models_dir, entry).with_context(|| format!("loading the landmark refiner listed in {}", manifest_path.display()))?;
            Box::new(Refined::new(det, refiner))
        }
        _ => Box::new(det),
    };
    Ok(if cfg.detector.pad_retry { Box::new(PadRetry::new(det, cfg.detector.min_face_px)) } else { det })
}

impl Unlocker {
    pub fn open(config: Config, detector: Option<&Path>) -> Result<Self> {
        let manifest_path = config.models.manifest.clone();
        let manifest = Manifest::load(&manifest_path)?;
        let entry = manifest.embedder(&manifest_path)?.clone();
        let models_dir = manifest_path.parent().unwrap_or(Path::new(".")).to_path_buf();
        if config.compute.threads > 1 {
            use tract_linalg::multithread::{Executor, set_default_executor};
            set_default_executor(Executor::multithread(config.compute.threads));
        }
        let embedder = Embedder::from_manifest(&models_dir, &entry).with_context(|| format!("loading the embedder listed in {}", manifest_path.display()))?;
        let det = load_detector(&config, &manifest, &manifest_path, detector)?;
        let threshold = config.decision.threshold.unwrap_or(match config.decision.target_far {
            TargetFar::OneInAThousand => entry.thresholds.far_1e3,
            TargetFar::OneInTenThousand => entry.thresholds.far_1e4,
        });
        let state = StateDir::open(&config.storage)?;
        let store = TemplateStore::open(&state, &entry.sha256, embedder.dim())?;
        let pipeline = Pipeline::new(det, embedder, config.detector.min_face_px, config.decision.clone());
        Ok(Self { config, pipeline, store, state, threshold, model_sha256: entry.sha256, track: Track::default() })
    }

    /// Collect up to `enroll_frames` distinct templates of one person and store them.
    pub fn enroll(&mut self, name: &str, source: &mut dyn FrameSource) -> Result<EnrollReport> {
        let wanted = self.config.decision.enroll_frames;
        let mut templates: Vec<Vec<f32>> = Vec::new();
        let mut report = EnrollReport::default();
        let prompts = ["look at the camera", "turn your head slightly left", "turn your head slightly right", "tilt your chin up a little", "tilt your chin down a little"];
        log::info!("enrolling {name}: {}", prompts[0]);
        let mut costs = StageCosts::default();
        self.track.clear();
        while templates.len() < wanted && report.frames < wanted * 6 {
            let frame = match source.next_frame() {
                Ok(f) => f,
                Err(FrameError::Exhausted(_)) => break,
                Err(e) => return Err(e.into()),
            };
            report.frames += 1;
            match self.pipeline.process(frame.image, &mut costs)? {
                FaceOutcome::NoFace => report.no_face += 1,
                FaceOutcome::Skipped(why, _) => {
                    report.skipped += 1;
                    log::info!("frame skipped: {why:?}");
                }
                FaceOutcome::Embedded { embedding, .. } => {
                    // A near-duplicate adds nothing: ask for another pose instead.
                    if templates.iter().all(|t| cosine(t, embedding) < self.config.decision.enroll_duplicate_similarity) {
                        templates.push(embedding.to_vec());
                        if let Some(p) = prompts.get(templates.len()) {
                            log::info!("template {}/{wanted} taken; now {p}", templates.len());
                        }
                    } else {
                        report.duplicates += 1;
                    }
                    if report.liveness == liveness::Verdict::Undecided {
                        report.liveness = self.track.push(self.pipeline.last_crop()).verdict(&self.config.liveness);
                    }
                }
            }
        }
        if self.config.liveness.enabled {
            match report.liveness {
                liveness::Verdict::Flat => bail!("{}: the face turned but stayed flat, like a photo or a screen; enrol the person in front of the camera ([liveness] in the config)", source.describe()),
                liveness::Verdict::Undecided => log::warn!("enrolling {name} without a liveness judgement: no head turn was seen in {}", source.describe()),
                liveness::Verdict::Live => {}
            }
        }
        if templates.is_empty() {
            bail!("no usable face in {} frame(s) from {} ({} without a face, {} too dark/bright/blurred)", report.frames, source.describe(), report.no_face, report.skipped);
        }
        report.templates = templates.len();
        self.store.enroll(name, templates, unix_now())?;
        Ok(report)
    }

    /// One verification attempt: frames until K of the last N agree, the timeout, or the end
    /// of the source. With `[liveness]` on, an agreement unlocks only once the track of the
    /// attempt's faces has been judged a head; a track judged flat ends the attempt as a suspected
    /// presentation attack, and an undecided one asks for a head turn and extends the attempt by
    /// `turn_timeout_ms`.
    pub fn attempt(&mut self, source: &mut dyn FrameSource, mut on_frame: impl FnMut(&StageCosts)) -> Result<AttemptReport> {
        let cfg = self.config.decision.clone();
        let live_cfg = self.config.liveness.clone();
        let mut voter = Voter::new(cfg.votes, cfg.window);
        self.track.clear();
        let mut judged = liveness::Verdict::default();
        let started = Instant::now();
        let mut deadline = started + Duration::from_millis(cfg.attempt_timeout_ms);
        let mut r = AttemptReport::default();
        while Instant::now() < deadline {
            let frame = match source.next_frame() {
                Ok(f) => f,
                Err(FrameError::Exhausted(_)) => break,
                Err(e) => return Err(e.into()),
            };
            let mut costs = StageCosts { capture: frame.capture, decode: frame.decode, ..Default::default() };
            r.frames += 1;
            let outcome = self.pipeline.process(frame.image, &mut costs)?;
            let vote = match outcome {
                FaceOutcome::NoFace => {
                    r.no_face += 1;
                    None
                }
                FaceOutcome::Skipped(..) => {
                    r.skipped += 1;
                    None
                }
                FaceOutcome::Embedded { embedding, .. } => {
                    let meter = Meter::start();
                    let m = best_match(self.store.people(), embedding);
                    costs.matching = meter.stop();
                    r.faces += 1;
                    Some(match m {
                        Some(m) if m.score >= self.threshold => {
                            r.best_score = r.best_score.max(m.score);
                            FrameVote::Accept(m.person)
                        }
                        Some(m) => {
                            r.best_score = r.best_score.max(m.score);
                            FrameVote::Reject
                        }
                        None => FrameVote::Reject,
                    })
                }
            };
            if vote.is_some() && live_cfg.enabled {
                let meter = Meter::start();
                let a = self.track.push(self.pipeline.last_crop());
                costs.liveness = meter.stop();
                r.liveness = Some(a);
                judged = judged.or(a.verdict(&live_cfg));
            }
            on_frame(&costs);
            let Some(person) = vote.and_then(|v| voter.push(v)) else { continue };
            match (live_cfg.enabled, judged) {
                (false, _) | (true, liveness::Verdict::Live) => {
                    r.accepted = Some(self.store.people()[person].name.clone());
                    break;
                }
                (true, liveness::Verdict::Flat) => {
                    log::warn!("presentation attack suspected: the face moved but stayed flat ({:?})", r.liveness);
                    r.attack_suspected = true;
                    break;
                }
                (true, liveness::Verdict::Undecided) if !r.turn_requested => {
                    log::info!("matched {}; now turn your head slightly", self.store.people()[person].name);
                    r.turn_requested = true;
                    deadline = deadline.max(Instant::now() + Duration::from_millis(live_cfg.turn_timeout_ms));
                }
                (true, liveness::Verdict::Undecided) => {}
            }
        }
        r.elapsed = started.elapsed();
        Ok(r)
    }
}

impl Unlocker {
    /// The service loop: attempts back to back until `stop` is set (SIGINT/SIGTERM) or the
    /// source runs dry; a pulse on acceptance, lockout on repeated failures. The relay is
    /// driven to locked before returning, on success and on error alike (and by its `Drop`).
    pub fn serve<P: OutputPin>(&mut self, source: &mut dyn FrameSource, relay: &mut Relay<P>, stop: &AtomicBool) -> Result<()> {
        let result = self.serve_until_stopped(source, relay, stop);
        let locked = relay.lock();
        result?;
        locked?;
        log::info!("stopped; relay locked");
        Ok(())
    }

    /// One attempt under the lockout rules (`faceunlock verify`): refused while locked out; a
    /// rejected attempt that saw a face counts toward the next lockout, an accepted one clears
    /// the count. The lockout state is saved either way.
    pub fn verify(&mut self, source: &mut dyn FrameSource) -> Result<Verdict> {
        let mut lockout = self.state.load_lockout()?;
        let now = unix_now();
        if lockout.is_locked(now) {
            return Ok(Verdict::LockedOut { remaining_s: lockout.remaining(now) });
        }
        let r = self.attempt(source, |_| {})?;
        self.record(&mut lockout, &r, now)?;
        Ok(Verdict::Attempted(r))
    }

    /// Count an attempt toward (or clear) the lockout and persist it; attempts without a face
    /// count for nothing.
    fn record(&self, lockout: &mut Lockout, r: &AttemptReport, now: u64) -> Result<()> {
        if let Some(name) = &r.accepted {
            log::info!("unlock: {name} (score {:.3}, liveness {:?})", r.best_score, r.liveness);
            lockout.record_success();
        } else if r.faces > 0 {
            log::info!("attempt rejected (best score {:.3})", r.best_score);
            if let Some(secs) = lockout.record_failure(now, &self.config.lockout) {
                log::warn!("{} failed attempts: locked out for {secs} s", self.config.lockout.max_failures);
            }
        } else {
            return Ok(());
        }
        Ok(self.state.save_lockout(lockout)?)
    }

    fn serve_until_stopped<P: OutputPin>(&mut self, source: &mut dyn FrameSource, relay: &mut Relay<P>, stop: &AtomicBool) -> Result<()> {
        let mut lockout = self.state.load_lockout()?;
        log::info!("running; {} people enrolled, threshold {:.3}", self.store.people().len(), self.threshold);
        while !stop.load(Ordering::Relaxed) {
            let now = unix_now();
            if lockout.is_locked(now) {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let r = self.attempt(source, |_| {})?;
            self.record(&mut lockout, &r, now)?;
            if r.accepted.is_some() {
                relay.pulse()?;
            } else if r.frames == 0 {
                log::info!("frame source exhausted");
                break;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default)]
pub struct EnrollReport {
    /// What the liveness check made of the enrolment frames.
    pub liveness: liveness::Verdict,
    pub frames: usize,
    pub templates: usize,
    pub no_face: usize,
    pub skipped: usize,
    pub duplicates: usize,
}

/// What `verify` ended with.
#[derive(Clone, Debug)]
pub enum Verdict {
    LockedOut { remaining_s: u64 },
    Attempted(AttemptReport),
}

#[derive(Clone, Debug, Default)]
pub struct AttemptReport {
    pub accepted: Option<String>,
    /// The liveness check judged the face flat: a photo or a screen.
    pub attack_suspected: bool,
    /// A match waited for a head turn.
    pub turn_requested: bool,
    /// The last liveness assessment of the attempt.
    pub liveness: Option<Assessment>,
    pub frames: usize,
    pub faces: usize,
    pub no_face: usize,
    pub skipped: usize,
    pub best_score: f32,
    pub elapsed: Duration,
}
