//! Crop geometry: the five facial landmarks, the canonical template they are mapped to, and the
//! least-squares similarity transform between the two.

use serde::{Deserialize, Serialize};

/// Side of the square face crop every embedder of ours consumes.
pub const CROP_SIZE: u32 = 128;

/// The ArcFace 112×112 reference points (left eye, right eye, nose tip, left and right mouth
/// corner), the de-facto standard that YuNet-style detectors' landmarks are aligned to.
const ARCFACE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// Five landmarks in pixel coordinates: left eye, right eye, nose tip, left mouth corner, right
/// mouth corner. "Left" is the subject's left *as seen in the image* (smaller x in a frontal view).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Landmarks5(pub [[f32; 2]; 5]);

impl Landmarks5 {
    pub fn new(points: [[f32; 2]; 5]) -> Self {
        Self(points)
    }

    /// Distance between the two eye centres, the unit landmark errors are reported in.
    pub fn inter_ocular(&self) -> f32 {
        let [l, r, ..] = self.0;
        ((l[0] - r[0]).powi(2) + (l[1] - r[1]).powi(2)).sqrt()
    }

    /// Landmarks of the horizontally mirrored image of width `width`: x is reflected and the
    /// left/right pairs swap, so "left eye" stays the eye with the smaller x.
    pub fn mirrored(&self, width: f32) -> Self {
        let m = |p: [f32; 2]| [width - 1.0 - p[0], p[1]];
        let [le, re, nose, lm, rm] = self.0;
        Self([m(re), m(le), m(nose), m(rm), m(lm)])
    }

    /// Apply a transform to every point.
    pub fn transformed(&self, t: &Similarity) -> Self {
        Self(self.0.map(|p| t.apply(p)))
    }

    /// Normalised mean error against `reference`: the mean distance between corresponding
    /// points, as a fraction of the reference's inter-ocular distance (at least 1 pixel).
    pub fn nme(&self, reference: &Landmarks5) -> f64 {
        let mean = self.0.iter().zip(&reference.0).map(|(a, b)| ((a[0] - b[0]) as f64).hypot((a[1] - b[1]) as f64)).sum::<f64>() / 5.0;
        mean / reference.inter_ocular().max(1.0) as f64
    }

    pub fn is_finite(&self) -> bool {
        self.0.iter().flatten().all(|v| v.is_finite())
    }
}

/// The canonical crop: its size and where the five landmarks land in it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CropSpec {
    pub size: u32,
    pub template: Landmarks5,
}

impl Default for CropSpec {
    fn default() -> Self {
        Self::arcface(CROP_SIZE)
    }
}

impl CropSpec {
    /// The ArcFace template scaled to a `size`×`size` crop.
    pub fn arcface(size: u32) -> Self {
        let s = size as f32 / 112.0;
        Self { size, template: Landmarks5(ARCFACE_112.map(|[x, y]| [x * s, y * s])) }
    }
}

