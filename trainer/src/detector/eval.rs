//! How well a detector finds the faces a reference found: recall at IoU ≥ 0.5 and the landmark
//! error of the matched faces as a fraction of the reference's inter-ocular distance (NME).
//! Against YuNet's detections on held-out LFW people (the distillation target) and against the
//! generator's ground truth.

use super::data::Source;
use anyhow::Result;
use crate::landmarks::DetectorFiles;
use faceunlock::detect::{FaceDetector, iou};
use faceunlock_core::geometry::Landmarks5;
use rand::Rng;
use rayon::prelude::*;
use serde::Serialize;

/// A match needs at least this overlap.
pub const MIN_IOU: f32 = 0.5;

/// Reference faces smaller than this (√(w·h), image pixels) are counted apart: [`SIZE_BINS`].
pub const SIZE_BINS: [f32; 3] = [32.0, 64.0, 128.0];

#[derive(Clone, Debug, Default, Serialize)]
pub struct DetectorScore {
    pub images: usize,
    pub reference_faces: usize,
    pub matched: usize,
    pub recall: f64,
    /// Mean and median landmark error over matched faces, fraction of the inter-ocular distance.
    pub mean_nme: f64,
    pub median_nme: f64,
    /// Detections that match no reference face.
    pub unmatched_detections: usize,
    /// The mean signed error of each landmark over matched faces, in the reference face's own
    /// frame (x along its eye line, y across it, in its inter-ocular distances): the part of the
    /// error that is systematic (a landmark convention learnt apart from the reference's).
    /// Printed, not recorded in manifests.
    #[serde(skip)]
    pub landmark_bias: [[f64; 2]; 5],
    /// The same measures for the reference face nearest each image's centre (the person an LFW
    /// photo is named after), then for reference faces by size (bins without faces left out).
    pub subsets: Vec<Subset>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Subset {
    pub what: String,
    pub reference_faces: usize,
    pub matched: usize,
    pub recall: f64,
    pub mean_nme: f64,
    pub median_nme: f64,
}

impl Subset {
    fn of<'a>(what: String, faces: impl Iterator<Item = &'a FaceResult>) -> Self {
        let (mut reference_faces, mut nmes) = (0, Vec::new());
        for f in faces {
            reference_faces += 1;
            nmes.extend(f.nme);
        }
        nmes.sort_by(f64::total_cmp);
        Self {
            what,
            reference_faces,
            matched: nmes.len(),
            recall: nmes.len() as f64 / reference_faces.max(1) as f64,
            mean_nme: nmes.iter().sum::<f64>() / nmes.len().max(1) as f64,
            median_nme: nmes.get(nmes.len() / 2).copied().unwrap_or(0.0),
        }
    }
}

/// One reference face: its size √(w·h), whether it is the face nearest its image's centre, and
/// the landmark error of the detection matched to it.
struct FaceResult {
    size: f32,
    central: bool,
    nme: Option<f64>,
    offsets: Option<[[f64; 2]; 5]>,
}

/// Each landmark's error `found − reference` in the reference's frame: along its eye line and
/// across it, in its inter-ocular distances.
fn face_frame_offsets(found: &Landmarks5, reference: &Landmarks5) -> [[f64; 2]; 5] {
    let [l, r, ..] = reference.0;
    let eye_line = [(r[0] - l[0]) as f64, (r[1] - l[1]) as f64];
    let scale = eye_line[0].hypot(eye_line[1]).max(1.0);
    let (ux, uy) = (eye_line[0] / scale, eye_line[1] / scale);
    std::array::from_fn(|i| {
        let d = [(found.0[i][0] - reference.0[i][0]) as f64, (found.0[i][1] - reference.0[i][1]) as f64];
        [(d[0] * ux + d[1] * uy) / scale, (d[1] * ux - d[0] * uy) / scale]
    })
}

/// One image's result: its reference faces, and the detections that matched none.
type ImageResult = (Vec<FaceResult>, usize);

