//! From samples on disk to training batches: decode, augment (mirror with left/right class
//! swap, small affine jitter, colour jitter), align with the firmware's own aligner, normalise.

use burn::prelude::*;
use burn::tensor::TensorData;
use faceunlock_core::align::{Aligner, warp_labels_into};
use faceunlock_core::geometry::{CropSpec, Landmarks5, Similarity};
use faceunlock_core::normalize::Normalization;
use faceunlock_data::classes::{NUM_CLASSES, UNLABELLED, mirror_label};
use faceunlock_data::sample::{FaceSample, SampleRef};
use faceunlock_data::DataError;
use faceunlock_data::masks::{MaskStyle, draw_mask};
use image::{GrayImage, RgbImage};
use rand::Rng;
use rayon::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{0}: no landmarks; expected 5 points from the generator or the detection cache")]
    NoLandmarks(String),
    #[error("{0}: landmarks are degenerate")]
    Degenerate(String),
}

/// Augmentation strengths; `None` anywhere means "off".
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    pub flip: bool,
    /// Max rotation (degrees), scale change (fraction) and shift (pixels) of the crop.
    pub affine: [f32; 3],
    /// Max brightness, contrast and saturation change (fractions).
    pub colour: [f32; 3],
    /// Landmark noise before alignment, as the NME it gives (mean point error over the
    /// inter-ocular distance): each coordinate moves by N(0, σ) with σ = this × IOD / √(π/2), so
    /// the student sees crops aligned as badly as a detector with that error aligns them.
    /// Configs saved before the field existed load with 0 (none).
    #[serde(default)]
    pub landmark_nme: f32,
}

impl Augment {
    pub const NONE: Self = Self { flip: false, affine: [0.0; 3], colour: [0.0; 3], landmark_nme: 0.0 };
    pub const TRAIN: Self = Self { flip: true, affine: [8.0, 0.06, 3.0], colour: [0.2, 0.2, 0.2], landmark_nme: 0.0 };
}

/// One sample ready for a batch.
#[derive(Clone)]
pub struct Prepared {
    pub image: Vec<f32>,
    /// Per pixel, the bit set of classes it may be (0: ignore); `None` without a mask.
    pub admissible: Option<Vec<u16>>,
    pub identity: u32,
}

fn mirror_rgb(img: &RgbImage) -> RgbImage {
    image::imageops::flip_horizontal(img)
}

fn mirror_mask(mask: &GrayImage) -> GrayImage {
    let mut m = image::imageops::flip_horizontal(mask);
    m.pixels_mut().for_each(|p| p.0[0] = mirror_label(p.0[0]));
    m
}

pub(crate) fn jitter_colour<R: Rng>(img: &mut RgbImage, strength: [f32; 3], rng: &mut R) {
    if strength == [0.0; 3] {
        return;
    }
    let mut draw = |s: f32| if s > 0.0 { 1.0 + rng.random_range(-s..s) } else { 1.0 };
    let (bright, contrast, sat) = (draw(strength[0]), draw(strength[1]), draw(strength[2]));
    for p in img.pixels_mut() {
        let [r, g, b] = p.0.map(|v| v as f32);
        let grey = 0.299 * r + 0.587 * g + 0.114 * b;
        p.0 = [r, g, b].map(|v| {
            let v = grey + (v - grey) * sat;
            let v = 128.0 + (v - 128.0) * contrast;
            (v * bright).clamp(0.0, 255.0) as u8
        });
    }
}

/// `marks` with every coordinate moved by N(0, σ), σ chosen so the mean point error is `nme`
/// inter-ocular distances (E‖(x, y)‖ = σ·√(π/2) for two independent normal coordinates).
fn jitter_landmarks<R: Rng>(marks: Landmarks5, nme: f32, rng: &mut R) -> Landmarks5 {
    if nme <= 0.0 {
        return marks;
    }
    let sigma = nme * marks.inter_ocular() / std::f32::consts::FRAC_PI_2.sqrt();
    let normal = rand_distr::Normal::new(0.0, sigma).expect("a finite, non-negative σ");
    Landmarks5(marks.0.map(|[x, y]| [x + rng.sample(normal), y + rng.sample(normal)]))
}

