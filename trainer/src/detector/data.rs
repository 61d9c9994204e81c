//! Detector training data: real photos with the teacher's faces (YuNet run once over LFW, every
//! face it finds) and generated images with their ground truth, warped at random scale,
//! rotation and position into the network's input, mirrored, colour-jittered.

use super::targets;
use super::teacher::DenseTeacher;
use anyhow::Result;
use burn::prelude::*;
use burn::tensor::TensorData;
use faceunlock_core::align::warp_into;
use faceunlock_core::geometry::{Landmarks5, Similarity};
use faceunlock_core::grid::GridFace;
use faceunlock_data::low_light::{Darkening, light_from_side};
use image::RgbImage;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One image and every face in it (a teacher's detections or the generator's ground truth).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabelledImage {
    pub image: PathBuf,
    pub faces: Vec<LabelledFace>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct LabelledFace {
    pub face_box: [f32; 4],
    pub landmarks: Landmarks5,
    pub score: f32,
}

impl LabelledFace {
    pub fn grid(&self) -> GridFace {
        GridFace { face_box: self.face_box, landmarks: self.landmarks }
    }
}

pub fn save_labels(path: &Path, labels: &[LabelledImage]) -> Result<()> {
    crate::landmarks::save_jsonl(path, labels)
}

pub fn load_labels(path: &Path) -> Result<Vec<LabelledImage>> {
    crate::landmarks::load_jsonl(path, "labelled-image")
}

/// The generator's ground truth of a generated set, as labels.
pub fn synth_labels(dir: &Path) -> Result<Vec<LabelledImage>> {
    let set = faceunlock_data::synth_set::SynthSet::open(dir)?;
    Ok(set
        .records
        .iter()
        .map(|r| LabelledImage {
            image: set.root.join(&r.image),
            faces: vec![LabelledFace { face_box: r.face_box, landmarks: Landmarks5(r.landmarks), score: 1.0 }],
        })
        .collect())
}

/// A decoded image with its faces, held in memory for the whole run.
pub struct Source {
    pub image: RgbImage,
    pub faces: Vec<GridFace>,
    /// The faces are the teacher's: with a dense teacher, its outputs on each sample of this
    /// image are the targets (the faces still choose where samples are centred).
    pub teacher_labelled: bool,
}

/// Decode every labelled image (in parallel); undecodable files are reported and skipped.
pub fn load_sources(labels: &[LabelledImage], min_score: f32, teacher_labelled: bool) -> Vec<Source> {
    labels
        .par_iter()
        .filter_map(|l| match image::open(&l.image) {
            Ok(img) => Some(Source { image: img.to_rgb8(), faces: l.faces.iter().filter(|f| f.score >= min_score).map(LabelledFace::grid).collect(), teacher_labelled }),
            Err(e) => {
                log::warn!("skipped {}: {e}", l.image.display());
                None
            }
        })
        .collect()
}

/// How far the augmentation may go.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Augment {
    /// Range of the chosen face's size in the input (√(w·h), pixels).
    pub face_px: [f32; 2],
    /// Never enlarge the source by more than this.
    pub max_zoom: f32,
    pub max_degrees: f32,
    /// Brightness, contrast, saturation jitter (fractions).
    pub colour: [f32; 3],
    /// Share of samples placed at random, whatever the faces (mostly background).
    pub random_crop: f64,
    /// Share of samples darkened as a night frame (`low_light_sample`); 0 in runs before it.
    #[serde(default)]
    pub low_light: f64,
    /// Share of samples made grey, as a monochrome or infrared camera sees; 0 in runs before it.
    #[serde(default)]
    pub grey: f64,
}

impl Default for Augment {
    fn default() -> Self {
        Self { face_px: [16.0, 160.0], max_zoom: 1.6, max_degrees: 20.0, colour: [0.3, 0.3, 0.3], random_crop: 0.1, low_light: 0.0, grey: 0.0 }
    }
}

/// A night frame at random: gamma 1.5-3 with noise σ 0-6 levels ([`Darkening`]), half of them
/// also lit from one side (far side at 20-80 % of the near side's light).
fn low_light_sample<R: Rng>(image: &mut RgbImage, rng: &mut R) {
    if rng.random_bool(0.5) {
        light_from_side(image, rng.random_range(0.0..360.0), rng.random_range(0.2..0.8));
    }
    Darkening { gamma: rng.random_range(1.5..3.0), noise: rng.random_range(0.0..6.0) }.apply(image, rng);
}

/// `image` in grey (Rec. 601 luma in every channel).
fn make_grey(image: &mut RgbImage) {
    for px in image.pixels_mut() {
        let [r, g, b] = px.0.map(|v| v as f32);
        px.0 = [(0.299 * r + 0.587 * g + 0.114 * b).round() as u8; 3];
    }
}

