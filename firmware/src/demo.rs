//! The demonstration run on generated faces: enrol three people from near-frontal views, verify
//! each at other head poses, and try ten people who were never enrolled.

use crate::app::Unlocker;
use crate::frame::ImageFiles;
use crate::pipeline::StageCosts;
use anyhow::{Context, Result};
use faceunlock_data::synth::{Generator, View};
use std::path::{Path, PathBuf};

pub const ENROLLED: u32 = 3;
pub const STRANGERS: u32 = 10;

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
        println!("enrolled person{p}: {} templates from {} frames", report.templates, report.frames);
    }
    let mut genuine = Vec::new();
    for p in 0..ENROLLED {
        for yaw in [-35.0f32, 25.0, 45.0] {
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
