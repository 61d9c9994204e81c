//! A second look at frames where the detector finds no face wide enough to follow, or only a
//! face larger than it learnt: the frame padded by a quarter of its size on each side (border
//! replicated) and detected again. A face that fills the frame (a user close to the camera, a
//! tight enrolment photo) is larger than any face the detector learnt, and its edges touch the
//! frame's; padded, it shrinks to a size the detector knows and gets a context around it. YuNet
//! given such photos with a padded border misses 2 % where it missed many more without (issue 27).
//!
//! Such a face is often not missed but boxed wrong (a box on part of the face), so a face found
//! wider than [`LARGE_FACE_FRACTION`] of the frame's shorter side also gets the second look; the
//! padded frame's faces replace the first ones when one of them is wide enough to follow.
//!
//! [`PadRetry`] wraps any [`FaceDetector`], so enrolment, verification, `embed` and the
//! evaluation all get the retry; faces found on the padded frame are reported in the original
//! frame's coordinates (their boxes may reach past its edges). A frame with a face of an ordinary
//! size costs one detection as before; a frame without one, or with a face that large, costs two
//! (`bench` measures both).

use crate::detect::{DetectError, Detection, FaceDetector, MAX_FACES};
use faceunlock_core::geometry::Landmarks5;
use image::RgbImage;

/// The border added on each side, as a fraction of the frame's width (left, right) and height
/// (top, bottom).
pub const PAD_FRACTION: f32 = 0.25;

/// A face wider than this share of the frame's shorter side is looked at again on the padded
/// frame, where it is two thirds as wide. The shipped detector learnt faces up to 160 px on a
/// 128-px input; on the firmware's 320×256 input a frame's shorter side is at most 256 px.
/// Chosen on the held-out faces-extra crops enlarged to 256×256 (`eval-detector
/// --large-face-fraction`): 0.4 finds 97.0 % of them, 0.5 90.0 %, none 85.9 % (docs/detector.md).
pub const LARGE_FACE_FRACTION: f32 = 0.4;

/// A detector that looks once more, padded, at a frame without a face to follow or with a face
/// wider than `large_face_fraction` of its shorter side.
pub struct PadRetry<D> {
    pub detector: D,
    /// A frame counts as without faces when none is at least this wide (frame pixels): the
    /// pipeline's `min_face_px`, below which it follows no face.
    pub min_face_px: f32,
    /// A frame whose widest face is wider than this share of the frame's shorter side is looked
    /// at again too ([`LARGE_FACE_FRACTION`] unless changed, e.g. to measure it).
    pub large_face_fraction: f32,
    /// The padded frame, reused across frames of the same size.
    padded: RgbImage,
    found: heapless::Vec<Detection, MAX_FACES>,
}

impl<D> PadRetry<D> {
    pub fn new(detector: D, min_face_px: f32) -> Self {
        Self { detector, min_face_px, large_face_fraction: LARGE_FACE_FRACTION, padded: RgbImage::new(0, 0), found: heapless::Vec::new() }
    }
}

impl<D: FaceDetector> FaceDetector for PadRetry<D> {
    fn detect(&mut self, frame: &RgbImage) -> Result<&[Detection], DetectError> {
        self.found.clear();
        let first = self.detector.detect(frame)?;
        let too_small = !first.iter().any(|f| f.face_box[2] >= self.min_face_px);
        let too_large = first.iter().any(|f| f.face_box[2] > self.large_face_fraction * frame.width().min(frame.height()) as f32);
        // Both hold at most MAX_FACES.
        let _ = self.found.extend_from_slice(first);
        if !too_small && !too_large {
            return Ok(&self.found);
        }
        let [dx, dy] = pad_replicated(frame, PAD_FRACTION, &mut self.padded);
        let (dx, dy) = (dx as f32, dy as f32);
        let retried = self.detector.detect(&self.padded)?;
        if too_small || retried.iter().any(|f| f.face_box[2] >= self.min_face_px) {
            self.found.clear();
            for face in retried {
                let [x, y, w, h] = face.face_box;
                let landmarks = Landmarks5(face.landmarks.0.map(|[lx, ly]| [lx - dx, ly - dy]));
                let _ = self.found.push(Detection { face_box: [x - dx, y - dy, w, h], landmarks, ..*face });
            }
        }
        Ok(&self.found)
    }
}

