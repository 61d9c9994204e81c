//! Pixel normalisation: how an aligned RGB crop becomes the f32 NCHW tensor an embedder eats.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// `value = (pixel / 255 - mean[c]) / std[c]`, channels in RGB order, laid out channel-major.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// The ImageNet statistics our MobileNetV2 encoder was pretrained with.
    pub const IMAGENET: Self = Self { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

    /// Write `crop` as CHW floats into `out` (length `3·w·h`), allocating nothing.
    pub fn write_chw(&self, crop: &RgbImage, out: &mut [f32]) {
        let plane = (crop.width() * crop.height()) as usize;
        assert_eq!(out.len(), 3 * plane, "output buffer must hold 3×{plane} floats");
        let scale = self.std.map(|s| 1.0 / (255.0 * s));
        let offset = [0, 1, 2].map(|c| self.mean[c] / self.std[c]);
        for (i, px) in crop.as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = px[c] as f32 * scale[c] - offset[c];
            }
        }
    }

    /// Convenience: a fresh CHW vector.
    pub fn to_chw(&self, crop: &RgbImage) -> Vec<f32> {
        let mut out = vec![0.0; 3 * (crop.width() * crop.height()) as usize];
        self.write_chw(crop, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_colour_maps_to_zero_and_layout_is_channel_major() {
        let n = Normalization::IMAGENET;
        let mean_px = n.mean.map(|m| (m * 255.0).round() as u8);
        let crop = RgbImage::from_fn(2, 1, |x, _| if x == 0 { image::Rgb(mean_px) } else { image::Rgb([255, 0, 0]) });
        let v = n.to_chw(&crop);
        for c in 0..3 {
            assert!(v[c * 2].abs() < 0.01, "channel {c}: {}", v[c * 2]);
        }
        assert!((v[1] - (1.0 - 0.485) / 0.229).abs() < 1e-5);
        assert!((v[3] - (0.0 - 0.456) / 0.224).abs() < 1e-5);
    }
}
