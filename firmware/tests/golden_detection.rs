//! The shipped face detector (the `[detector]` of every `models/manifest*.toml`, followed by its
//! `[refiner]`, loaded as the firmware loads them: sha256 and contract checked) on a fixed
//! generated frame. It must find
//! the face the generator drew (IoU ≥ 0.5 with the ground-truth box, landmarks within 10 % of
//! the inter-ocular distance), and give the golden detection written on x86_64 on this CPU too
//! (`FACEUNLOCK_BLESS=1 cargo test -p faceunlock --test golden_detection` renders the frame and
//! writes it); `tests/aarch64_qemu.rs` runs this test under qemu as a Cortex-A53 and an A76.

mod common;

use common::{repo, shipped_manifests};
use faceunlock::app::load_detector;
use faceunlock::config::Config;
use faceunlock::detect::{Detection, iou};
use faceunlock_core::contract::Manifest;
use faceunlock_core::geometry::Landmarks5;

/// Max abs difference of box and landmark coordinates (pixels) and of the score.
const PIXEL_TOLERANCE: f32 = 1e-2;
const SCORE_TOLERANCE: f32 = 1e-4;

#[derive(serde::Serialize, serde::Deserialize)]
struct Golden {
    model_sha256: String,
    /// The landmark refiner's, when the manifest has one.
    #[serde(default)]
    refiner_sha256: Option<String>,
    written_on: String,
    /// The generator's ground truth for the frame.
    truth_box: [f32; 4],
    truth_landmarks: [[f32; 2]; 5],
    /// What the detector found there.
    face_box: [f32; 4],
    score: f32,
    landmarks: [[f32; 2]; 5],
}

fn max_diff<'a>(a: impl IntoIterator<Item = &'a f32>, b: impl IntoIterator<Item = &'a f32>) -> f32 {
    a.into_iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn the_shipped_detector_finds_the_generated_face_and_its_golden_detection_on_this_cpu() {
    let manifests: Vec<_> = shipped_manifests().into_iter().map(|p| (Manifest::load(&p).unwrap(), p)).collect();
    let default = manifests.iter().find(|(_, p)| p.ends_with("models/manifest.toml"));
    assert!(default.is_some_and(|(m, _)| m.detector.is_some()), "models/manifest.toml is missing or has no [detector]");
    // One check per pair of model files: manifests may share them.
    let shas = |m: &Manifest| (m.detector.as_ref().map(|d| d.sha256.clone()), m.refiner.as_ref().map(|r| r.sha256.clone()));
    let mut detectors: Vec<_> = manifests.into_iter().filter(|(m, _)| m.detector.is_some()).collect();
    detectors.dedup_by(|a, b| shas(&a.0) == shas(&b.0));
    let dir = repo().join("firmware/tests/golden");
    let (frame_path, golden_path) = (dir.join("frame.png"), dir.join("detection.json"));
    let blessing = std::env::var_os("FACEUNLOCK_BLESS").is_some();
    let truth = blessing.then(|| {
        use faceunlock_data::synth::{Generator, View};
        let g = Generator::new(3);
        let face = g.render(&g.identity(1), &View::posed(-18.0, 6.0, -5.0));
        face.image.save(&frame_path).unwrap();
        (face.face_box, face.landmarks)
    });
    let frame = image::open(&frame_path).unwrap().to_rgb8();
    for (contents, manifest) in detectors {
        let (model_sha256, refiner_sha256) = shas(&contents);
        let model_sha256 = model_sha256.expect("filtered on [detector]");
        let mut det = load_detector(&Config::default(), &contents, &manifest, None).unwrap();
        let found: Vec<Detection> = det.detect(&frame).unwrap().to_vec();
        assert_eq!(found.len(), 1, "{}: expected the one generated face, found {found:?}", manifest.display());
        let f = found[0];
        if let Some((truth_box, truth_marks)) = truth {
            let golden = Golden {
                model_sha256: model_sha256.clone(),
                refiner_sha256: refiner_sha256.clone(),
                written_on: std::env::consts::ARCH.into(),
                truth_box,
                truth_landmarks: truth_marks.0,
                face_box: f.face_box,
                score: f.score,
                landmarks: f.landmarks.0,
            };
            std::fs::write(&golden_path, serde_json::to_string_pretty(&golden).unwrap()).unwrap();
        }
        let text = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| panic!("{}: {e}; bless it on x86_64 (see the module docs)", golden_path.display()));
        let g: Golden = serde_json::from_str(&text).unwrap();
        assert_eq!((&g.model_sha256, &g.refiner_sha256), (&model_sha256, &refiner_sha256), "{} was written for another detector or refiner than {}'s; re-bless it on x86_64", golden_path.display(), manifest.display());

        let overlap = iou(&f.face_box, &g.truth_box);
        let nme = f.landmarks.nme(&Landmarks5(g.truth_landmarks));
        assert!(overlap >= 0.5 && nme <= 0.10, "{}: IoU {overlap:.3} with the drawn face, landmark error {nme:.3} of the inter-ocular distance", manifest.display());

        let (boxes, marks) = (max_diff(&f.face_box, &g.face_box), max_diff(f.landmarks.0.iter().flatten(), g.landmarks.iter().flatten()));
        let score = (f.score - g.score).abs();
        eprintln!(
            "detection.json on {} (TRACT_CPU_AARCH64_KIND={:?}): max diff box {boxes:.1e} px, landmarks {marks:.1e} px, score {score:.1e} vs {}; IoU {overlap:.3}, NME {nme:.3} vs the generator",
            std::env::consts::ARCH,
            std::env::var("TRACT_CPU_AARCH64_KIND").ok(),
            g.written_on
        );
        assert!(boxes <= PIXEL_TOLERANCE && marks <= PIXEL_TOLERANCE && score <= SCORE_TOLERANCE, "{}: the detection moved from the golden one", golden_path.display());
    }
}