/// A face mapped by `t`: landmarks exactly; the box as that of the ellipse inscribed in it,
/// rotated and scaled (a face is closer to an ellipse than to its box).
fn transform_face(f: &GridFace, t: &Similarity) -> GridFace {
    let [x, y, w, h] = f.face_box;
    let [cx, cy] = t.apply([x + w / 2.0, y + h / 2.0]);
    let k = t.scale();
    let (sin, cos) = ((t.b / k).abs(), (t.a / k).abs());
    let (nw, nh) = (k * (w * cos).hypot(h * sin), k * (w * sin).hypot(h * cos));
    GridFace { face_box: [cx - nw / 2.0, cy - nh / 2.0, nw, nh], landmarks: f.landmarks.transformed(t) }
}

/// One training input: the warped image (`[3, H, W]` BGR 0..255) and its targets (the dense
/// teacher's answer on it for a teacher-labelled source, else built from its faces).
pub fn sample<R: Rng>(src: &Source, size: [usize; 2], aug: &Augment, teacher: Option<&DenseTeacher>, rng: &mut R) -> (Vec<f32>, Vec<f32>) {
    let (w, h) = (size[0] as f32, size[1] as f32);
    let degrees = rng.random_range(-aug.max_degrees..=aug.max_degrees);
    let (centre, zoom) = match (src.faces.is_empty() || rng.random_bool(aug.random_crop), src.faces.len()) {
        (false, n) => {
            let f = &src.faces[rng.random_range(0..n)];
            let s = (f.face_box[2] * f.face_box[3]).sqrt().max(1.0);
            let target = (rng.random_range(aug.face_px[0].ln()..aug.face_px[1].ln())).exp();
            ([f.face_box[0] + f.face_box[2] / 2.0, f.face_box[1] + f.face_box[3] / 2.0], (target / s).min(aug.max_zoom))
        }
        _ => {
            let c = [rng.random_range(0.0..src.image.width() as f32), rng.random_range(0.0..src.image.height() as f32)];
            (c, rng.random_range(0.3..aug.max_zoom))
        }
    };
    let at = [rng.random_range(0.1 * w..0.9 * w), rng.random_range(0.1 * h..0.9 * h)];
    // Frame → input: rotate and scale about the chosen centre, then move it to `at`.
    let mut to_input = Similarity::about(centre, degrees, zoom);
    to_input.tx += at[0] - centre[0];
    to_input.ty += at[1] - centre[1];
    let to_frame = to_input.inverse().unwrap_or(Similarity::IDENTITY);
    let mut canvas = RgbImage::new(size[0] as u32, size[1] as u32);
    warp_into(&src.image, &to_frame, &mut canvas);
    let mut faces: Vec<GridFace> = src.faces.iter().map(|f| transform_face(f, &to_input)).collect();
    if rng.random_bool(0.5) {
        canvas = image::imageops::flip_horizontal(&canvas);
        for f in &mut faces {
            f.face_box[0] = w - 1.0 - f.face_box[0] - f.face_box[2];
            f.landmarks = f.landmarks.mirrored(w);
        }
    }
    crate::data::jitter_colour(&mut canvas, aug.colour, rng);
    if rng.random_bool(aug.low_light) {
        low_light_sample(&mut canvas, rng);
    }
    if rng.random_bool(aug.grey) {
        make_grey(&mut canvas);
    }
    let plane = size[0] * size[1];
    let mut pixels = vec![0.0f32; 3 * plane];
    for (i, px) in canvas.as_raw().chunks_exact(3).enumerate() {
        pixels[i] = px[2] as f32;
        pixels[plane + i] = px[1] as f32;
        pixels[2 * plane + i] = px[0] as f32;
    }
    let targets = match teacher {
        Some(teacher) if src.teacher_labelled => teacher.targets(&canvas),
        _ => targets::build(size, &faces),
    };
    (pixels, targets)
}

/// A batch of `count` inputs and targets, flat (`[N, 3, H, W]` and `[N, CHANNELS, cells]`),
/// drawn from `sources` with per-item RNG streams from `seed`.
pub struct HostBatch {
    pub count: usize,
    pub images: Vec<f32>,
    pub targets: Vec<f32>,
}

pub fn host_batch(sources: &[Source], size: [usize; 2], aug: &Augment, teacher: Option<&DenseTeacher>, count: usize, seed: u64) -> HostBatch {
    use rand::SeedableRng;
    let items: Vec<(Vec<f32>, Vec<f32>)> = (0..count)
        .into_par_iter()
        .map(|i| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let src = &sources[rng.random_range(0..sources.len())];
            sample(src, size, aug, teacher, &mut rng)
        })
        .collect();
    let (images, targets): (Vec<Vec<f32>>, Vec<Vec<f32>>) = items.into_iter().unzip();
    HostBatch { count, images: images.concat(), targets: targets.concat() }
}

