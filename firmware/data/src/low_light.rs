//! Low light, as a camera at night delivers it: a photo darkened by a gamma curve (the shadows
//! crushed, the highlights kept) with the sensor gain's noise on top. Used to evaluate and to
//! train the detector on dark frames, and by tests that need a dark photo.

use image::RgbImage;
use rand::Rng;

/// How a photo is darkened: every channel value `v` (0..1) becomes `v^gamma`, then gets
/// Gaussian noise of `noise` grey levels (0..255), as a dark frame's gain makes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Darkening {
    pub gamma: f32,
    pub noise: f32,
}

impl Darkening {
    /// The evaluation's night frame: gamma 2.5 (a mid-grey 128 becomes 46), noise σ 3 levels.
    pub const NIGHT: Self = Self { gamma: 2.5, noise: 3.0 };

    pub fn apply<R: Rng>(&self, image: &mut RgbImage, rng: &mut R) {
        let normal = rand_distr::Normal::new(0.0, self.noise.max(0.0)).expect("a finite, non-negative σ");
        let lut: Vec<f32> = (0..=255u8).map(|v| 255.0 * (v as f32 / 255.0).powf(self.gamma)).collect();
        for v in image.iter_mut() {
            *v = (lut[*v as usize] + rng.sample(normal)).round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// Light from one side: each pixel scaled by `1 − strength·t`, `t` running from 0 on the lit side
/// to 1 on the far side along the direction `degrees` (0: lit from the left).
pub fn light_from_side(image: &mut RgbImage, degrees: f32, strength: f32) {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let (sin, cos) = degrees.to_radians().sin_cos();
    // The projections of the four corners bound t's range.
    let corners = [[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]].map(|[x, y]: [f32; 2]| x * cos + y * sin);
    let (lo, hi) = corners.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = (hi - lo).max(1.0);
    for (x, y, px) in image.enumerate_pixels_mut() {
        let t = ((x as f32 + 0.5) * cos + (y as f32 + 0.5) * sin - lo) / span;
        let k = 1.0 - strength.clamp(0.0, 1.0) * t;
        px.0 = px.0.map(|v| (v as f32 * k).round() as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn night_darkening_without_noise_maps_mid_grey_to_46() {
        let mut img = RgbImage::from_pixel(2, 2, image::Rgb([128, 255, 0]));
        Darkening { noise: 0.0, ..Darkening::NIGHT }.apply(&mut img, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(img.get_pixel(1, 1).0, [46, 255, 0]);
    }

    #[test]
    fn darkening_noise_has_the_stated_spread() {
        let mut img = RgbImage::from_pixel(100, 100, image::Rgb([128, 128, 128]));
        Darkening::NIGHT.apply(&mut img, &mut ChaCha8Rng::seed_from_u64(1));
        let n = img.len() as f32;
        let mean = img.iter().map(|v| *v as f32).sum::<f32>() / n;
        let sd = (img.iter().map(|v| (*v as f32 - mean).powi(2)).sum::<f32>() / n).sqrt();
        assert!((mean - 45.5).abs() < 0.2 && (sd - 3.0).abs() < 0.2, "mean {mean}, sd {sd}");
    }

    #[test]
    fn side_light_keeps_the_lit_edge_and_darkens_the_far_one() {
        let mut img = RgbImage::from_pixel(100, 10, image::Rgb([200, 200, 200]));
        light_from_side(&mut img, 0.0, 0.75);
        assert_eq!(img.get_pixel(0, 5).0[0], 199);
        assert_eq!(img.get_pixel(99, 5).0[0], 51);
        assert_eq!(img.get_pixel(50, 0), img.get_pixel(50, 9));
    }
}
