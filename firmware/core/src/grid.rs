//! The YuNet output grid: how one cell of a stride-`s` feature map encodes a face box and its five
//! landmarks. The firmware decodes detector outputs with [`decode`]; the trainer builds its
//! regression targets with [`encode`], so the two cannot drift apart.
//!
//! A cell at `(col, row)` is anchored at the point `(col·s, row·s)` of the network input. Its box
//! regression `[dx, dy, lw, lh]` gives the centre `((col + dx)·s, (row + dy)·s)` and the size
//! `(e^lw·s, e^lh·s)`; landmark `j` is `((col + kx_j)·s, (row + ky_j)·s)`.

use crate::geometry::Landmarks5;

/// Strides of the three output levels, finest first (outputs `cls_8`, `obj_8`, `bbox_8`, …).
pub const STRIDES: [usize; 3] = [8, 16, 32];

/// What a detector reports per cell: a face box `[x, y, w, h]` and five landmarks, input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridFace {
    pub face_box: [f32; 4],
    pub landmarks: Landmarks5,
}

/// The face encoded by cell `(col, row)` of a stride-`stride` level.
pub fn decode(col: usize, row: usize, stride: usize, bbox: &[f32], kps: &[f32]) -> GridFace {
    let (c, r, s) = (col as f32, row as f32, stride as f32);
    let (cx, cy) = ((c + bbox[0]) * s, (r + bbox[1]) * s);
    let (w, h) = (bbox[2].exp() * s, bbox[3].exp() * s);
    let marks = std::array::from_fn(|j| [(c + kps[2 * j]) * s, (r + kps[2 * j + 1]) * s]);
    GridFace { face_box: [cx - w / 2.0, cy - h / 2.0, w, h], landmarks: Landmarks5(marks) }
}

/// The regression targets `(bbox, kps)` that make cell `(col, row)` decode to `face`.
pub fn encode(col: usize, row: usize, stride: usize, face: &GridFace) -> ([f32; 4], [f32; 10]) {
    let (c, r, s) = (col as f32, row as f32, stride as f32);
    let [x, y, w, h] = face.face_box;
    let bbox = [(x + w / 2.0) / s - c, (y + h / 2.0) / s - r, (w / s).max(1e-3).ln(), (h / s).max(1e-3).ln()];
    let mut kps = [0.0; 10];
    for (j, [px, py]) in face.landmarks.0.iter().enumerate() {
        kps[2 * j] = px / s - c;
        kps[2 * j + 1] = py / s - r;
    }
    (bbox, kps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_then_decoding_gives_the_face_back_at_every_stride() {
        let face = GridFace {
            face_box: [40.0, 52.0, 70.0, 90.0],
            landmarks: Landmarks5([[58.0, 80.0], [92.0, 81.0], [75.0, 100.0], [62.0, 118.0], [88.0, 119.0]]),
        };
        for (stride, col, row) in [(8, 9, 12), (16, 4, 6), (32, 2, 3)] {
            let (bbox, kps) = encode(col, row, stride, &face);
            let back = decode(col, row, stride, &bbox, &kps);
            for (a, b) in back.face_box.iter().zip(face.face_box) {
                assert!((a - b).abs() < 1e-3, "stride {stride}: box {:?} vs {:?}", back.face_box, face.face_box);
            }
            for (a, b) in back.landmarks.0.iter().flatten().zip(face.landmarks.0.iter().flatten()) {
                assert!((a - b).abs() < 1e-3, "stride {stride}: landmarks");
            }
        }
    }

    #[test]
    fn a_cell_at_the_face_centre_has_zero_offsets_and_log_size() {
        let face = GridFace { face_box: [16.0, 16.0, 32.0, 32.0], landmarks: Landmarks5([[32.0, 32.0]; 5]) };
        let (bbox, kps) = encode(2, 2, 16, &face);
        assert_eq!(bbox, [0.0, 0.0, 2f32.ln(), 2f32.ln()]);
        assert_eq!(kps, [0.0; 10]);
    }
}