/// Decode-free preparation of an already loaded sample.
pub fn prepare<R: Rng>(sample: &FaceSample, name: &str, spec: CropSpec, aug: Augment, rng: &mut R) -> Result<Prepared, PrepareError> {
    prepare_view(sample, name, spec, aug, rng).map(|(prepared, _)| prepared)
}

/// As [`prepare`], also saying whether the view was mirrored (a target that depends on it, such
/// as a teacher's embedding of the mirror image, must follow).
pub fn prepare_view<R: Rng>(sample: &FaceSample, name: &str, spec: CropSpec, aug: Augment, rng: &mut R) -> Result<(Prepared, bool), PrepareError> {
    let marks = sample.landmarks.ok_or_else(|| PrepareError::NoLandmarks(name.into()))?;
    let flip = aug.flip && rng.random_bool(0.5);
    let (image, mask, marks) = if flip {
        let w = sample.image.width() as f32;
        (mirror_rgb(&sample.image), sample.mask.as_ref().map(mirror_mask), marks.mirrored(w))
    } else {
        (sample.image.clone(), sample.mask.clone(), marks)
    };
    let [rot, scale, shift] = aug.affine;
    let centre = [spec.size as f32 / 2.0; 2];
    let mut jitter = Similarity::IDENTITY;
    if rot > 0.0 || scale > 0.0 || shift > 0.0 {
        let mut draw = |s: f32| if s > 0.0 { rng.random_range(-s..s) } else { 0.0 };
        jitter = Similarity::about(centre, draw(rot), 1.0 + draw(scale));
        jitter.tx += draw(shift);
        jitter.ty += draw(shift);
    }
    let marks = jitter_landmarks(marks, aug.landmark_nme, rng);
    let mut aligner = Aligner::new(spec);
    let to_frame = aligner.crop_to_frame(&marks, &jitter).map_err(|_| PrepareError::Degenerate(name.into()))?;
    let mut crop = aligner.warp(&image, &to_frame).clone();
    jitter_colour(&mut crop, aug.colour, rng);
    let admissible = mask.map(|m| {
        let mut out = GrayImage::new(spec.size, spec.size);
        warp_labels_into(&m, &to_frame, UNLABELLED, &mut out);
        out.pixels().map(|p| sample.labelled.admissible(p.0[0])).collect()
    });
    Ok((Prepared { image: Normalization::IMAGENET.to_chw(&crop), admissible, identity: sample.identity }, flip))
}

/// A training batch on device `B`.
pub struct Batch<B: Backend> {
    pub images: Tensor<B, 4>,
    pub identities: Tensor<B, 1, Int>,
    /// `[batch, classes, H, W]`: 1 where the class is admissible for the pixel.
    pub admissible: Tensor<B, 4>,
    /// `[batch, H, W]`: 1 where the pixel has a label.
    pub labelled: Tensor<B, 3>,
    pub len: usize,
}

/// Stack prepared items into a batch on `device`. Masks travel as one 16-bit class set per pixel
/// and are expanded to per-class planes on the device (a 14× smaller upload).
pub fn collate<B: Backend>(items: &[Prepared], size: usize, device: &B::Device) -> Batch<B> {
    let (admissible, labelled) = mask_tensors(items.iter(), size, device);
    Batch { images: images_tensor(items, size, device), identities: identities_tensor(items, device), admissible, labelled, len: items.len() }
}

/// The masks of `items` as `[n, classes, H, W]` admissible planes and the `[n, H, W]` labelled
/// pixels (an item without a mask: nothing labelled).
pub fn mask_tensors<'a, B: Backend>(items: impl ExactSizeIterator<Item = &'a Prepared>, size: usize, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 3>) {
    let n = items.len();
    let plane = size * size;
    let mut sets = vec![0i32; n * plane];
    for (b, item) in items.enumerate() {
        if let Some(bits) = &item.admissible {
            sets[b * plane..(b + 1) * plane].iter_mut().zip(bits).for_each(|(s, v)| *s = *v as i32);
        }
    }
    let sets = Tensor::<B, 4, Int>::from_data(TensorData::new(sets, [n, 1, size, size]), device);
    let planes = (0..NUM_CLASSES).map(|c| sets.clone().bitwise_and_scalar((1i64 << c).elem()).greater_elem(0).float()).collect();
    (Tensor::cat(planes, 1), sets.greater_elem(0).float().squeeze_dim(1))
}

