//! YuNet through our tract decoder against the reference detections recorded in
//! `../shared/models/README.md` (onnxruntime + OpenCV's FaceDetectorYN). Needs `../shared`.

use faceunlock::detect::{FaceDetector, YuNet};

/// Person, box `(x, y, w, h)`, score, and the 5 landmarks of one reference detection.
type Reference = (&'static str, [f32; 4], f32, [[f32; 2]; 5]);

fn shared() -> Option<std::path::PathBuf> {
    faceunlock_data::shared_or_skip("models/yunet.onnx").map(|_| faceunlock_data::shared_root())
}

#[test]
fn yunet_matches_the_reference_detections_on_lfw() {
    let Some(root) = shared() else { return };
    let mut det = YuNet::from_file(&root.join("models/yunet.onnx"), [256, 256]).unwrap();
    det.score_threshold = 0.5;
    // name, box (x, y, w, h), score, eye L, eye R, nose, mouth L, mouth R
    let golden: [Reference; 3] = [
        ("Aaron_Peirsol", [75.5, 65.6, 95.7, 125.1], 0.941, [[105.4, 112.5], [149.6, 111.0], [131.9, 139.0], [108.8, 155.8], [148.5, 154.9]]),
        ("George_W_Bush", [84.6, 69.1, 89.9, 116.0], 0.929, [[107.0, 114.0], [148.8, 112.3], [129.2, 136.4], [111.6, 152.5], [149.0, 151.4]]),
        ("Serena_Williams", [75.2, 65.7, 97.1, 134.1], 0.940, [[103.2, 113.6], [150.8, 111.7], [128.9, 139.7], [109.9, 163.2], [149.9, 160.5]]),
    ];
    for (name, face_box, score, marks) in golden {
        let path = root.join(format!("data/lfw/images/{name}/{name}_0001.jpg"));
        let img = image::open(&path).unwrap().to_rgb8();
        let faces = det.detect(&img).unwrap();
        assert_eq!(faces.len(), 1, "{name}: {faces:?}");
        let f = faces[0];
        // The reference prints one decimal: allow rounding plus float noise.
        for (g, r) in f.face_box.iter().zip(face_box) {
            assert!((g - r).abs() < 0.15, "{name} box {:?} vs {face_box:?}", f.face_box);
        }
        assert!((f.score - score).abs() < 0.002, "{name} score {}", f.score);
        for (g, r) in f.landmarks.0.iter().zip(marks) {
            assert!((g[0] - r[0]).abs() < 0.15 && (g[1] - r[1]).abs() < 0.15, "{name} landmarks {:?} vs {marks:?}", f.landmarks);
        }
    }
}
