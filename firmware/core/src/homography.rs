//! Plane-to-image maps: a 3×3 homography, fitted to point pairs by the normalised DLT. The
//! generator warps a flat picture with one; the liveness check fits one to landmark tracks, since
//! every view of a flat object (a print, a screen) is one homography from every other.

/// `[x', y', w] = H·[x, y, 1]`, row-major, in f64 (the fit is ill-conditioned in f32).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Homography(pub [[f64; 3]; 3]);

impl Homography {
    pub const IDENTITY: Self = Self([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);

    /// The image of `p`; non-finite when `p` maps to the line at infinity.
    pub fn apply(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        let h = &self.0;
        let (x, y) = (f64::from(x), f64::from(y));
        let w = h[2][0] * x + h[2][1] * y + h[2][2];
        [((h[0][0] * x + h[0][1] * y + h[0][2]) / w) as f32, ((h[1][0] * x + h[1][1] * y + h[1][2]) / w) as f32]
    }

    /// `self` after `first`: `p ↦ self(first(p))`.
    pub fn after(&self, first: &Homography) -> Self {
        let (a, b) = (&self.0, &first.0);
        Self(std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum())))
    }

    /// The inverse map; `None` when the matrix is singular.
    pub fn inverse(&self) -> Option<Self> {
        let m = &self.0;
        let cof = |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
        let adj = [
            [cof(1, 2, 1, 2), -cof(0, 2, 1, 2), cof(0, 1, 1, 2)],
            [-cof(1, 2, 0, 2), cof(0, 2, 0, 2), -cof(0, 1, 0, 2)],
            [cof(1, 2, 0, 1), -cof(0, 2, 0, 1), cof(0, 1, 0, 1)],
        ];
        let det = m[0][0] * adj[0][0] + m[0][1] * adj[1][0] + m[0][2] * adj[2][0];
        let scale = adj.iter().flatten().fold(0.0f64, |s, v| s.max(v.abs()));
        (det.is_finite() && det.abs() > 1e-12 * scale.max(1e-300)).then(|| Self(adj.map(|row| row.map(|v| v / det))))
    }

    /// Least-squares homography taking `from[i]` to `to[i]` (at least 4 pairs): the normalised
    /// DLT with `h₃₃ = 1`, solved by the normal equations. `None` for fewer than 4 pairs or a
    /// degenerate configuration (3 of 4 points on a line, coincident points).
    pub fn fit(from: &[[f32; 2]], to: &[[f32; 2]]) -> Option<Self> {
        if from.len() != to.len() || from.len() < 4 {
            return None;
        }
        let (nf, nt) = (Normaliser::of(from)?, Normaliser::of(to)?);
        let mut ata = [[0.0f64; 8]; 8];
        let mut atb = [0.0f64; 8];
        for (p, q) in from.iter().zip(to) {
            let [x, y] = nf.apply(*p);
            let [u, v] = nt.apply(*q);
            for (row, rhs) in [([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y], u), ([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y], v)] {
                for i in 0..8 {
                    atb[i] += row[i] * rhs;
                    for j in 0..8 {
                        ata[i][j] += row[i] * row[j];
                    }
                }
            }
        }
        let h = solve(ata, atb)?;
        let normalised = Self([[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1.0]]);
        Some(nt.matrix().inverse()?.after(&normalised.after(&nf.matrix())))
    }

    /// Least-squares affine map (bottom row `0 0 1`) taking `from[i]` to `to[i]` (at least 3
    /// pairs, not all on a line). Unlike a similarity it follows a turned head's foreshortening.
    pub fn fit_affine(from: &[[f32; 2]], to: &[[f32; 2]]) -> Option<Self> {
        if from.len() != to.len() || from.len() < 3 {
            return None;
        }
        let nf = Normaliser::of(from)?;
        let mut ata = [[0.0f64; 3]; 3];
        let mut atb = [[0.0f64; 3]; 2];
        for (p, q) in from.iter().zip(to) {
            let [x, y] = nf.apply(*p);
            let row = [x, y, 1.0];
            for i in 0..3 {
                for j in 0..3 {
                    ata[i][j] += row[i] * row[j];
                }
                for (k, rhs) in atb.iter_mut().enumerate() {
                    rhs[i] += row[i] * f64::from(q[k]);
                }
            }
        }
        let [u, v] = [solve(ata, atb[0])?, solve(ata, atb[1])?];
        Some(Self([u, v, [0.0, 0.0, 1.0]]).after(&nf.matrix()))
    }
}

