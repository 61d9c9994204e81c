//! `teacher-embed` reproduces the shared LFW templates: the face teacher run through tract on
//! its dlib chip, cut from the original photo at the landmarks the shared set records, gives
//! the shared set's embedding of the image and of its mirror, to the tolerance measured below.
//! Needs `../shared` (SKIPPED without it).

use trainer::kd::teacher::{Item, Teacher};
use trainer::kd::templates::Templates;

/// Images checked (the first of the shared index, in its order).
const IMAGES: usize = 24;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f32>() * b.iter().map(|x| x * x).sum::<f32>()).sqrt()
}

#[test]
fn the_teacher_reproduces_the_shared_lfw_templates() {
    let (Some(teacher), Some(set), Some(images)) = (
        faceunlock_data::shared_or_skip("models/face-teacher.onnx"),
        faceunlock_data::shared_or_skip("data/lfw-teacher"),
        faceunlock_data::shared_or_skip("data/lfw/images"),
    ) else {
        return;
    };
    let shared = Templates::open(&set).unwrap();
    let marks = shared.landmarks.clone().unwrap();
    let items: Vec<Item> = shared.index.iter().zip(&marks).take(IMAGES).map(|(relative, landmarks)| Item { relative: relative.clone(), landmarks: *landmarks }).collect();
    let ours = Teacher::open(&teacher).unwrap().embed_set(&images, &items, |_| {}).unwrap();
    assert_eq!(ours.dim, shared.dim);
    let mut cosines = Vec::new();
    for row in 0..IMAGES {
        for mirrored in [false, true] {
            cosines.push(cosine(ours.template(row, mirrored), shared.template(row, mirrored)));
        }
    }
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    let worst = cosines.iter().copied().fold(1.0f32, f32::min);
    // Measured on these 48 templates: mean 0.9946, worst 0.9709 (docs/distillation.md, "Teacher
    // targets"): the shared set's chips were not resampled exactly as ours (half-pixel centres
    // and a fit in the other direction were tried; neither closes the gap).
    assert!(mean > 0.99 && worst > 0.96, "cosine to the shared templates: mean {mean}, worst {worst}");
}
