//! Synthetic face masks drawn onto real photos, placed from the five landmarks: the occluded
//! faces of the masked-face protocols (a surgical mask, a cloth mask, a respirator or a scarf
//! over the lower half of the face).
//!
//! Each outline is drawn in the ArcFace 112×112 template frame and carried into the photo by the
//! least-squares affine map from the template's five points to the face's, so it follows the
//! face's position, size, roll and the horizontal squeeze of a turned head. The fabric's shading
//! follows the light falling on the face (its left/right brightness), with folds, pleats or
//! seams by kind.
//!
//! ```
//! use faceunlock_core::geometry::{CropSpec, Landmarks5};
//! use faceunlock_data::masks::{MaskKind, MaskStyle, draw_mask};
//!
//! let mut photo = image::RgbImage::from_pixel(112, 112, image::Rgb([200, 160, 140]));
//! let face = CropSpec::arcface(112).template; // a face exactly on the template
//! let style = MaskStyle { kind: MaskKind::Surgical, colour: [150, 190, 220] };
//! let covered = draw_mask(&mut photo, &face, &style).unwrap();
//! assert!(covered > 0.2 && covered < 0.6, "{covered}");
//! let mouth = face.0[3];
//! assert!(photo.get_pixel(mouth[0] as u32 + 5, mouth[1] as u32)[2] > 180, "blue over the mouth");
//! ```

use faceunlock_core::geometry::{CropSpec, Landmarks5};
use faceunlock_core::homography::Homography;
use image::RgbImage;
use rand::{Rng, SeedableRng};

/// What covers the lower face.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MaskKind {
    /// Pleated, up to the nose bridge, down below the chin.
    Surgical,
    /// Shaped cloth with a vertical seam, rounded over the nose.
    Cloth,
    /// A folded respirator (KN95-like), pointed at the nose and the chin.
    Respirator,
    /// A scarf from below the nose tip, wider than the face, knitted.
    Scarf,
}

impl MaskKind {
    pub const ALL: [MaskKind; 4] = [MaskKind::Surgical, MaskKind::Cloth, MaskKind::Respirator, MaskKind::Scarf];

    /// The outline in the ArcFace 112×112 frame (eyes at y ≈ 51.6, nose tip 71.7, mouth 92.3).
    fn outline(self) -> &'static [[f32; 2]] {
        match self {
            MaskKind::Surgical => &[
                [26.0, 64.0], [40.0, 61.0], [56.0, 59.5], [72.0, 61.0], [86.0, 64.0], [100.0, 72.0], [102.0, 86.0], [96.0, 101.0],
                [82.0, 114.0], [56.0, 121.0], [30.0, 114.0], [16.0, 101.0], [10.0, 86.0], [12.0, 72.0],
            ],
            MaskKind::Cloth => &[
                [24.0, 67.0], [38.0, 60.0], [56.0, 57.0], [74.0, 60.0], [88.0, 67.0], [98.0, 80.0], [97.0, 96.0], [86.0, 111.0],
                [70.0, 121.0], [56.0, 124.0], [42.0, 121.0], [26.0, 111.0], [15.0, 96.0], [14.0, 80.0],
            ],
            MaskKind::Respirator => &[
                [20.0, 70.0], [40.0, 62.0], [56.0, 56.0], [72.0, 62.0], [92.0, 70.0], [104.0, 84.0], [94.0, 102.0], [56.0, 126.0],
                [18.0, 102.0], [8.0, 84.0],
            ],
            MaskKind::Scarf => &[
                [-4.0, 80.0], [20.0, 76.0], [56.0, 74.5], [92.0, 76.0], [116.0, 80.0], [120.0, 112.0], [114.0, 140.0], [-2.0, 140.0],
                [-8.0, 112.0],
            ],
        }
    }

    /// Brightness of the fabric's own pattern at template point `(x, y)`, around 1.
    fn pattern(self, x: f32, y: f32) -> f32 {
        let centre = 1.0 - 0.22 * ((x - 56.0) / 48.0).powi(2);
        let line = |d: f32, width: f32| if d.abs() < width { 0.8 } else { 1.0 };
        centre
            * match self {
                MaskKind::Surgical => [76.0, 88.0, 100.0].iter().map(|p| line(y - p, 1.2)).fold(1.0, f32::min),
                MaskKind::Cloth => line(x - 56.0, 0.8),
                MaskKind::Respirator => line(x - 56.0, 0.6) * if y < 90.0 { 1.04 } else { 0.96 },
                MaskKind::Scarf => 0.93 + 0.07 * ((x * 0.9).sin() * (y * 0.9 + x * 0.3).sin()),
            }
    }
}

