//! Warping a frame to the canonical crop: the inverse similarity maps every crop pixel back into
//! the frame, which is sampled bilinearly (pixels outside the frame read as black).

use crate::geometry::{CropSpec, Landmarks5, Similarity};
use image::{GrayImage, RgbImage};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AlignError {
    #[error("landmarks {0:?} are not finite or coincide: expected five distinct face points")]
    DegenerateLandmarks(Landmarks5),
}

/// Reusable aligner: owns its output buffer, so aligning a stream of frames allocates nothing
/// after the first call.
pub struct Aligner {
    spec: CropSpec,
    crop: RgbImage,
}

impl Aligner {
    pub fn new(spec: CropSpec) -> Self {
        Self { spec, crop: RgbImage::new(spec.size, spec.size) }
    }

    pub fn spec(&self) -> &CropSpec {
        &self.spec
    }

    /// The most recent crop.
    pub fn crop(&self) -> &RgbImage {
        &self.crop
    }

    /// The transform taking frame coordinates to crop coordinates for these landmarks.
    pub fn frame_to_crop(&self, marks: &Landmarks5) -> Result<Similarity, AlignError> {
        if !marks.is_finite() {
            return Err(AlignError::DegenerateLandmarks(*marks));
        }
        Similarity::estimate(marks, &self.spec.template).ok_or(AlignError::DegenerateLandmarks(*marks))
    }

    /// Align `frame` so that `marks` land on the template; returns the crop (borrowed buffer).
    pub fn align(&mut self, frame: &RgbImage, marks: &Landmarks5) -> Result<&RgbImage, AlignError> {
        let to_frame = self.crop_to_frame(marks, &Similarity::IDENTITY)?;
        Ok(self.warp(frame, &to_frame))
    }

    /// The crop whose pixels `to_frame` maps into `frame`: for a caller that needs the map too
    /// ([`Aligner::crop_to_frame`], with a training jitter or to map crop outputs back) without
    /// estimating it twice.
    pub fn warp(&mut self, frame: &RgbImage, to_frame: &Similarity) -> &RgbImage {
        warp_into(frame, to_frame, &mut self.crop);
        &self.crop
    }

    /// The map from crop pixels back to frame pixels, the crop moved by `jitter` in crop
    /// coordinates first (training augmentation; [`Similarity::IDENTITY`] for none).
    pub fn crop_to_frame(&self, marks: &Landmarks5, jitter: &Similarity) -> Result<Similarity, AlignError> {
        jitter.after(&self.frame_to_crop(marks)?).inverse().ok_or(AlignError::DegenerateLandmarks(*marks))
    }
}

/// Nearest-neighbour warp of a label image (class indices): labels are never blended. Pixels
/// that fall outside `src` get `outside`.
pub fn warp_labels_into(src: &GrayImage, to_src: &Similarity, outside: u8, out: &mut GrayImage) {
    let (w, h) = (src.width() as i64, src.height() as i64);
    for (ox, oy, px) in out.enumerate_pixels_mut() {
        let [sx, sy] = to_src.apply([ox as f32, oy as f32]);
        let (x, y) = (sx.round() as i64, sy.round() as i64);
        px.0[0] = if x < 0 || y < 0 || x >= w || y >= h { outside } else { src.get_pixel(x as u32, y as u32).0[0] };
    }
}

/// Fill `out` by sampling `src` at `to_src(x, y)` for each output pixel centre.
pub fn warp_into(src: &RgbImage, to_src: &Similarity, out: &mut RgbImage) {
    let (w, h) = (src.width() as i64, src.height() as i64);
    let raw = src.as_raw();
    let fetch = |x: i64, y: i64| -> [f32; 3] {
        if x < 0 || y < 0 || x >= w || y >= h {
            return [0.0; 3];
        }
        let i = ((y * w + x) * 3) as usize;
        [raw[i] as f32, raw[i + 1] as f32, raw[i + 2] as f32]
    };
    for (ox, oy, px) in out.enumerate_pixels_mut() {
        let [sx, sy] = to_src.apply([ox as f32, oy as f32]);
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let (p00, p10, p01, p11) = (fetch(x0, y0), fetch(x0 + 1, y0), fetch(x0, y0 + 1), fetch(x0 + 1, y0 + 1));
        for c in 0..3 {
            let top = p00[c] + (p10[c] - p00[c]) * fx;
            let bottom = p01[c] + (p11[c] - p01[c]) * fx;
            px.0[c] = (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligning_the_template_itself_is_the_identity() {
        let spec = CropSpec::default();
        let frame = RgbImage::from_fn(128, 128, |x, y| image::Rgb([x as u8, y as u8, (x ^ y) as u8]));
        let mut aligner = Aligner::new(spec);
        let crop = aligner.align(&frame, &spec.template).unwrap();
        assert_eq!(crop, &frame);
    }

    #[test]
    fn a_scaled_and_shifted_face_is_brought_back_to_the_template() {
        let spec = CropSpec::default();
        // A frame twice the size where the face sits shifted by (40, 30): the crop must match the
        // frame content downsampled around that face.
        let frame = RgbImage::from_fn(400, 400, |x, y| image::Rgb([(x / 2) as u8, (y / 2) as u8, 0]));
        let truth = Similarity { a: 2.0, b: 0.0, tx: 40.0, ty: 30.0 };
        let marks = spec.template.transformed(&truth);
        let mut aligner = Aligner::new(spec);
        let crop = aligner.align(&frame, &marks).unwrap();
        let px = crop.get_pixel(10, 20);
        assert_eq!(px.0, [((10 * 2 + 40) / 2) as u8, ((20 * 2 + 30) / 2) as u8, 0]);
    }

    #[test]
    fn nan_landmarks_are_an_error_not_a_panic() {
        let mut aligner = Aligner::new(CropSpec::default());
        let frame = RgbImage::new(10, 10);
        let bad = Landmarks5([[f32::NAN, 0.0]; 5]);
        assert!(matches!(aligner.align(&frame, &bad), Err(AlignError::DegenerateLandmarks(_))));
    }
}