/// The items' images as one `[n, 3, size, size]` tensor on `device`.
pub fn images_tensor<B: Backend>(items: &[Prepared], size: usize, device: &B::Device) -> Tensor<B, 4> {
    let images: Vec<f32> = items.iter().flat_map(|p| p.image.iter().copied()).collect();
    Tensor::from_data(TensorData::new(images, [items.len(), 3, size, size]), device)
}

/// The items' identities as one `[n]` tensor on `device`.
pub fn identities_tensor<B: Backend>(items: &[Prepared], device: &B::Device) -> Tensor<B, 1, Int> {
    let ids: Vec<i64> = items.iter().map(|p| p.identity as i64).collect();
    Tensor::from_data(TensorData::new(ids, [items.len()]), device)
}

/// Load and prepare `refs` in parallel; failures are counted, not fatal. Each item gets its own
/// RNG stream from `(seed, index)`, so a batch is reproducible whatever the thread count.
pub fn prepare_refs(refs: &[&SampleRef], spec: CropSpec, aug: Augment, seed: u64) -> (Vec<Prepared>, Vec<PrepareError>) {
    prepare_each(refs, seed, |sample, name, rng| prepare(sample, name, spec, aug, rng))
}

/// Load each of `refs` in parallel and make something of it with `make`, which gets the sample,
/// its file name and the item's own RNG stream (from `(seed, index)`). Failures are collected.
pub fn prepare_each<T: Send>(
    refs: &[&SampleRef],
    seed: u64,
    make: impl Fn(&FaceSample, &str, &mut rand_chacha::ChaCha8Rng) -> Result<T, PrepareError> + Sync,
) -> (Vec<T>, Vec<PrepareError>) {
    prepare_items(refs, seed, |r| *r, |_, sample, name, rng| make(sample, name, rng))
}

/// [`prepare_each`] over items that each hold a sample (`sample_of`), `make` also getting the
/// item: whatever travels with a sample (a target) stays with it when other samples fail.
pub fn prepare_items<I: Sync, T: Send>(
    items: &[I],
    seed: u64,
    sample_of: impl Fn(&I) -> &SampleRef + Sync,
    make: impl Fn(&I, &FaceSample, &str, &mut rand_chacha::ChaCha8Rng) -> Result<T, PrepareError> + Sync,
) -> (Vec<T>, Vec<PrepareError>) {
    use rand::SeedableRng;
    let results: Vec<_> = items
        .par_iter()
        .enumerate()
        .map(|(i, item)| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let r = sample_of(item);
            let sample = r.load()?;
            make(item, &sample, &r.image.display().to_string(), &mut rng)
        })
        .collect();
    let mut ok = Vec::with_capacity(results.len());
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(p) => ok.push(p),
            Err(e) => failed.push(e),
        }
    }
    (ok, failed)
}

/// `sample` wearing a synthetic mask in a style drawn from `rng`, with probability `p`; `None`
/// when it drew none (nothing is drawn from `rng` when `p` is 0, so a run without masks keeps
/// its random stream). The masked face's segmentation labels are dropped: they no longer
/// describe the pixels under the mask.
pub fn wearing_mask<R: Rng>(sample: &FaceSample, name: &str, p: f64, rng: &mut R) -> Result<Option<FaceSample>, PrepareError> {
    if p <= 0.0 || !rng.random_bool(p) {
        return Ok(None);
    }
    let marks = sample.landmarks.ok_or_else(|| PrepareError::NoLandmarks(name.into()))?;
    let mut masked = FaceSample { mask: None, ..sample.clone() };
    draw_mask(&mut masked.image, &marks, &MaskStyle::random(rng.random())).map_err(|_| PrepareError::Degenerate(name.into()))?;
    Ok(Some(masked))
}