/// `frame` with a border of `fraction` of its width on the left and right and of its height on
/// top and bottom, each border pixel a copy of the nearest edge pixel, written into `out`
/// (reallocated only when the size changes). Returns the frame's offset `[x, y]` in `out`.
pub fn pad_replicated(frame: &RgbImage, fraction: f32, out: &mut RgbImage) -> [u32; 2] {
    let (w, h) = frame.dimensions();
    let (dx, dy) = ((w as f32 * fraction).round() as u32, (h as f32 * fraction).round() as u32);
    let (pw, ph) = (w + 2 * dx, h + 2 * dy);
    if out.dimensions() != (pw, ph) {
        *out = RgbImage::new(pw, ph);
    }
    if w == 0 || h == 0 {
        return [dx, dy];
    }
    let (src, row_bytes) = (frame.as_raw(), 3 * w as usize);
    let (left, right) = (3 * dx as usize, 3 * (dx + w) as usize);
    for (y, row) in out.chunks_exact_mut(3 * pw as usize).enumerate() {
        let sy = (y as i64 - dy as i64).clamp(0, h as i64 - 1) as usize;
        let line = &src[sy * row_bytes..(sy + 1) * row_bytes];
        row[left..right].copy_from_slice(line);
        for px in row[..left].chunks_exact_mut(3) {
            px.copy_from_slice(&line[..3]);
        }
        for px in row[right..].chunks_exact_mut(3) {
            px.copy_from_slice(&line[row_bytes - 3..]);
        }
    }
    [dx, dy]
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// Finds one face at a fixed place, but only in frames of a width in `widths`; counts calls.
    struct SomeWidths {
        widths: std::ops::Range<u32>,
        face: Detection,
        found: Vec<Detection>,
        calls: usize,
    }

    impl FaceDetector for SomeWidths {
        fn detect(&mut self, frame: &RgbImage) -> Result<&[Detection], DetectError> {
            self.calls += 1;
            self.found = if self.widths.contains(&frame.width()) { vec![self.face] } else { vec![] };
            Ok(&self.found)
        }
    }

    fn face_at(x: f32, y: f32) -> Detection {
        Detection { face_box: [x, y, 40.0, 50.0], score: 0.9, landmarks: Landmarks5([[x + 10.0, y + 20.0]; 5]) }
    }

    #[test]
    fn the_border_replicates_the_nearest_edge_pixel() {
        let frame = RgbImage::from_fn(4, 2, |x, y| Rgb([x as u8, y as u8, 7]));
        let mut out = RgbImage::new(0, 0);
        assert_eq!(pad_replicated(&frame, 0.25, &mut out), [1, 1]);
        assert_eq!(out.dimensions(), (6, 4));
        assert_eq!(out.get_pixel(0, 0), &Rgb([0, 0, 7]));
        assert_eq!(out.get_pixel(5, 3), &Rgb([3, 1, 7]));
        assert_eq!(out.get_pixel(3, 2), frame.get_pixel(2, 1));
        assert_eq!(out.get_pixel(2, 0), frame.get_pixel(1, 0));
    }

    #[test]
    fn a_face_found_only_on_the_padded_frame_is_reported_in_the_frames_coordinates() {
        let mut det = PadRetry::new(SomeWidths { widths: 150..u32::MAX, face: face_at(60.0, 40.0), found: vec![], calls: 0 }, 0.0);
        let found = det.detect(&RgbImage::new(100, 80)).unwrap().to_vec();
        assert_eq!(det.detector.calls, 2);
        // The 100×80 frame sits at (25, 20) in the padded 150×120 one.
        assert_eq!(found, vec![Detection { face_box: [35.0, 20.0, 40.0, 50.0], score: 0.9, landmarks: Landmarks5([[45.0, 40.0]; 5]) }]);
    }

    #[test]
    fn a_frame_with_a_face_is_detected_once() {
        let mut det = PadRetry::new(SomeWidths { widths: 0..u32::MAX, face: face_at(10.0, 10.0), found: vec![], calls: 0 }, 40.0);
        assert_eq!(det.detect(&RgbImage::new(200, 160)).unwrap(), &[face_at(10.0, 10.0)]);
        assert_eq!(det.detector.calls, 1);
    }

    #[test]
    fn a_frame_with_only_faces_too_small_to_follow_is_retried() {
        let mut det = PadRetry::new(SomeWidths { widths: 0..u32::MAX, face: face_at(10.0, 10.0), found: vec![], calls: 0 }, 41.0);
        assert_eq!(det.detect(&RgbImage::new(100, 80)).unwrap().len(), 1);
        assert_eq!(det.detector.calls, 2);
    }

    #[test]
    fn a_face_filling_the_frame_is_replaced_by_the_padded_frames_face() {
        // The 40-px face at (10, 10) fills two thirds of a 60×70 frame; the padded 90×106
        // frame (offset 15, 18) finds it again and that answer is kept.
        let mut det = PadRetry::new(SomeWidths { widths: 0..u32::MAX, face: face_at(10.0, 10.0), found: vec![], calls: 0 }, 20.0);
        let found = det.detect(&RgbImage::new(60, 70)).unwrap().to_vec();
        assert_eq!(det.detector.calls, 2);
        assert_eq!(found, vec![face_at(-5.0, -8.0)]);
    }

    #[test]
    fn a_large_face_is_kept_when_the_padded_frame_finds_none() {
        let mut det = PadRetry::new(SomeWidths { widths: 0..61, face: face_at(10.0, 10.0), found: vec![], calls: 0 }, 20.0);
        assert_eq!(det.detect(&RgbImage::new(60, 70)).unwrap(), &[face_at(10.0, 10.0)]);
        assert_eq!(det.detector.calls, 2);
    }

    #[test]
    fn a_frame_without_a_face_even_padded_yields_none_after_one_retry() {
        let mut det = PadRetry::new(SomeWidths { widths: 1000..u32::MAX, face: face_at(0.0, 0.0), found: vec![], calls: 0 }, 0.0);
        assert!(det.detect(&RgbImage::new(100, 80)).unwrap().is_empty());
        assert_eq!(det.detector.calls, 2);
    }
}