fn score_image(det: &mut dyn FaceDetector, src: &Source) -> Result<ImageResult> {
    let found = det.detect(&src.image)?;
    let centre = [src.image.width() as f32 / 2.0, src.image.height() as f32 / 2.0];
    let off_centre = |b: &[f32; 4]| (b[0] + b[2] / 2.0 - centre[0]).hypot(b[1] + b[3] / 2.0 - centre[1]);
    let central = (0..src.faces.len()).min_by(|a, b| off_centre(&src.faces[*a].face_box).total_cmp(&off_centre(&src.faces[*b].face_box)));
    let mut used = vec![false; found.len()];
    let mut faces = Vec::with_capacity(src.faces.len());
    for (k, face) in src.faces.iter().enumerate() {
        let best = found.iter().enumerate().filter(|(i, _)| !used[*i]).map(|(i, d)| (i, iou(&d.face_box, &face.face_box))).max_by(|a, b| a.1.total_cmp(&b.1));
        let matched = best.filter(|(_, o)| *o >= MIN_IOU).map(|(i, _)| {
            used[i] = true;
            &found[i].landmarks
        });
        let size = (face.face_box[2] * face.face_box[3]).max(0.0).sqrt();
        let nme = matched.map(|m| m.nme(&face.landmarks));
        let offsets = matched.map(|m| face_frame_offsets(m, &face.landmarks));
        faces.push(FaceResult { size, central: central == Some(k), nme, offsets });
    }
    Ok((faces, used.iter().filter(|u| !**u).count()))
}

/// Score `detector` (input `size`, threshold `score_threshold`) against the faces of `sources`.
pub fn score(detector: &DetectorFiles, size: [u32; 2], score_threshold: f32, sources: &[Source]) -> Result<DetectorScore> {
    let per_chunk: Vec<Result<Vec<ImageResult>>> = sources
        .par_chunks(32)
        .map(|chunk| {
            let mut det = detector.load(size, score_threshold)?;
            chunk.iter().map(|s| score_image(det.as_mut(), s)).collect()
        })
        .collect();
    let mut results = Vec::with_capacity(sources.len());
    for chunk in per_chunk {
        results.extend(chunk?);
    }
    Ok(summarize(results))
}

/// Recall and landmark error over all images' reference faces, and over [`Subset`]s of them.
fn summarize(results: Vec<ImageResult>) -> DetectorScore {
    let images = results.len();
    let (mut faces, mut unmatched_detections) = (Vec::new(), 0);
    for (f, unmatched) in results {
        faces.extend(f);
        unmatched_detections += unmatched;
    }
    let all = Subset::of(String::new(), faces.iter());
    let mut subsets = vec![Subset::of("face nearest the image centre".into(), faces.iter().filter(|f| f.central))];
    let edges: Vec<f32> = std::iter::once(0.0).chain(SIZE_BINS).chain([f32::INFINITY]).collect();
    for w in edges.windows(2) {
        let what = if w[1].is_finite() { format!("faces {}-{} px", w[0], w[1]) } else { format!("faces ≥ {} px", w[0]) };
        let bin = Subset::of(what, faces.iter().filter(|f| f.size >= w[0] && f.size < w[1]));
        if bin.reference_faces > 0 {
            subsets.push(bin);
        }
    }
    let offsets: Vec<_> = faces.iter().filter_map(|f| f.offsets).collect();
    let landmark_bias = std::array::from_fn(|i| std::array::from_fn(|c| offsets.iter().map(|o| o[i][c]).sum::<f64>() / offsets.len().max(1) as f64));
    DetectorScore {
        landmark_bias,
        images,
        reference_faces: all.reference_faces,
        matched: all.matched,
        recall: all.recall,
        mean_nme: all.mean_nme,
        median_nme: all.median_nme,
        unmatched_detections,
        subsets,
    }
}

/// Generated views of people `first..first + people` (views drawn at random from the seed), with
/// the generator's ground truth: a set no detector was trained on when the seed is new.
pub fn generated_sources(seed: u64, first: u32, people: u32, views: u32) -> Vec<Source> {
    generated_with(seed, first, people, views, |view, _| view)
}

/// As [`generated_sources`], each view's head turned to |yaw| in `yaw` degrees (either side,
/// drawn from the seed); everything else about the views is as drawn.
pub fn generated_turned(seed: u64, first: u32, people: u32, views: u32, yaw: [f32; 2]) -> Vec<Source> {
    generated_with(seed, first, people, views, |view, rng| {
        let magnitude = rng.random_range(yaw[0]..=yaw[1]);
        faceunlock_data::synth::View { yaw: if rng.random_bool(0.5) { magnitude } else { -magnitude }, ..view }
    })
}