/// A batch on the device: images `[N, 3, H, W]`, targets `[N, CHANNELS, cells]`.
pub struct Batch<B: Backend> {
    pub images: Tensor<B, 4>,
    pub targets: Tensor<B, 3>,
}

impl HostBatch {
    pub fn upload<B: Backend>(self, size: [usize; 2], device: &B::Device) -> Batch<B> {
        let n = self.count;
        Batch {
            images: Tensor::from_data(TensorData::new(self.images, [n, 3, size[1], size[0]]), device),
            targets: Tensor::from_data(TensorData::new(self.targets, [n, targets::CHANNELS, targets::cell_count(size)]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faceunlock_core::grid::{STRIDES, decode};
    use rand::SeedableRng;

    #[test]
    fn an_augmentation_saved_before_low_light_and_grey_loads_with_neither() {
        let old = r#"{"face_px":[16.0,160.0],"max_zoom":1.6,"max_degrees":20.0,"colour":[0.3,0.3,0.3],"random_crop":0.1}"#;
        let a: Augment = serde_json::from_str(old).unwrap();
        assert_eq!((a.low_light, a.grey), (0.0, 0.0));
    }

    #[test]
    fn night_and_grey_samples_are_darker_and_grey() {
        let image = RgbImage::from_fn(160, 160, |x, y| image::Rgb([(x + y) as u8, 200, 90]));
        let src = Source { image, faces: vec![], teacher_labelled: false };
        let plain = Augment { colour: [0.0; 3], ..Augment::default() };
        let mean = |aug: &Augment| {
            let (px, _) = sample(&src, [64, 64], aug, None, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
            px.iter().sum::<f32>() / px.len() as f32
        };
        assert!(mean(&Augment { low_light: 1.0, ..plain }) < 0.8 * mean(&plain));
        let (px, _) = sample(&src, [64, 64], &Augment { grey: 1.0, ..plain }, None, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let plane = 64 * 64;
        assert!((0..plane).all(|i| px[i] == px[plane + i] && px[i] == px[2 * plane + i]));
    }

    /// A black image with a white blob at the "left eye": after any augmentation, the eye
    /// decoded from the targets of every positive cell lands on the blob in the warped input.
    #[test]
    fn decoded_targets_point_at_the_same_image_content() {
        let mut image = RgbImage::new(200, 200);
        let eye = [70.0f32, 80.0];
        for y in 74..87 {
            for x in 64..77 {
                // Blue only, so a swapped channel order would show.
                image.put_pixel(x, y, image::Rgb([0, 0, 255]));
            }
        }
        let marks = Landmarks5([eye, [130.0, 80.0], [100.0, 110.0], [75.0, 140.0], [125.0, 140.0]]);
        let src = Source { image, faces: vec![GridFace { face_box: [50.0, 40.0, 100.0, 130.0], landmarks: marks }], teacher_labelled: false };
        let aug = Augment { colour: [0.0; 3], random_crop: 0.0, ..Augment::default() };
        let size = [96usize, 96];
        let cells = targets::cell_count(size);
        let mut checked = 0;
        for seed in 0..40 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let (pixels, t) = sample(&src, size, &aug, None, &mut rng);
            let mut base = 0;
            for &stride in &STRIDES {
                let cols = size[0] / stride;
                for i in base..base + cols * (size[1] / stride) {
                    if t[i] != 1.0 {
                        continue;
                    }
                    let (bbox, kps): (Vec<f32>, Vec<f32>) = ((0..4).map(|c| t[(2 + c) * cells + i]).collect(), (0..10).map(|c| t[(6 + c) * cells + i]).collect());
                    let face = decode((i - base) % cols, (i - base) / cols, stride, &bbox, &kps);
                    // A mirrored sample swaps the eyes: the blob is whichever eye is on it.
                    let on_blob = |p: [f32; 2]| {
                        let (x, y) = (p[0].round() as usize, p[1].round() as usize);
                        x < size[0] && y < size[1] && pixels[y * size[0] + x] > 100.0
                    };
                    let [le, re, ..] = face.landmarks.0;
                    let inside = |p: [f32; 2]| p[0] >= 0.0 && p[1] >= 0.0 && p[0] < size[0] as f32 - 1.0 && p[1] < size[1] as f32 - 1.0;
                    if inside(le) && inside(re) {
                        assert!(on_blob(le) || on_blob(re), "seed {seed}: neither eye {le:?} {re:?} is on the blob");
                        checked += 1;
                    }
                }
                base += cols * (size[1] / stride);
            }
        }
        assert!(checked > 20, "only {checked} positive cells checked");
    }
}
