//! Training targets of the detector: which cells of which level answer for a face, and what
//! they must regress (through [`faceunlock_core::grid::encode`], the inverse of the decoder the
//! firmware runs).

use faceunlock_core::grid::{GridFace, STRIDES, encode};

/// Face sizes (√(w·h), input pixels) each level answers for, finest first. Neighbouring ranges
/// overlap so a face near a boundary is found by both; non-maximum suppression keeps one.
pub const LEVEL_RANGES: [[f32; 2]; 3] = [[12.0, 72.0], [48.0, 144.0], [96.0, 1024.0]];

/// Channels of the per-cell targets, in order: face (1), weight (1), box (4), landmarks (10).
pub const CHANNELS: usize = 16;

/// Cells of all three levels of a `[width, height]` input, finest first.
pub fn cell_count(size: [usize; 2]) -> usize {
    STRIDES.iter().map(|s| (size[0] / s) * (size[1] / s)).sum()
}

/// Targets of one image, channel-major: `[CHANNELS, cells]`, cells in level order then row-major,
/// the layout of the network's outputs flattened and concatenated.
pub fn build(size: [usize; 2], faces: &[GridFace]) -> Vec<f32> {
    let cells = cell_count(size);
    let mut t = vec![0.0f32; CHANNELS * cells];
    t[cells..2 * cells].fill(1.0);
    // Per cell, the distance (in strides) to the centre of the face that claimed it.
    let mut claim = vec![f32::INFINITY; cells];
    let mut base = 0;
    for (level, &stride) in STRIDES.iter().enumerate() {
        let (cols, rows) = (size[0] / stride, size[1] / stride);
        let [lo, hi] = LEVEL_RANGES[level];
        for face in faces {
            let [x, y, w, h] = face.face_box;
            let s = (w * h).max(0.0).sqrt();
            let (cx, cy) = (x + w / 2.0, y + h / 2.0);
            let assigned = s >= lo && s <= hi;
            let near = s >= lo / 1.5 && s <= hi * 1.5;
            let radius = (0.6 * stride as f32).max(0.12 * s);
            let nearest = ((cx / stride as f32).round(), (cy / stride as f32).round());
            for row in 0..rows {
                for col in 0..cols {
                    let (gx, gy) = ((col * stride) as f32, (row * stride) as f32);
                    let (dx, dy) = (gx - cx, gy - cy);
                    let i = base + row * cols + col;
                    let central = dx.abs() <= radius && dy.abs() <= radius || (col as f32, row as f32) == nearest;
                    if assigned && central {
                        let d = dx.hypot(dy) / stride as f32;
                        if d < claim[i] {
                            claim[i] = d;
                            let (bbox, kps) = encode(col, row, stride, face);
                            t[i] = 1.0;
                            t[cells + i] = 1.0;
                            bbox.iter().chain(&kps).enumerate().for_each(|(c, v)| t[(2 + c) * cells + i] = *v);
                        }
                    } else if t[i] == 0.0 && near && dx.abs() <= w / 4.0 && dy.abs() <= h / 4.0 {
                        // The middle of a face this level is not sure about: neither face nor background.
                        t[cells + i] = 0.0;
                    }
                }
            }
        }
        base += cols * rows;
    }
    t
}

/// Targets of one image from a teacher's raw outputs on it ([`faceunlock::detect::YuNet::maps`],
/// finest level first): the face channel is the teacher's probability at each cell, every cell
/// counts, and the box and landmark channels are the teacher's regressions (weighted in the loss
/// by the square of that probability).
pub fn from_maps(size: [usize; 2], levels: &[faceunlock::detect::LevelMaps]) -> Vec<f32> {
    let cells = cell_count(size);
    assert_eq!(levels.iter().map(|l| l.score.len()).sum::<usize>(), cells, "the teacher's cells are the student's");
    let mut t = vec![0.0f32; CHANNELS * cells];
    t[cells..2 * cells].fill(1.0);
    let mut base = 0;
    for (level, stride) in levels.iter().zip(STRIDES) {
        assert_eq!(level.stride, stride, "the teacher's levels, finest first");
        for (i, &q) in level.score.iter().enumerate() {
            let cell = base + i;
            t[cell] = q;
            let regressions = level.bbox[4 * i..4 * i + 4].iter().chain(&level.kps[10 * i..10 * i + 10]);
            regressions.enumerate().for_each(|(c, v)| t[(2 + c) * cells + cell] = *v);
        }
        base += level.score.len();
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use faceunlock_core::geometry::Landmarks5;
    use faceunlock_core::grid::decode;

    fn face(x: f32, y: f32, side: f32) -> GridFace {
        let p = |u: f32, v: f32| [x + u * side, y + v * side];
        GridFace { face_box: [x, y, side, side], landmarks: Landmarks5([p(0.3, 0.4), p(0.7, 0.4), p(0.5, 0.6), p(0.35, 0.8), p(0.65, 0.8)]) }
    }

    /// Positive cells per level, and whether every one decodes back to the face.
    fn positives(size: [usize; 2], t: &[f32], f: &GridFace) -> Vec<usize> {
        let cells = cell_count(size);
        let mut base = 0;
        let mut counts = Vec::new();
        for &stride in &STRIDES {
            let cols = size[0] / stride;
            let n = cols * (size[1] / stride);
            let mut count = 0;
            for i in base..base + n {
                if t[i] == 1.0 {
                    count += 1;
                    let bbox: Vec<f32> = (0..4).map(|c| t[(2 + c) * cells + i]).collect();
                    let kps: Vec<f32> = (0..10).map(|c| t[(6 + c) * cells + i]).collect();
                    let back = decode((i - base) % cols, (i - base) / cols, stride, &bbox, &kps);
                    assert!(back.face_box.iter().zip(f.face_box).all(|(a, b)| (a - b).abs() < 1e-3));
                }
            }
            counts.push(count);
            base += n;
        }
        counts
    }

    #[test]
    fn each_face_size_is_claimed_by_its_level_and_decodes_back() {
        let size = [160, 128];
        for (f, expect_levels) in [(face(20.0, 30.0, 30.0), [true, false, false]), (face(40.0, 10.0, 100.0), [false, true, true]), (face(0.0, 0.0, 150.0), [false, false, true])] {
            let t = build(size, &[f]);
            let counts = positives(size, &t, &f);
            for (level, (n, expected)) in counts.iter().zip(expect_levels).enumerate() {
                assert_eq!(*n > 0, expected, "face {:?}: level {level} has {n} positive cells", f.face_box);
                assert!(*n <= 16, "face {:?}: {n} positives at level {level}", f.face_box);
            }
        }
    }

    #[test]
    fn background_is_negative_and_a_face_centre_near_a_level_s_range_is_ignored_there() {
        let size = [128, 128];
        let cells = cell_count(size);
        let base32 = 16 * 16 + 8 * 8;
        let centre32 = base32 + 2 * 4 + 2;
        // 80 px: stride 16's face, near stride 32's range: its centre cell (64, 64) there is
        // neither face nor background.
        let t = build(size, &[face(24.0, 24.0, 80.0)]);
        assert_eq!((t[0], t[cells]), (0.0, 1.0), "the corner cell is background");
        assert_eq!((t[centre32], t[cells + centre32]), (0.0, 0.0));
        // 40 px is far from stride 32's range: its centre there is background.
        let t = build(size, &[face(44.0, 44.0, 40.0)]);
        assert_eq!((t[centre32], t[cells + centre32]), (0.0, 1.0));
        assert!(build(size, &[]).iter().take(cells).all(|v| *v == 0.0));
    }
}
