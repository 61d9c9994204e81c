//! The faces the detector used to miss (issue 27), as evaluation sets with references: photos
//! darkened the way a night frame is ([`Darkening`]), faces that fill the frame, heads turned
//! towards profile.

use super::data::{LabelledImage, Source};
use crate::landmarks::DetectorFiles;
use faceunlock::detect::{FaceDetector, iou};
use faceunlock_data::low_light::Darkening;
use anyhow::{Context, Result};
use faceunlock_core::geometry::{CropSpec, Landmarks5, Similarity};
use faceunlock_core::grid::GridFace;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;

/// `sources` darkened by `how` (each image with its own seeded noise), references unchanged.
pub fn darkened(sources: &[Source], how: Darkening, seed: u64) -> Vec<Source> {
    sources
        .par_iter()
        .enumerate()
        .map(|(i, s)| {
            let mut image = s.image.clone();
            how.apply(&mut image, &mut ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            Source { image, faces: s.faces.clone(), teacher_labelled: s.teacher_labelled }
        })
        .collect()
}

/// The box the teacher draws around a face whose landmarks sit on `spec`'s template: the median
/// over `labels` (each image's face nearest its centre) of the teacher's box mapped into the
/// template's frame by the similarity that takes the face's landmarks onto the template.
/// `None` without a usable face.
pub fn template_box(labels: &[LabelledImage], spec: &CropSpec) -> Option<[f32; 4]> {
    let mut boxes: [Vec<f32>; 4] = Default::default();
    for l in labels {
        let Some(size) = image::image_dimensions(&l.image).ok() else { continue };
        let centre = [size.0 as f32 / 2.0, size.1 as f32 / 2.0];
        let off = |b: &[f32; 4]| (b[0] + b[2] / 2.0 - centre[0]).hypot(b[1] + b[3] / 2.0 - centre[1]);
        let Some(face) = l.faces.iter().min_by(|a, b| off(&a.face_box).total_cmp(&off(&b.face_box))) else { continue };
        let Some(to_template) = Similarity::estimate(&face.landmarks, &spec.template) else { continue };
        let [x, y, w, h] = face.face_box;
        let [cx, cy] = to_template.apply([x + w / 2.0, y + h / 2.0]);
        let s = to_template.scale();
        for (k, v) in [cx, cy, w * s, h * s].into_iter().enumerate() {
            boxes[k].push(v);
        }
    }
    let median = |v: &mut Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let [cx, cy, w, h] = [0, 1, 2, 3].map(|k| median(&mut boxes[k]));
    Some([cx? - w? / 2.0, cy? - h? / 2.0, w?, h?])
}

/// Aligned face crops (their landmarks exactly `spec`'s template, their box `face_box` on it) as
/// frames, each enlarged `zoom` times, then given a replicated border of `pad` of its size on each
/// side (0: none): faces that fill the frame, or (padded, for training) as much of a frame as
/// the crop can give before the warp's black.
pub fn crop_sources(images: &[&Path], spec: &CropSpec, face_box: [f32; 4], zoom: u32, pad: f32) -> Result<Vec<Source>> {
    images
        .par_iter()
        .map(|path| {
            let crop = image::open(path).with_context(|| format!("decoding {}", path.display()))?.to_rgb8();
            anyhow::ensure!(crop.dimensions() == (spec.size, spec.size), "{}: {}×{} pixels, expected an aligned {s}×{s} crop", path.display(), crop.width(), crop.height(), s = spec.size);
            let z = zoom.max(1) as f32;
            let enlarged = image::imageops::resize(&crop, spec.size * zoom.max(1), spec.size * zoom.max(1), image::imageops::FilterType::Triangle);
            let mut image = image::RgbImage::new(0, 0);
            let [dx, dy] = faceunlock::pad_retry::pad_replicated(&enlarged, pad, &mut image).map(|v| v as f32);
            let placed = |[x, y]: [f32; 2]| [x * z + dx, y * z + dy];
            let [x, y, w, h] = face_box;
            let [x, y] = placed([x, y]);
            let face = GridFace { face_box: [x, y, w * z, h * z], landmarks: Landmarks5(spec.template.0.map(placed)) };
            Ok(Source { image, faces: vec![face], teacher_labelled: false })
        })
        .collect()
}

/// `sources` with each face replaced by `teacher`'s detection (at least `min_score`) that
/// overlaps it most, so that every real photo the detector learns from follows the teacher's
/// landmark convention (the ArcFace template puts the mouth corners lower than YuNet does,
/// `docs/detector.md` runs 7-8). Images where the teacher finds none of their faces are
/// dropped; returns the relabelled sources and how many were dropped.
pub fn relabelled_by(sources: Vec<Source>, teacher: &DetectorFiles, min_score: f32) -> Result<(Vec<Source>, usize)> {
    let relabelled: Vec<Result<Option<Source>>> = sources
        .into_par_iter()
        .chunks(64)
        .flat_map_iter(|chunk| {
            let mut loaded: Option<(Box<dyn FaceDetector>, [u32; 2])> = None;
            chunk.into_iter().map(move |s| {
                let size = [s.image.width(), s.image.height()];
                if loaded.as_ref().is_none_or(|(_, at)| *at != size) {
                    loaded = Some((teacher.load(size, min_score)?, size));
                }
                let found = loaded.as_mut().expect("loaded above").0.detect(&s.image)?.to_vec();
                let best = |face: &GridFace| found.iter().map(|d| (iou(&d.face_box, &face.face_box), d)).filter(|(o, _)| *o > 0.3).max_by(|a, b| a.0.total_cmp(&b.0)).map(|(_, d)| GridFace { face_box: d.face_box, landmarks: d.landmarks });
                let faces: Option<Vec<GridFace>> = s.faces.iter().map(best).collect();
                Ok(faces.map(|faces| Source { faces, teacher_labelled: true, ..s }))
            }).collect::<Vec<_>>()
        })
        .collect();
    let total = relabelled.len();
    let kept: Vec<Source> = relabelled.into_iter().filter_map(Result::transpose).collect::<Result<_>>()?;
    let dropped = total - kept.len();
    Ok((kept, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::data::LabelledFace;
    use image::RgbImage;

    #[test]
    fn a_crop_enlarged_and_padded_keeps_its_face_on_the_template() {
        let dir = tempfile::tempdir().unwrap();
        let spec = CropSpec::default();
        let path = dir.path().join("crop.png");
        image::RgbImage::new(spec.size, spec.size).save(&path).unwrap();
        let s = crop_sources(&[path.as_path()], &spec, [17.0, 15.0, 92.0, 122.0], 2, 0.25).unwrap().remove(0);
        // 256 px enlarged, 64 px of border on each side.
        assert_eq!(s.image.dimensions(), (384, 384));
        assert_eq!(s.faces[0].face_box, [98.0, 94.0, 184.0, 244.0]);
        assert_eq!(s.faces[0].landmarks.0[0], [spec.template.0[0][0] * 2.0 + 64.0, spec.template.0[0][1] * 2.0 + 64.0]);
        let wrong = dir.path().join("wrong.png");
        image::RgbImage::new(100, 128).save(&wrong).unwrap();
        let Err(e) = crop_sources(&[wrong.as_path()], &spec, [0.0; 4], 1, 0.0) else { panic!("a 100×128 image taken for an aligned crop") };
        let e = e.to_string();
        assert!(e.contains("wrong.png") && e.contains("expected an aligned 128×128 crop"), "{e}");
    }

    #[test]
    fn relabelling_takes_the_teachers_face_and_drops_images_without_one() {
        use faceunlock_data::synth::{Generator, View};
        let g = Generator::new(5);
        let face = g.render(&g.identity(0), &View::posed(0.0, 0.0, 0.0));
        let truth = GridFace { face_box: face.face_box, landmarks: face.landmarks };
        let with_face = Source { image: face.image.clone(), faces: vec![truth], teacher_labelled: false };
        let blank = Source { image: RgbImage::new(face.image.width(), face.image.height()), faces: vec![truth], teacher_labelled: false };
        let teacher = DetectorFiles::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/detector.onnx"), None).unwrap();
        let (kept, dropped) = relabelled_by(vec![blank, with_face], &teacher, 0.5).unwrap();
        assert_eq!((kept.len(), dropped), (1, 1));
        let (got, want) = (kept[0].faces[0].landmarks.0, face.landmarks.0);
        assert_ne!(got, want, "the teacher's landmarks, not the references");
        let iod = (want[1][0] - want[0][0]).hypot(want[1][1] - want[0][1]);
        for (g, w) in got.iter().zip(want) {
            assert!((g[0] - w[0]).hypot(g[1] - w[1]) < 0.3 * iod, "{got:?} vs {want:?}");
        }
        assert!(kept[0].teacher_labelled);
    }

    #[test]
    fn the_template_box_is_the_central_faces_box_in_the_templates_frame() {
        let dir = tempfile::tempdir().unwrap();
        let spec = CropSpec::default();
        let path = dir.path().join("photo.png");
        image::RgbImage::new(400, 400).save(&path).unwrap();
        // The template itself, twice as large and moved to the photo's centre; a second face in a corner.
        let to_photo = Similarity { a: 2.0, b: 0.0, tx: 72.0, ty: 72.0 };
        let central = LabelledFace { face_box: to_photo.apply([17.0, 15.0]).into_iter().chain([184.0, 244.0]).collect::<Vec<_>>().try_into().unwrap(), landmarks: spec.template.transformed(&to_photo), score: 0.9 };
        let corner = LabelledFace { face_box: [0.0, 0.0, 30.0, 30.0], landmarks: Landmarks5([[5.0, 10.0], [20.0, 10.0], [12.0, 16.0], [7.0, 22.0], [18.0, 22.0]]), score: 0.9 };
        let labels = vec![LabelledImage { image: path, faces: vec![corner, central] }];
        let b = template_box(&labels, &spec).unwrap();
        for (got, want) in b.iter().zip([17.0, 15.0, 92.0, 122.0]) {
            assert!((got - want).abs() < 1e-3, "{b:?}");
        }
    }
}
