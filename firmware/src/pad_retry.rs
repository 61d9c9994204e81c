//! A second look at frames where the detector finds no face wide enough to follow: the frame padded by a quarter of its
//! size on each side (border replicated) and detected again. A face that fills the frame (a user
//! close to the camera, a tight enrolment photo) is larger than any face the detector learnt, and
//! its edges touch the frame's; padded, it shrinks to a size the detector knows and gets a
//! context around it. YuNet given such photos with a padded border misses 2 % where it missed
//! many more without (issue 27).
//!
//! [`PadRetry`] wraps any [`FaceDetector`], so enrolment, verification, `embed` and the
//! evaluation all get the retry; faces found on the padded frame are reported in the original
//! frame's coordinates (their boxes may reach past its edges). A frame with a face costs one
//! detection as before; a frame without one costs two (`bench` measures both).

use crate::detect::{DetectError, Detection, FaceDetector, MAX_FACES};
use faceunlock_core::geometry::Landmarks5;
use image::RgbImage;

/// The border added on each side, as a fraction of the frame's width (left, right) and height
/// (top, bottom).
pub const PAD_FRACTION: f32 = 0.25;

/// A detector that retries a frame without faces once, padded.
pub struct PadRetry<D> {
    pub detector: D,
    /// A frame counts as without faces when none is at least this wide (frame pixels): the
    /// pipeline's `min_face_px`, below which it follows no face.
    pub min_face_px: f32,
    /// The padded frame, reused across frames of the same size.
    padded: RgbImage,
    found: heapless::Vec<Detection, MAX_FACES>,
}

impl<D> PadRetry<D> {
    pub fn new(detector: D, min_face_px: f32) -> Self {
        Self { detector, min_face_px, padded: RgbImage::new(0, 0), found: heapless::Vec::new() }
    }
}

impl<D: FaceDetector> FaceDetector for PadRetry<D> {
    fn detect(&mut self, frame: &RgbImage) -> Result<&[Detection], DetectError> {
        self.found.clear();
        let first = self.detector.detect(frame)?;
        if first.iter().any(|f| f.face_box[2] >= self.min_face_px) {
            // Both hold at most MAX_FACES.
            let _ = self.found.extend_from_slice(first);
            return Ok(&self.found);
        }
        let [dx, dy] = pad_replicated(frame, PAD_FRACTION, &mut self.padded);
        let (dx, dy) = (dx as f32, dy as f32);
        for face in self.detector.detect(&self.padded)? {
            let [x, y, w, h] = face.face_box;
            let landmarks = Landmarks5(face.landmarks.0.map(|[lx, ly]| [lx - dx, ly - dy]));
            let _ = self.found.push(Detection { face_box: [x - dx, y - dy, w, h], landmarks, ..*face });
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

    /// Finds one face at a fixed place, but only in frames at least `min_width` wide; counts calls.
    struct WideOnly {
        min_width: u32,
        face: Detection,
        found: Vec<Detection>,
        calls: usize,
    }

    impl FaceDetector for WideOnly {
        fn detect(&mut self, frame: &RgbImage) -> Result<&[Detection], DetectError> {
            self.calls += 1;
            self.found = if frame.width() >= self.min_width { vec![self.face] } else { vec![] };
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
        let mut det = PadRetry::new(WideOnly { min_width: 150, face: face_at(60.0, 40.0), found: vec![], calls: 0 }, 0.0);
        let found = det.detect(&RgbImage::new(100, 80)).unwrap().to_vec();
        assert_eq!(det.detector.calls, 2);
        // The 100×80 frame sits at (25, 20) in the padded 150×120 one.
        assert_eq!(found, vec![Detection { face_box: [35.0, 20.0, 40.0, 50.0], score: 0.9, landmarks: Landmarks5([[45.0, 40.0]; 5]) }]);
    }

    #[test]
    fn a_frame_with_a_face_is_detected_once() {
        let mut det = PadRetry::new(WideOnly { min_width: 0, face: face_at(10.0, 10.0), found: vec![], calls: 0 }, 40.0);
        assert_eq!(det.detect(&RgbImage::new(100, 80)).unwrap(), &[face_at(10.0, 10.0)]);
        assert_eq!(det.detector.calls, 1);
    }

    #[test]
    fn a_frame_with_only_faces_too_small_to_follow_is_retried() {
        let mut det = PadRetry::new(WideOnly { min_width: 0, face: face_at(10.0, 10.0), found: vec![], calls: 0 }, 41.0);
        assert_eq!(det.detect(&RgbImage::new(100, 80)).unwrap().len(), 1);
        assert_eq!(det.detector.calls, 2);
    }

    #[test]
    fn a_frame_without_a_face_even_padded_yields_none_after_one_retry() {
        let mut det = PadRetry::new(WideOnly { min_width: 1000, face: face_at(0.0, 0.0), found: vec![], calls: 0 }, 0.0);
        assert!(det.detect(&RgbImage::new(100, 80)).unwrap().is_empty());
        assert_eq!(det.detector.calls, 2);
    }
}