/// One mask: its kind and base colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaskStyle {
    pub kind: MaskKind,
    pub colour: [u8; 3],
}

/// Colours masks and scarves come in: surgical blue, white, black, grey, pink, navy, green, red.
const COLOURS: [[u8; 3]; 8] =
    [[150, 190, 222], [236, 236, 234], [32, 32, 36], [128, 130, 136], [228, 168, 188], [42, 52, 92], [92, 140, 112], [170, 40, 46]];

impl MaskStyle {
    /// A style drawn from `seed` (every kind and colour alike).
    pub fn random(seed: u64) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Self { kind: MaskKind::ALL[rng.random_range(0..MaskKind::ALL.len())], colour: COLOURS[rng.random_range(0..COLOURS.len())] }
    }

    /// The style a named image gets under `seed`: the same image always wears the same mask.
    pub fn for_name(name: &str, seed: u64) -> Self {
        // FNV-1a: stable across runs and platforms, unlike the standard library's hasher.
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        Self::random(hash ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// [`MaskStyle::for_name`] of the file's name (not its folder: the same photo wears the
    /// same mask wherever the data set lies).
    pub fn for_file(path: &std::path::Path, seed: u64) -> Self {
        Self::for_name(&path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(), seed)
    }
}

/// Why a mask could not be placed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MaskError {
    #[error("cannot place a mask: the five landmarks {0:?} do not span a face (collinear or not finite)")]
    Degenerate(Landmarks5),
}

