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

/// What `faceunlock embed` does with one image file: decode, then the pipeline.
fn embed_file(u: &mut faceunlock::app::Unlocker, path: &std::path::Path) -> String {
    use faceunlock::pipeline::{FaceOutcome, StageCosts};
    let frame = image::open(path).unwrap().to_rgb8();
    match u.pipeline.process(&frame, &mut StageCosts::default()).unwrap() {
        FaceOutcome::Embedded { embedding, .. } => format!("embedded ({} values)", embedding.len()),
        other => format!("{other:?}"),
    }
}

/// A small grey photo as the classic face sets have them (92×112, the head filling it) and a
/// night-dark photo (gamma 2.5 and sensor noise, `faceunlock_data::low_light`): each yields
/// an embedding, as `faceunlock embed` gives it.
#[test]
fn a_small_grey_close_up_and_a_dark_photo_are_embedded() {
    use rand::SeedableRng;
    let dir = tempfile::tempdir().unwrap();
    let mut u = faceunlock_e2e::unlocker(&dir.path().join("state")).unwrap();
    let g = faceunlock_data::synth::Generator::new(7);
    let rendered = g.render(&g.identity(5), &faceunlock_data::synth::View::frontal());
    // The head and a little hair, at the 92:112 shape: the face box grown by a fifth.
    let [x, y, w, h] = rendered.face_box;
    let (cw, ch) = (1.2 * w.max(h * 92.0 / 112.0), 1.2 * h.max(w * 112.0 / 92.0));
    let (cx, cy) = ((x + (w - cw) / 2.0).max(0.0) as u32, (y + (h - ch) / 2.0).max(0.0) as u32);
    let head = image::imageops::crop_imm(&rendered.image, cx, cy, cw as u32, ch as u32).to_image();
    let grey = image::DynamicImage::ImageRgb8(image::imageops::resize(&head, 92, 112, image::imageops::FilterType::Triangle)).to_luma8();
    let grey_path = dir.path().join("grey-92x112.png");
    grey.save(&grey_path).unwrap();
    let mut dark = rendered.image.clone();
    faceunlock_data::low_light::Darkening::NIGHT.apply(&mut dark, &mut rand_chacha::ChaCha8Rng::seed_from_u64(5));
    let dark_path = dir.path().join("dark.png");
    dark.save(&dark_path).unwrap();
    for path in [grey_path, dark_path] {
        let outcome = embed_file(&mut u, &path);
        assert!(outcome.starts_with("embedded"), "{}: {outcome}", path.display());
    }
}
