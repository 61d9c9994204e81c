//! The liveness check in a verification: with matching forced to accept everyone, what decides
//! is whether the face turning in front of the camera is a head or a picture. With the shipped
//! detector (`models/`).

use faceunlock::app::{AttemptReport, Unlocker};
use faceunlock::frame::ImageFiles;
use faceunlock_data::synth::Generator;
use faceunlock_data::synth::attack::{Attempt, Presentation};
use std::path::Path;

/// An unlocker with alice enrolled and a threshold every face passes.
fn unlocker(dir: &Path, liveness: bool) -> Unlocker {
    let mut cfg = faceunlock_e2e::config(&dir.join("state"));
    cfg.decision.threshold = Some(-1.0);
    cfg.liveness.enabled = liveness;
    let mut u = Unlocker::open(cfg, None).unwrap();
    let g = Generator::new(7);
    let enrol = faceunlock::demo::render_views(&g, 0, &faceunlock::demo::enrol_views(), &dir.join("enrol")).unwrap();
    u.enroll("alice", &mut ImageFiles::from_list(enrol, false)).unwrap();
    u
}

fn verify(u: &mut Unlocker, attempt: &Attempt, dir: &Path) -> AttemptReport {
    std::fs::create_dir_all(dir).unwrap();
    let files = attempt
        .frames
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let path = dir.join(format!("{k:02}.png"));
            f.image.save(&path).unwrap();
            path
        })
        .collect();
    u.attempt(&mut ImageFiles::from_list(files, false), |_| {}).unwrap()
}

#[test]
fn a_turning_head_unlocks_and_a_picture_of_it_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut u = unlocker(dir.path(), true);
    let g = Generator::new(2);
    for person in 0..3 {
        let live = verify(&mut u, &g.live_attempt(person), &dir.path().join(format!("live{person}")));
        assert_eq!(live.accepted.as_deref(), Some("alice"), "live attempt {person}: {live:?}");
    }
    let (mut moving, mut still) = (0, 0);
    for person in 0..40 {
        let attack = g.attack_attempt(person);
        if (attack.still && still >= 2) || (!attack.still && moving >= 3) {
            continue;
        }
        let r = verify(&mut u, &attack, &dir.path().join(format!("attack{person}")));
        assert_eq!(r.accepted, None, "attack {person} ({:?}, still {}) unlocked: {r:?}", attack.presentation, attack.still);
        // Only a picture the detector saw tests the check.
        if r.faces >= 2 {
            assert!(r.turn_requested || r.attack_suspected, "attack {person}: {r:?}");
            *(if attack.still { &mut still } else { &mut moving }) += 1;
        }
    }
    assert_eq!((moving, still), (3, 2), "not enough attacks of each kind among the first 40 people");
}

#[test]
fn without_the_check_the_same_picture_unlocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut u = unlocker(dir.path(), false);
    let g = Generator::new(2);
    let attack = (0..20).map(|p| g.attack_attempt(p)).find(|a| !a.still && a.presentation == Presentation::Print).unwrap();
    let r = verify(&mut u, &attack, &dir.path().join("attack"));
    assert_eq!(r.accepted.as_deref(), Some("alice"), "{r:?}");
    assert!(r.liveness.is_none() && !r.turn_requested, "{r:?}");
}
