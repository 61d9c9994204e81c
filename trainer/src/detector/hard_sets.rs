//! The faces the detector used to miss (issue 27), as evaluation sets with references: photos
//! darkened the way a night frame is ([`Darkening`]), faces that fill the frame, heads turned
//! towards profile.

use super::data::{LabelledImage, Source};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::data::LabelledFace;

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