/// Hartley's conditioning: centre the points and scale their mean distance to √2.
struct Normaliser {
    centre: [f64; 2],
    scale: f64,
}

impl Normaliser {
    fn of(points: &[[f32; 2]]) -> Option<Self> {
        let n = points.len() as f64;
        let centre = [0, 1].map(|k| points.iter().map(|p| f64::from(p[k])).sum::<f64>() / n);
        let spread = points.iter().map(|p| (f64::from(p[0]) - centre[0]).hypot(f64::from(p[1]) - centre[1])).sum::<f64>() / n;
        (spread.is_finite() && spread > 1e-9).then(|| Self { centre, scale: std::f64::consts::SQRT_2 / spread })
    }

    fn apply(&self, p: [f32; 2]) -> [f64; 2] {
        [0, 1].map(|k| (f64::from(p[k]) - self.centre[k]) * self.scale)
    }

    fn matrix(&self) -> Homography {
        let s = self.scale;
        Homography([[s, 0.0, -s * self.centre[0]], [0.0, s, -s * self.centre[1]], [0.0, 0.0, 1.0]])
    }
}

/// Gaussian elimination with partial pivoting; `None` when the system is singular.
pub fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    let scale = a.iter().flatten().fold(0.0f64, |s, v| s.max(v.abs()));
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs().partial_cmp(&(1e-12 * scale)) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col];
        for row in col + 1..N {
            let f = a[row][col] / pivot_row[col];
            for (v, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *v -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0f64; N];
    for row in (0..N).rev() {
        let tail: f64 = (row + 1..N).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQUARE: [[f32; 2]; 5] = [[0.0, 0.0], [100.0, 0.0], [100.0, 80.0], [0.0, 80.0], [40.0, 30.0]];

    fn close(a: [f32; 2], b: [f32; 2], tol: f32) -> bool {
        (a[0] - b[0]).abs() < tol && (a[1] - b[1]).abs() < tol
    }

    #[test]
    fn fit_recovers_a_perspective_map_from_five_points() {
        let truth = Homography([[1.1, 0.2, 30.0], [-0.1, 0.9, 12.0], [0.0008, -0.0005, 1.0]]);
        let to: Vec<[f32; 2]> = SQUARE.iter().map(|p| truth.apply(*p)).collect();
        let fitted = Homography::fit(&SQUARE, &to).unwrap();
        for p in [[10.0, 70.0], [55.0, 5.0], [200.0, -40.0]] {
            assert!(close(fitted.apply(p), truth.apply(p), 1e-2), "{p:?}: {:?} vs {:?}", fitted.apply(p), truth.apply(p));
        }
        let back = fitted.inverse().unwrap();
        assert!(close(back.apply(fitted.apply([20.0, 20.0])), [20.0, 20.0], 1e-3));
    }

    #[test]
    fn a_point_off_the_plane_leaves_a_residual_and_degenerate_input_has_no_fit() {
        // Four corners move by one map, the fifth point by another: no homography explains it.
        let truth = Homography([[0.9, 0.0, 5.0], [0.1, 1.0, -3.0], [0.0005, 0.0, 1.0]]);
        let mut to: Vec<[f32; 2]> = SQUARE.iter().map(|p| truth.apply(*p)).collect();
        to[4][0] += 8.0;
        let fitted = Homography::fit(&SQUARE, &to).unwrap();
        let worst = SQUARE.iter().zip(&to).map(|(p, q)| (fitted.apply(*p)[0] - q[0]).abs()).fold(0.0f32, f32::max);
        assert!(worst > 1.0, "an 8 px parallax vanished: {worst}");
        let line = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        assert!(Homography::fit(&line, &line).is_none());
        assert!(Homography::fit(&SQUARE[..3], &SQUARE[..3]).is_none());
    }

    #[test]
    fn affine_fit_recovers_an_affine_map_and_refuses_collinear_points() {
        let truth = Homography([[0.7, 0.15, 12.0], [-0.05, 1.1, -4.0], [0.0, 0.0, 1.0]]);
        let to: Vec<[f32; 2]> = SQUARE.iter().map(|p| truth.apply(*p)).collect();
        let fitted = Homography::fit_affine(&SQUARE, &to).unwrap();
        for p in [[10.0, 70.0], [300.0, -40.0]] {
            assert!(close(fitted.apply(p), truth.apply(p), 1e-3), "{p:?}: {:?} vs {:?}", fitted.apply(p), truth.apply(p));
        }
        assert_eq!(fitted.0[2], [0.0, 0.0, 1.0]);
        let line = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]];
        assert!(Homography::fit_affine(&line, &line).is_none());
    }
}
