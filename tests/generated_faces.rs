//! The whole firmware path on generated faces, with the shipped embedder: three people enrolled
//! from near-frontal views must unlock at other head poses; ten people never enrolled must not.
//! Everything comes from `models/` (our detector and embedder) and the generator; the threshold
//! is calibrated at FAR 1e-3 on 30 other generated people, as the demo does (the manifest's is
//! calibrated on LFW photos, see `faceunlock::demo`).

use faceunlock::demo::{ENROLLED, STRANGERS, run, use_calibrated_threshold};

#[test]
fn enrolled_people_unlock_at_other_poses_and_strangers_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut u = faceunlock_e2e::unlocker(&dir.path().join("state")).unwrap();
    let calibration = use_calibrated_threshold(&mut u, 7).unwrap();
    assert_eq!(calibration.faces, calibration.frames, "the detector must find every calibration face: {calibration:?}");
    let r = run(&mut u, dir.path(), 7).unwrap();
    assert_eq!(r.genuine.len(), 3 * ENROLLED as usize);
    assert_eq!(r.impostor.len(), STRANGERS as usize);
    for (who, yaw, accepted, score) in &r.genuine {
        assert_eq!(accepted.as_deref(), Some(who.as_str()), "{who} at yaw {yaw}: score {score}");
    }
    for (who, accepted, score) in &r.impostor {
        assert_eq!(accepted, &None, "{who} was let in (score {score})");
    }
}

#[test]
fn enrolment_stores_templates_and_a_stranger_is_not_taken_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut u = faceunlock_e2e::unlocker(&state).unwrap();
    let g = faceunlock_data::synth::Generator::new(7);
    let files = faceunlock::demo::render_views(&g, 0, &faceunlock::demo::enrol_views(), &dir.path().join("enrol")).unwrap();
    let report = u.enroll("alice", &mut faceunlock::frame::ImageFiles::from_list(files, false)).unwrap();
    assert!(report.templates >= 1, "{report:?}");
    // The store on disk has alice, and a fresh process would read her back.
    let again = faceunlock_e2e::unlocker(&state).unwrap();
    assert_eq!(again.store.people().len(), 1);
    assert_eq!(again.store.people()[0].templates.len(), report.templates);
}

#[test]
fn rejected_verify_attempts_lead_to_a_lockout() {
    use faceunlock::app::Verdict;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let g = faceunlock_data::synth::Generator::new(7);
    let enrol = faceunlock::demo::render_views(&g, 0, &faceunlock::demo::enrol_views(), &dir.path().join("enrol")).unwrap();
    let stranger = faceunlock::demo::render_views(&g, 40, &[faceunlock_data::synth::View::frontal()], &dir.path().join("stranger")).unwrap();
    faceunlock_e2e::unlocker(&state).unwrap().enroll("alice", &mut faceunlock::frame::ImageFiles::from_list(enrol, false)).unwrap();
    let max_failures = faceunlock::config::LockoutConfig::default().max_failures;
    for k in 0..=max_failures {
        // A new process each time, as `faceunlock verify` is: the count must persist.
        let mut u = faceunlock_e2e::unlocker(&state).unwrap();
        let verdict = u.verify(&mut faceunlock::frame::ImageFiles::from_list(stranger.clone(), false)).unwrap();
        match (k < max_failures, verdict) {
            (true, Verdict::Attempted(r)) => assert!(r.accepted.is_none() && r.faces > 0, "attempt {k}: {r:?}"),
            (false, Verdict::LockedOut { remaining_s }) => assert!(remaining_s > 0),
            (_, other) => panic!("attempt {k} of {max_failures}: {other:?}"),
        }
    }
}