/// Draw `style` over the lower face whose landmarks are `face`; returns the fraction of the
/// template's 112×112 square it covers (anti-aliased edges, 2×2 samples a pixel).
pub fn draw_mask(image: &mut RgbImage, face: &Landmarks5, style: &MaskStyle) -> Result<f32, MaskError> {
    let template = CropSpec::arcface(112).template;
    let degenerate = || MaskError::Degenerate(*face);
    if !face.is_finite() {
        return Err(degenerate());
    }
    let to_image = Homography::fit_affine(&template.0, &face.0).ok_or_else(degenerate)?;
    let to_template = to_image.inverse().ok_or_else(degenerate)?;
    let outline = style.kind.outline();
    let (lo, hi) = bounds(outline.iter().map(|p| to_image.apply(*p)));
    let (w, h) = image.dimensions();
    let (x0, y0) = (lo[0].floor().max(0.0) as u32, lo[1].floor().max(0.0) as u32);
    let (x1, y1) = ((hi[0].ceil().max(0.0) as u32).min(w), (hi[1].ceil().max(0.0) as u32).min(h));
    let light = side_light(image, face);
    let mut covered_px = 0.0f32;
    for y in y0..y1 {
        for x in x0..x1 {
            let inside = [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
                .iter()
                .filter(|[dx, dy]| contains(outline, to_template.apply([x as f32 + dx, y as f32 + dy])))
                .count();
            if inside == 0 {
                continue;
            }
            let alpha = inside as f32 / 4.0;
            covered_px += alpha;
            let [tx, ty] = to_template.apply([x as f32 + 0.5, y as f32 + 0.5]);
            let shade = style.kind.pattern(tx, ty) * (light[0] + (light[1] - light[0]) * (tx / 112.0).clamp(0.0, 1.0));
            let px = image.get_pixel_mut(x, y);
            for (c, base) in px.0.iter_mut().zip(style.colour) {
                let fabric = (f32::from(base) * shade).clamp(0.0, 255.0);
                *c = (f32::from(*c) * (1.0 - alpha) + fabric * alpha).round() as u8;
            }
        }
    }
    // Template units² per image pixel² is 1/|det| of the affine part.
    let m = &to_image.0;
    let template_area = covered_px / (m[0][0] * m[1][1] - m[0][1] * m[1][0]).abs().max(1e-9) as f32;
    Ok(template_area / (112.0 * 112.0))
}

/// Smallest and largest coordinates of `points`.
fn bounds(points: impl Iterator<Item = [f32; 2]>) -> ([f32; 2], [f32; 2]) {
    points.fold(([f32::MAX; 2], [f32::MIN; 2]), |(lo, hi), p| ([lo[0].min(p[0]), lo[1].min(p[1])], [hi[0].max(p[0]), hi[1].max(p[1])]))
}

/// Even-odd point-in-polygon test.
fn contains(polygon: &[[f32; 2]], [x, y]: [f32; 2]) -> bool {
    let mut inside = false;
    let mut j = polygon.len() - 1;
    for i in 0..polygon.len() {
        let ([xi, yi], [xj, yj]) = (polygon[i], polygon[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// How brightly the face is lit on its image-left and image-right cheek, relative to a
/// mid-grey (so a mask in a dim photo is dim too), from the mean luminance of a patch below
/// each eye.
fn side_light(image: &RgbImage, face: &Landmarks5) -> [f32; 2] {
    let [le, re, nose, ..] = face.0;
    let radius = (face.inter_ocular() * 0.18).max(1.0);
    [le, re].map(|eye| {
        let centre = [(eye[0] + nose[0]) / 2.0, (eye[1] + nose[1]) / 2.0];
        let (mut sum, mut n) = (0.0f32, 0usize);
        let (w, h) = image.dimensions();
        let (ylo, yhi) = ((centre[1] - radius).max(0.0) as u32, ((centre[1] + radius).max(0.0) as u32).min(h));
        let (xlo, xhi) = ((centre[0] - radius).max(0.0) as u32, ((centre[0] + radius).max(0.0) as u32).min(w));
        for y in ylo..yhi {
            for x in xlo..xhi {
                let [r, g, b] = image.get_pixel(x, y).0.map(f32::from);
                sum += 0.299 * r + 0.587 * g + 0.114 * b;
                n += 1;
            }
        }
        if n == 0 { 1.0 } else { (sum / n as f32 / 150.0).clamp(0.35, 1.25) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faceunlock_core::geometry::Similarity;

    fn grey(size: u32) -> RgbImage {
        RgbImage::from_pixel(size, size, image::Rgb([150, 150, 150]))
    }

    #[test]
    fn every_kind_covers_mouth_and_nose_tip_but_not_the_eyes() {
        let face = CropSpec::arcface(112).template.transformed(&Similarity::about([56.0, 56.0], 0.0, 2.0));
        for kind in MaskKind::ALL {
            let mut img = grey(224);
            let covered = draw_mask(&mut img, &face, &MaskStyle { kind, colour: [200, 30, 30] }).unwrap();
            let red = |p: [f32; 2]| {
                let px = img.get_pixel(p[0] as u32, p[1] as u32);
                px[0] > px[1] + 60
            };
            let [le, re, nose, lm, rm] = face.0;
            assert!(red(lm) && red(rm), "{kind:?} leaves the mouth bare");
            assert!(!red(le) && !red(re), "{kind:?} covers an eye");
            // A scarf sits below the nose tip; every mask covers it.
            assert_eq!(red([nose[0], nose[1] - 4.0]), kind != MaskKind::Scarf, "{kind:?} at the nose");
            assert!(covered > 0.2 && covered < 0.75, "{kind:?} covers {covered}");
        }
    }

    #[test]
    fn the_mask_follows_a_rolled_shifted_face() {
        let base = CropSpec::arcface(112).template;
        let shift = Similarity { tx: 60.0, ty: 40.0, ..Similarity::IDENTITY };
        let upright = base.transformed(&shift.after(&Similarity::about([56.0, 56.0], 0.0, 1.5)));
        let turned = base.transformed(&shift.after(&Similarity::about([56.0, 56.0], 30.0, 1.5)));
        let style = MaskStyle { kind: MaskKind::Cloth, colour: [20, 20, 200] };
        let mut img = grey(300);
        let covered = draw_mask(&mut img, &turned, &style).unwrap();
        let blue = |p: [f32; 2]| {
            let px = img.get_pixel(p[0] as u32, p[1] as u32);
            px[2] > px[0] + 60
        };
        let [le, re, _, lm, rm] = turned.0;
        assert!(blue(lm) && blue(rm) && !blue(le) && !blue(re));
        // Coverage is measured in the template frame: the same whatever the roll and position.
        let reference = draw_mask(&mut grey(300), &upright, &style).unwrap();
        assert!((covered - reference).abs() < 0.01, "{covered} vs {reference}");
    }

    #[test]
    fn styles_are_stable_per_name_and_vary_across_names() {
        assert_eq!(MaskStyle::for_name("Aaron_Peirsol_0001.jpg", 3), MaskStyle::for_name("Aaron_Peirsol_0001.jpg", 3));
        let kinds: std::collections::HashSet<_> = (0..40).map(|i| format!("{:?}", MaskStyle::for_name(&format!("p{i}.jpg"), 3).kind)).collect();
        assert_eq!(kinds.len(), MaskKind::ALL.len());
    }

    #[test]
    fn collinear_or_non_finite_landmarks_are_refused() {
        let line = Landmarks5([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0], [40.0, 0.0]]);
        assert!(matches!(draw_mask(&mut grey(64), &line, &MaskStyle::random(0)), Err(MaskError::Degenerate(_))));
        let nan = Landmarks5([[f32::NAN, 0.0]; 5]);
        assert!(draw_mask(&mut grey(64), &nan, &MaskStyle::random(0)).is_err());
    }
}
