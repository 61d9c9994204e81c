//! Frame quality gates: a face too dark, too bright or too blurred is skipped (and counted)
//! rather than matched.

use image::RgbImage;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    /// Mean luma, 0..255.
    pub brightness: f32,
    /// Variance of the 4-neighbour Laplacian of the luma.
    pub sharpness: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    TooDark,
    TooBright,
    Blurred,
}

/// Measure an aligned crop.
pub fn measure(crop: &RgbImage) -> Quality {
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    let raw = crop.as_raw();
    let luma = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        0.299 * raw[i] as f32 + 0.587 * raw[i + 1] as f32 + 0.114 * raw[i + 2] as f32
    };
    let mut sum = 0.0f64;
    for y in 0..h {
        for x in 0..w {
            sum += luma(x, y) as f64;
        }
    }
    let (mut s, mut s2, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let l = (luma(x - 1, y) + luma(x + 1, y) + luma(x, y - 1) + luma(x, y + 1) - 4.0 * luma(x, y)) as f64;
            s += l;
            s2 += l * l;
            n += 1.0;
        }
    }
    let var = if n > 0.0 { s2 / n - (s / n).powi(2) } else { 0.0 };
    Quality { brightness: (sum / (w * h).max(1) as f64) as f32, sharpness: var as f32 }
}

impl Quality {
    pub fn check(&self, cfg: &crate::config::DecisionConfig) -> Option<Rejection> {
        if self.brightness < cfg.min_brightness {
            Some(Rejection::TooDark)
        } else if self.brightness > cfg.max_brightness {
            Some(Rejection::TooBright)
        } else if self.sharpness < cfg.min_sharpness {
            Some(Rejection::Blurred)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DecisionConfig;

    #[test]
    fn flat_dark_and_textured_crops_are_told_apart() {
        let cfg = DecisionConfig::default();
        let dark = RgbImage::from_pixel(32, 32, image::Rgb([10, 10, 10]));
        assert_eq!(measure(&dark).check(&cfg), Some(Rejection::TooDark));
        let flat = RgbImage::from_pixel(32, 32, image::Rgb([128, 128, 128]));
        assert_eq!(measure(&flat).check(&cfg), Some(Rejection::Blurred));
        let checker = RgbImage::from_fn(32, 32, |x, y| if (x + y) % 2 == 0 { image::Rgb([60, 60, 60]) } else { image::Rgb([190, 190, 190]) });
        assert_eq!(measure(&checker).check(&cfg), None);
    }
}