/// `p' = [a -b; b a]·p + [tx, ty]`: rotation, uniform scale and translation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    pub const IDENTITY: Self = Self { a: 1.0, b: 0.0, tx: 0.0, ty: 0.0 };

    pub fn apply(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [self.a * x - self.b * y + self.tx, self.b * x + self.a * y + self.ty]
    }

    /// `self` after `first`: `x ↦ self(first(x))`.
    pub fn after(&self, first: &Similarity) -> Self {
        let [tx, ty] = self.apply([first.tx, first.ty]);
        Self { a: self.a * first.a - self.b * first.b, b: self.b * first.a + self.a * first.b, tx, ty }
    }

    /// Rotation by `degrees` and scaling by `scale` about the point `centre`.
    pub fn about(centre: [f32; 2], degrees: f32, scale: f32) -> Self {
        let (s, c) = degrees.to_radians().sin_cos();
        let (a, b) = (scale * c, scale * s);
        Self { a, b, tx: centre[0] - (a * centre[0] - b * centre[1]), ty: centre[1] - (b * centre[0] + a * centre[1]) }
    }

    pub fn scale(&self) -> f32 {
        (self.a * self.a + self.b * self.b).sqrt()
    }

    /// The inverse map, `None` when the transform is degenerate (zero scale).
    pub fn inverse(&self) -> Option<Self> {
        let det = self.a * self.a + self.b * self.b;
        if det.is_nan() || det <= 1e-12 {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        Some(Self { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) })
    }

    /// Least-squares similarity mapping `from` onto `to` (Umeyama, 2-D, without reflection).
    /// `None` when the source points are (nearly) coincident.
    pub fn estimate(from: &Landmarks5, to: &Landmarks5) -> Option<Self> {
        Self::fit(&from.0, &to.0)
    }

    /// [`Similarity::estimate`] for any number of point pairs.
    pub fn fit(from: &[[f32; 2]], to: &[[f32; 2]]) -> Option<Self> {
        if from.len() != to.len() || from.is_empty() {
            return None;
        }
        let n = from.len() as f32;
        let mean = |ps: &[[f32; 2]]| {
            let s = ps.iter().fold([0.0f32; 2], |acc, p| [acc[0] + p[0], acc[1] + p[1]]);
            [s[0] / n, s[1] / n]
        };
        let (mf, mt) = (mean(from), mean(to));
        let (mut sxx, mut sab, mut sba) = (0.0f32, 0.0f32, 0.0f32);
        for (f, t) in from.iter().zip(to) {
            let (fx, fy) = (f[0] - mf[0], f[1] - mf[1]);
            let (tx, ty) = (t[0] - mt[0], t[1] - mt[1]);
            sxx += fx * fx + fy * fy;
            sab += fx * tx + fy * ty;
            sba += fx * ty - fy * tx;
        }
        if sxx.is_nan() || sxx <= 1e-6 || !sab.is_finite() || !sba.is_finite() {
            return None;
        }
        let (a, b) = (sab / sxx, sba / sxx);
        Some(Self { a, b, tx: mt[0] - (a * mf[0] - b * mf[1]), ty: mt[1] - (b * mf[0] + a * mf[1]) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_recovers_a_known_similarity() {
        let truth = Similarity { a: 0.8, b: 0.3, tx: 12.0, ty: -7.0 };
        let from = CropSpec::default().template;
        let to = from.transformed(&truth);
        let got = Similarity::estimate(&from, &to).unwrap();
        for (g, t) in [got.a, got.b, got.tx, got.ty].iter().zip([truth.a, truth.b, truth.tx, truth.ty]) {
            assert!((g - t).abs() < 1e-3, "{got:?} vs {truth:?}");
        }
        let back = got.inverse().unwrap();
        let p = back.apply(got.apply([3.0, 4.0]));
        assert!((p[0] - 3.0).abs() < 1e-3 && (p[1] - 4.0).abs() < 1e-3);
    }

    #[test]
    fn composition_applies_the_first_transform_first() {
        let first = Similarity { a: 0.0, b: 1.0, tx: 1.0, ty: 0.0 };
        let second = Similarity::about([2.0, 2.0], 0.0, 2.0);
        let p = [3.0, 5.0];
        let both = second.after(&first).apply(p);
        let step = second.apply(first.apply(p));
        assert!((both[0] - step[0]).abs() < 1e-5 && (both[1] - step[1]).abs() < 1e-5);
        assert_eq!(Similarity::about([4.0, 4.0], 30.0, 1.5).apply([4.0, 4.0]), [4.0, 4.0]);
    }

    #[test]
    fn coincident_points_have_no_transform() {
        let from = Landmarks5([[5.0, 5.0]; 5]);
        assert!(Similarity::estimate(&from, &CropSpec::default().template).is_none());
    }

    #[test]
    fn mirroring_swaps_sides_and_is_an_involution() {
        let t = CropSpec::default().template;
        let m = t.mirrored(128.0);
        assert!(m.0[0][0] < m.0[1][0], "left eye keeps the smaller x");
        let back = m.mirrored(128.0);
        for (p, q) in back.0.iter().zip(t.0.iter()) {
            assert!((p[0] - q[0]).abs() < 1e-4 && (p[1] - q[1]).abs() < 1e-4);
        }
    }

    #[test]
    fn nme_is_the_mean_point_error_in_inter_ocular_distances() {
        let reference = Landmarks5([[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]]);
        assert_eq!(reference.nme(&reference), 0.0);
        // Every point 5 px off (a 3-4-5 shift) against an inter-ocular distance of 40: 0.125.
        let moved = Landmarks5(reference.0.map(|[x, y]| [x + 3.0, y + 4.0]));
        assert!((moved.nme(&reference) - 0.125).abs() < 1e-9, "{}", moved.nme(&reference));
    }
}