/// One face seen twice under the same augmentation: bare, and wearing `mask` (the bare view
/// again without one).
pub fn prepare_masked_pair<R: Rng + Clone>(sample: &FaceSample, name: &str, spec: CropSpec, aug: Augment, mask: Option<&MaskStyle>, rng: &mut R) -> Result<(Prepared, Prepared), PrepareError> {
    let mut same_draws = rng.clone();
    let bare = prepare(sample, name, spec, aug, rng)?;
    let Some(style) = mask else { return Ok((bare.clone(), bare)) };
    let marks = sample.landmarks.ok_or_else(|| PrepareError::NoLandmarks(name.into()))?;
    let mut masked = sample.clone();
    draw_mask(&mut masked.image, &marks, style).map_err(|_| PrepareError::Degenerate(name.into()))?;
    Ok((bare, prepare(&masked, name, spec, aug, &mut same_draws)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faceunlock_data::masks::MaskKind;
    use faceunlock_data::classes::LabelledClasses;
    use faceunlock_data::synth::Generator;
    use rand::SeedableRng;

    fn generated_face() -> FaceSample {
        let g = Generator::new(3);
        let r = g.render(&g.identity(0), &g.view(0, 0));
        FaceSample { image: r.image, mask: None, labelled: LabelledClasses(0), identity: 0, landmarks: Some(r.landmarks), yaw: None }
    }

    /// Mean absolute difference of two CHW crops over rows `rows` of every channel.
    fn rows_differ(a: &[f32], b: &[f32], size: usize, rows: std::ops::Range<usize>) -> f32 {
        let per_row: Vec<f32> = (0..3 * size).filter(|r| rows.contains(&(r % size))).flat_map(|r| (0..size).map(move |x| r * size + x)).map(|i| (a[i] - b[i]).abs()).collect();
        per_row.iter().sum::<f32>() / per_row.len() as f32
    }

    #[test]
    fn landmark_noise_has_the_requested_nme() {
        let marks = CropSpec::default().template;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let draws = 4000;
        let mean: f64 = (0..draws).map(|_| jitter_landmarks(marks, 0.11, &mut rng).nme(&marks)).sum::<f64>() / draws as f64;
        assert!((mean - 0.11).abs() < 0.003, "mean NME {mean}");
        assert_eq!(jitter_landmarks(marks, 0.0, &mut rng), marks, "no noise asked, none given");
    }

    #[test]
    fn a_face_wears_a_mask_below_the_eyes_with_the_asked_probability() {
        let mut face = generated_face();
        face.mask = Some(GrayImage::new(face.image.width(), face.image.height()));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let untouched = rng.clone();
        assert!(wearing_mask(&face, "face", 0.0, &mut rng).unwrap().is_none());
        assert_eq!(rng.random::<u64>(), untouched.clone().random::<u64>(), "no mask asked: no draw taken from the stream");
        let masked = wearing_mask(&face, "face", 1.0, &mut rng).unwrap().expect("p = 1 always masks");
        assert!(masked.mask.is_none(), "the segmentation labels of a masked face are dropped");
        let eyes_y = face.landmarks.unwrap().0[0][1] as u32;
        let changed = |rows: std::ops::Range<u32>| rows.flat_map(|y| (0..face.image.width()).map(move |x| (x, y))).filter(|(x, y)| face.image.get_pixel(*x, *y) != masked.image.get_pixel(*x, *y)).count();
        assert_eq!(changed(0..eyes_y.saturating_sub(4)), 0, "above the eyes nothing changes");
        assert!(changed(eyes_y + 10..face.image.height()) > 500, "the lower face is covered");
    }

    #[test]
    fn a_masked_pair_shares_its_augmentation_and_differs_only_below_the_eyes() {
        let (face, spec) = (generated_face(), CropSpec::default());
        let size = spec.size as usize;
        let style = MaskStyle { kind: MaskKind::Surgical, colour: [150, 190, 222] };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (bare, masked) = prepare_masked_pair(&face, "face", spec, Augment::TRAIN, Some(&style), &mut rng).unwrap();
        let (top, bottom) = (rows_differ(&bare.image, &masked.image, size, 0..size / 4), rows_differ(&bare.image, &masked.image, size, size * 3 / 4..size));
        assert!(top < 1e-6, "the forehead must be untouched and identically augmented: {top}");
        assert!(bottom > 0.1, "the mask must cover the lower face: {bottom}");
        let (again, unmasked) = prepare_masked_pair(&face, "face", spec, Augment::TRAIN, None, &mut rand_chacha::ChaCha8Rng::seed_from_u64(5)).unwrap();
        assert_eq!(again.image, bare.image, "same seed, same augmentation");
        assert_eq!(unmasked.image, bare.image, "no mask: both views bare");
    }
}
