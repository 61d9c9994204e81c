//! The demonstration run on generated faces: enrol three people from near-frontal views, verify
//! each at other head poses, and try ten people who were never enrolled.
//!
//! Its threshold is calibrated the way the manifest's is, at a false-accept rate of 1e-3 over
//! pairs of different people, but on generated people ([`calibrate`]): the manifest's thresholds
//! come from LFW photos, a domain whose impostor scores are the model's own and not those of
//! generated faces. A threshold set in the configuration, or `--manifest-threshold`, overrides it.

use crate::app::Unlocker;
use crate::embed::cosine;
use crate::frame::ImageFiles;
use crate::pipeline::{FaceOutcome, Pipeline, StageCosts};
use anyhow::{Context, Result};
use faceunlock_core::calibration::threshold_at_far;
use faceunlock_data::synth::{Generator, View};
use std::ops::Range;
use std::path::{Path, PathBuf};

pub const ENROLLED: u32 = 3;
pub const STRANGERS: u32 = 10;
/// Head yaws (degrees) at which each enrolled person is probed.
pub const PROBE_YAWS: [f32; 3] = [-35.0, 25.0, 45.0];
/// Generated people the threshold is calibrated on: never enrolled, never probed.
pub const CALIBRATION_PEOPLE: Range<u32> = 1000..1030;
/// The false-accept rate the demo's threshold is calibrated at (the manifest's `far_1e3`).
pub const CALIBRATION_FAR: f64 = 1e-3;

/// Near-frontal enrolment views.
pub fn enrol_views() -> Vec<View> {
    [(0.0, 0.0), (-10.0, 0.0), (10.0, 0.0), (0.0, 8.0), (0.0, -8.0)].iter().map(|(y, p)| View::posed(*y, *p, 0.0)).collect()
}

/// Probe views at other poses (three frames per attempt, slightly moving).
pub fn probe_views(yaw: f32) -> Vec<View> {
    [(yaw, 0.0), (yaw + 3.0, 4.0), (yaw - 3.0, -4.0)].iter().map(|(y, p)| View { background_seed: 42, ..View::posed(*y, *p, 2.0) }).collect()
}

/// Render `views` of `person` to PNG files in `dir`.
pub fn render_views(g: &Generator, person: u32, views: &[View], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let id = g.identity(person);
    views
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let path = dir.join(format!("p{person:03}_{i:02}.png"));
            g.render(&id, v).image.save(&path).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// A threshold calibrated on generated people.
#[derive(Clone, Debug)]
pub struct Calibration {
    pub threshold: f32,
    pub far: f64,
    /// Frames that gave an embedding, of how many rendered.
    pub faces: usize,
    pub frames: usize,
    pub impostor_pairs: usize,
    /// Pairs of the same person's frames at or above the threshold.
    pub genuine_accepted: f64,
}

/// Embed the demo's enrolment and probe views of each of `people` through `pipeline` (detect,
/// align, quality gate, embed, as a verification does) and pick the threshold at `far` over every
/// pair of frames of different people.
pub fn calibrate(pipeline: &mut Pipeline, g: &Generator, people: Range<u32>, far: f64) -> Result<Calibration> {
    let mut embedded: Vec<(u32, Vec<f32>)> = Vec::new();
    let mut frames = 0;
    for person in people {
        let id = g.identity(person);
        let yaw = PROBE_YAWS[person as usize % PROBE_YAWS.len()];
        for view in enrol_views().iter().chain(&probe_views(yaw)) {
            frames += 1;
            let image = g.render(&id, view).image;
            if let FaceOutcome::Embedded { embedding, .. } = pipeline.process(&image, &mut StageCosts::default())? {
                embedded.push((person, embedding.to_vec()));
            }
        }
    }
    let (mut impostor, mut genuine) = (Vec::new(), Vec::new());
    for (i, (a, ea)) in embedded.iter().enumerate() {
        for (b, eb) in &embedded[i + 1..] {
            if a == b { genuine.push(cosine(ea, eb)) } else { impostor.push(cosine(ea, eb)) }
        }
    }
    anyhow::ensure!(!impostor.is_empty(), "calibration: {} of {frames} generated frames gave a face; pairs of two people are needed", embedded.len());
    let threshold = threshold_at_far(&mut impostor, far);
    let genuine_accepted = genuine.iter().filter(|s| **s >= threshold).count() as f64 / genuine.len().max(1) as f64;
    Ok(Calibration { threshold, far, faces: embedded.len(), frames, impostor_pairs: impostor.len(), genuine_accepted })
}

/// Calibrate on [`CALIBRATION_PEOPLE`] of the demo's generator (`seed`) at [`CALIBRATION_FAR`]
/// and make that the unlocker's threshold.
pub fn use_calibrated_threshold(unlocker: &mut Unlocker, seed: u64) -> Result<Calibration> {
    let c = calibrate(&mut unlocker.pipeline, &Generator::new(seed), CALIBRATION_PEOPLE, CALIBRATION_FAR)?;
    unlocker.threshold = c.threshold;
    Ok(c)
}

pub struct DemoResult {
    /// (person, yaw, accepted as) for enrolled people.
    pub genuine: Vec<(String, f32, Option<String>, f32)>,
    /// (person, accepted as) for strangers.
    pub impostor: Vec<(String, Option<String>, f32)>,
    pub frames: Vec<StageCosts>,
}

pub fn run(unlocker: &mut Unlocker, work: &Path, seed: u64) -> Result<DemoResult> {
    let g = Generator::new(seed);
    let mut frames = Vec::new();
    for p in 0..ENROLLED {
        let files = render_views(&g, p, &enrol_views(), &work.join(format!("enrol/{p}")))?;
        let report = unlocker.enroll(&format!("person{p}"), &mut ImageFiles::from_list(files, false))?;
        println!("enrolled person{p}: {} template(s) from {} frames ({} too close to one already taken to add anything)", report.templates, report.frames, report.duplicates);
    }
    let mut genuine = Vec::new();
    for p in 0..ENROLLED {
        for yaw in PROBE_YAWS {
            let files = render_views(&g, p, &probe_views(yaw), &work.join(format!("probe/{p}_{yaw}")))?;
            let r = unlocker.attempt(&mut ImageFiles::from_list(files, false), |t| frames.push(*t))?;
            println!("person{p} at yaw {yaw:>4}°: {} (best score {:.3})", decision(&r.accepted), r.best_score);
            genuine.push((format!("person{p}"), yaw, r.accepted, r.best_score));
        }
    }
    let mut impostor = Vec::new();
    for p in ENROLLED..ENROLLED + STRANGERS {
        let files = render_views(&g, p, &probe_views(15.0), &work.join(format!("stranger/{p}")))?;
        let r = unlocker.attempt(&mut ImageFiles::from_list(files, false), |t| frames.push(*t))?;
        println!("stranger{p}: {} (best score {:.3})", decision(&r.accepted), r.best_score);
        impostor.push((format!("stranger{p}"), r.accepted, r.best_score));
    }
    Ok(DemoResult { genuine, impostor, frames })
}

fn decision(accepted: &Option<String>) -> String {
    accepted.as_ref().map_or_else(|| "REJECTED".to_string(), |n| format!("UNLOCKED as {n}"))
}