fn generated_with(seed: u64, first: u32, people: u32, views: u32, adjust: impl Fn(faceunlock_data::synth::View, &mut rand_chacha::ChaCha8Rng) -> faceunlock_data::synth::View + Sync) -> Vec<Source> {
    use faceunlock_data::synth::Generator;
    use rand::SeedableRng;
    let g = Generator::new(seed);
    let adjust = &adjust;
    (first..first + people)
        .into_par_iter()
        .flat_map_iter(|p| {
            let id = g.identity(p);
            let g = &g;
            (0..views).map(move |v| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ ((p as u64) << 32 | v as u64));
                let r = g.render(&id, &adjust(g.view(p, v), &mut rng));
                Source { image: r.image, faces: vec![faceunlock_core::grid::GridFace { face_box: r.face_box, landmarks: r.landmarks }], teacher_labelled: false }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faceunlock::detect::{DetectError, Detection};
    use faceunlock_core::grid::GridFace;
    use image::RgbImage;

    /// Landmarks spread over a box `[x, y, w, h]`; inter-ocular distance `0.4·w`.
    fn marks(b: [f32; 4]) -> Landmarks5 {
        let p = |fx: f32, fy: f32| [b[0] + fx * b[2], b[1] + fy * b[3]];
        Landmarks5::new([p(0.3, 0.4), p(0.7, 0.4), p(0.5, 0.6), p(0.35, 0.8), p(0.65, 0.8)])
    }

    struct Fixed(Vec<Detection>);

    impl FaceDetector for Fixed {
        fn detect(&mut self, _: &RgbImage) -> Result<&[Detection], DetectError> {
            Ok(&self.0)
        }
    }

    #[test]
    fn the_central_face_and_each_size_are_scored_apart() {
        let central = [60.0, 60.0, 80.0, 80.0];
        let small = [0.0, 0.0, 20.0, 20.0];
        let src = Source { image: RgbImage::new(200, 200), faces: [small, central].map(|b| GridFace { face_box: b, landmarks: marks(b) }).to_vec(), teacher_labelled: true };
        // Only the central face is found, its landmarks 3.2 px (a tenth of its 32 px inter-ocular
        // distance) to the right; a second detection matches nothing.
        let shifted = Landmarks5::new(marks(central).0.map(|[x, y]| [x + 3.2, y]));
        let found = [Detection { face_box: central, score: 0.9, landmarks: shifted }, Detection { face_box: [150.0, 150.0, 30.0, 30.0], score: 0.7, landmarks: marks(small) }];
        let s = summarize(vec![score_image(&mut Fixed(found.to_vec()), &src).unwrap()]);
        assert_eq!((s.reference_faces, s.matched, s.unmatched_detections), (2, 1, 1));
        let by_what = |w: &str| s.subsets.iter().find(|x| x.what == w).unwrap_or_else(|| panic!("{w} in {:?}", s.subsets));
        assert_eq!(by_what("face nearest the image centre").recall, 1.0);
        assert!((by_what("face nearest the image centre").mean_nme - 0.1).abs() < 1e-5);
        assert_eq!(by_what("faces 0-32 px").recall, 0.0);
        assert_eq!(by_what("faces 64-128 px").matched, 1);
        assert_eq!(s.subsets.len(), 3, "empty size bins are left out: {:?}", s.subsets);
        // The shift is systematic: a tenth of an inter-ocular distance along the eye line.
        assert!(s.landmark_bias.iter().all(|[x, y]| (x - 0.1).abs() < 1e-5 && y.abs() < 1e-5), "{:?}", s.landmark_bias);
    }

    #[test]
    fn offsets_are_measured_in_the_reference_faces_frame() {
        // A face rolled 90°: its eye line points down the image, so a detection 4 px further
        // down (along the eye line) and 2 px to the left (across it, towards the mouth) is
        // +0.1 / +0.05 of its 40 px inter-ocular distance.
        let reference = Landmarks5::new([[100.0, 50.0], [100.0, 90.0], [80.0, 70.0], [60.0, 55.0], [60.0, 85.0]]);
        let found = Landmarks5::new(reference.0.map(|[x, y]| [x - 2.0, y + 4.0]));
        for [along, across] in face_frame_offsets(&found, &reference) {
            assert!((along - 0.1).abs() < 1e-9 && (across - 0.05).abs() < 1e-9, "{along} {across}");
        }
    }
}
