//! Pyramidal Lucas–Kanade tracking of points from one grey image to another, kept only where
//! the window has texture and tracking back lands where it started.

use faceunlock_core::homography::Homography;
use image::RgbImage;

/// Half the side of the tracking window (a 15×15 window).
const HALF_WINDOW: i32 = 7;
/// Pyramid levels: full and half resolution.
pub const LEVELS: usize = 2;
const ITERATIONS: usize = 12;
/// Smallest eigenvalue of the window's mean structure tensor (normalised intensities): flatter
/// windows cannot be tracked.
const MIN_TEXTURE: f32 = 0.004;
/// Largest distance (pixels) between a point and where tracking it there and back leads.
const MAX_ROUND_TRIP: f32 = 0.3;
/// Width (pixels) of the local mean taken out before tracking.
const SMOOTHING: usize = 8;

/// A grey image, high-passed (its local mean over about `SMOOTHING` pixels removed) and scaled
/// to unit variance: glare sliding over a print, or light shifting over a turning face, changes
/// brightness smoothly and so does not look like motion. Pixel centres sit at `i + 0.5`. Refilled
/// in place, so a warm image allocates nothing.
#[derive(Default)]
pub struct Grey {
    width: usize,
    height: usize,
    px: Vec<f32>,
}

/// `v` holding `len` zeros, reusing its storage.
fn zeroed(v: &mut Vec<f32>, len: usize) {
    v.clear();
    v.resize(len, 0.0);
}

impl Grey {
    /// This image from `img`; `smooth` and `pass` are scratch space for the local mean.
    fn fill_from_rgb(&mut self, img: &RgbImage, [smooth, pass]: &mut [Vec<f32>; 2]) {
        let (width, height) = (img.width() as usize, img.height() as usize);
        (self.width, self.height) = (width, height);
        self.px.clear();
        self.px.extend(img.pixels().map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])));
        smooth.clear();
        smooth.extend_from_slice(&self.px);
        for _ in 0..2 {
            box_blur(smooth, pass, width, height, SMOOTHING / 2, [1, width]);
            box_blur(pass, smooth, width, height, SMOOTHING / 2, [width, 1]);
        }
        self.px.iter_mut().zip(smooth.iter()).for_each(|(v, m)| *v -= m);
        let std = (self.px.iter().map(|v| v * v).sum::<f32>() / self.px.len().max(1) as f32).sqrt().max(1e-3);
        self.px.iter_mut().for_each(|v| *v /= std);
    }

    /// The 2×2 box average of `full`: its next pyramid level.
    fn fill_half(&mut self, full: &Grey) {
        let (width, height) = (full.width / 2, full.height / 2);
        (self.width, self.height) = (width, height);
        let at = |x: usize, y: usize| full.px[y * full.width + x];
        self.px.clear();
        self.px.extend((0..height).flat_map(|y| (0..width).map(move |x| (x, y))).map(|(x, y)| 0.25 * (at(2 * x, 2 * y) + at(2 * x + 1, 2 * y) + at(2 * x, 2 * y + 1) + at(2 * x + 1, 2 * y + 1))));
    }

    /// `p ↦ src(h(p))`: `src` moved back through `h`, on the same pixel grid.
    fn fill_warped(&mut self, src: &Grey, h: &Homography) {
        (self.width, self.height) = (src.width, src.height);
        self.px.clear();
        self.px.extend((0..src.height).flat_map(|y| (0..src.width).map(move |x| [x as f32 + 0.5, y as f32 + 0.5])).map(|p| {
            let [x, y] = h.apply(p);
            src.at(x, y)
        }));
    }

    /// Bilinear sample at continuous coordinates, clamped at the border.
    #[inline(always)]
    fn at(&self, x: f32, y: f32) -> f32 {
        let (x, y) = ((x - 0.5).clamp(0.0, (self.width - 1) as f32), (y - 0.5).clamp(0.0, (self.height - 1) as f32));
        let (x0, y0) = (x as usize, y as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let row = |yy: usize| self.px[yy * self.width + x0] * (1.0 - fx) + self.px[yy * self.width + x1] * fx;
        row(y0) * (1.0 - fy) + row(y1) * fy
    }
}

/// `out` = the mean of `src` over `2·radius + 1` samples along one axis (`stride` = `[step along
/// the axis, step across it]`), the window clamped at the ends.
fn box_blur(src: &[f32], out: &mut Vec<f32>, width: usize, height: usize, radius: usize, stride: [usize; 2]) {
    let (len, lines) = if stride[0] == 1 { (width, height) } else { (height, width) };
    zeroed(out, src.len());
    for line in 0..lines {
        let at = |i: usize| src[line * stride[1] + i * stride[0]];
        for i in 0..len {
            let (lo, hi) = (i.saturating_sub(radius), (i + radius).min(len - 1));
            out[line * stride[1] + i * stride[0]] = (lo..=hi).map(at).sum::<f32>() / (hi - lo + 1) as f32;
        }
    }
}

/// An image and its half-resolution copy, with the scratch space refilling it takes: refilled
/// in place, so a warm pyramid allocates nothing.
#[derive(Default)]
pub struct Pyramid {
    levels: [Grey; LEVELS],
    scratch: [Vec<f32>; 2],
}

impl Pyramid {
    /// Make this the pyramid of `img`.
    pub fn fill(&mut self, img: &RgbImage) {
        let [full, half] = &mut self.levels;
        full.fill_from_rgb(img, &mut self.scratch);
        half.fill_half(full);
    }

    /// Make this `p ↦ src(h(p))`: `src` with the motion `h` taken out.
    pub fn fill_warped(&mut self, src: &Pyramid, h: &Homography) {
        let [full, half] = &mut self.levels;
        full.fill_warped(&src.levels[0], h);
        half.fill_half(full);
    }

    pub fn size(&self) -> [usize; 2] {
        [self.levels[0].width, self.levels[0].height]
    }
}

/// Side of a tracking window, and its samples.
const WINDOW_SIDE: usize = (2 * HALF_WINDOW + 1) as usize;
const WINDOW_AREA: usize = WINDOW_SIDE * WINDOW_SIDE;
/// The window with a one-sample border, for central-difference gradients.
const PATCH_SIDE: usize = WINDOW_SIDE + 2;

impl Grey {
    /// Bilinear samples at `origin + (i, j)` for `i, j` in `0..side`, row by row into `out`. All
    /// share one pair of interpolation weights, so away from the border each source row is
    /// interpolated once and reused by the next output row; near the border each sample is
    /// clamped as [`Grey::at`] does.
    fn sample_grid(&self, origin: [f32; 2], side: usize, out: &mut [f32]) {
        let (x, y) = (origin[0] - 0.5, origin[1] - 0.5);
        let (x0, y0) = (x.floor(), y.floor());
        let inside = x0 >= 0.0 && y0 >= 0.0 && (x0 as usize) + side < self.width && (y0 as usize) + side < self.height;
        if !inside {
            for (k, v) in out[..side * side].iter_mut().enumerate() {
                *v = self.at(origin[0] + (k % side) as f32, origin[1] + (k / side) as f32);
            }
            return;
        }
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as usize, y0 as usize);
        let lerp_row = |row: usize, into: &mut [f32; PATCH_SIDE]| {
            let line = &self.px[row * self.width + x0..][..side + 1];
            for (v, pair) in into.iter_mut().zip(line.windows(2)) {
                *v = pair[0] * (1.0 - fx) + pair[1] * fx;
            }
        };
        let (mut upper, mut lower) = ([0.0f32; PATCH_SIDE], [0.0f32; PATCH_SIDE]);
        lerp_row(y0, &mut upper);
        for (j, out_row) in out[..side * side].chunks_exact_mut(side).enumerate() {
            lerp_row(y0 + j + 1, &mut lower);
            for ((v, u), l) in out_row.iter_mut().zip(&upper).zip(&lower) {
                *v = u * (1.0 - fy) + l * fy;
            }
            std::mem::swap(&mut upper, &mut lower);
        }
    }
}

/// Where `p` of `from` lies in `to`: coarse to fine, each level refining the displacement by
/// Gauss–Newton on the window's intensities. `None` for a flat window or a diverging solve.
fn track_point(from: &Pyramid, to: &Pyramid, p: [f32; 2]) -> Option<[f32; 2]> {
    let mut d = [0.0f32; 2];
    let half = HALF_WINDOW as f32;
    // The window in `from` with its border, and the window in `to` at the current displacement.
    let (mut patch, mut moved) = ([0.0f32; PATCH_SIDE * PATCH_SIDE], [0.0f32; WINDOW_AREA]);
    for level in (0..LEVELS).rev() {
        let s = 0.5f32.powi(level as i32);
        let (a, b) = (&from.levels[level], &to.levels[level]);
        let c = [p[0] * s, p[1] * s];
        a.sample_grid([c[0] - half - 1.0, c[1] - half - 1.0], PATCH_SIDE, &mut patch);
        let at = |i: usize, j: usize| patch[j * PATCH_SIDE + i];
        // Per sample: intensity and gradient x, y in `from`.
        let mut window = [[0.0f32; 3]; WINDOW_AREA];
        let (mut gxx, mut gxy, mut gyy) = (0.0f32, 0.0f32, 0.0f32);
        for (k, sample) in window.iter_mut().enumerate() {
            let (i, j) = (k % WINDOW_SIDE + 1, k / WINDOW_SIDE + 1);
            let gx = 0.5 * (at(i + 1, j) - at(i - 1, j));
            let gy = 0.5 * (at(i, j + 1) - at(i, j - 1));
            gxx += gx * gx;
            gxy += gx * gy;
            gyy += gy * gy;
            *sample = [at(i, j), gx, gy];
        }
        let n = WINDOW_AREA as f32;
        let det = gxx * gyy - gxy * gxy;
        let min_eigen = 0.5 * (gxx + gyy - ((gxx - gyy).powi(2) + 4.0 * gxy * gxy).sqrt()) / n;
        if level == 0 && min_eigen < MIN_TEXTURE || det.abs() < 1e-9 {
            return None;
        }
        for _ in 0..ITERATIONS {
            b.sample_grid([c[0] + d[0] - half, c[1] + d[1] - half], WINDOW_SIDE, &mut moved);
            let (mut bx, mut by) = (0.0f32, 0.0f32);
            for (&[va, gx, gy], vb) in window.iter().zip(&moved) {
                let diff = va - vb;
                bx += gx * diff;
                by += gy * diff;
            }
            let step = [(gyy * bx - gxy * by) / det, (gxx * by - gxy * bx) / det];
            d = [d[0] + step[0], d[1] + step[1]];
            if !d[0].is_finite() || d[0].abs().max(d[1].abs()) > 16.0 {
                return None;
            }
            if step[0].abs().max(step[1].abs()) < 0.01 {
                break;
            }
        }
        if level > 0 {
            d = [d[0] * 2.0, d[1] * 2.0];
        }
    }
    Some([p[0] + d[0], p[1] + d[1]])
}

/// Track `points` from `from` to `to`: the points whose window had texture and, when
/// `round_trip` is set, whose track back from where they landed returned within
/// `MAX_ROUND_TRIP` pixels of the start (twice the work; drops points that slid or were hidden)
/// go to `starts`, where they landed to `ends` (both emptied first).
pub fn track(from: &Pyramid, to: &Pyramid, points: &[[f32; 2]], round_trip: bool, starts: &mut Vec<[f32; 2]>, ends: &mut Vec<[f32; 2]>) {
    starts.clear();
    ends.clear();
    for &p in points {
        let Some(q) = track_point(from, to, p) else { continue };
        let kept = !round_trip || track_point(to, from, q).is_some_and(|back| (back[0] - p[0]).hypot(back[1] - p[1]) <= MAX_ROUND_TRIP);
        if kept {
            starts.push(p);
            ends.push(q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pyramid(img: &RgbImage) -> Pyramid {
        let mut p = Pyramid::default();
        p.fill(img);
        p
    }

    /// A textured test card shifted by `(sx, sy)` pixels (sub-pixel shifts included).
    fn card(sx: f32, sy: f32) -> RgbImage {
        RgbImage::from_fn(64, 64, |x, y| {
            let (u, v) = (x as f32 - sx, y as f32 - sy);
            let t = 0.5 + 0.25 * (u * 0.45).sin() * (v * 0.31).cos() + 0.25 * ((u + 2.0 * v) * 0.23).sin();
            image::Rgb([(t * 255.0) as u8; 3])
        })
    }

    #[test]
    fn a_shifted_card_is_tracked_to_a_tenth_of_a_pixel() {
        let (a, b) = (pyramid(&card(0.0, 0.0)), pyramid(&card(3.4, -2.2)));
        let points: Vec<[f32; 2]> = (0..4).flat_map(|i| (0..4).map(move |j| [20.0 + 8.0 * i as f32, 20.0 + 8.0 * j as f32])).collect();
        let (mut starts, mut ends) = (Vec::new(), Vec::new());
        track(&a, &b, &points, true, &mut starts, &mut ends);
        assert!(starts.len() >= 12, "only {} of 16 points tracked", starts.len());
        for (p, q) in starts.into_iter().zip(ends) {
            assert!((q[0] - p[0] - 3.4).abs() < 0.1 && (q[1] - p[1] + 2.2).abs() < 0.1, "{p:?} → {q:?}");
        }
    }

    #[test]
    fn grid_sampling_matches_pointwise_sampling_inside_and_at_the_border() {
        let card = pyramid(&card(0.0, 0.0));
        let grey = &card.levels[0];
        let mut out = [0.0f32; PATCH_SIDE * PATCH_SIDE];
        // Inside, over the left and top border, and over the right and bottom one.
        for origin in [[20.37, 11.81], [-3.2, 5.5], [50.6, 52.25]] {
            grey.sample_grid(origin, PATCH_SIDE, &mut out);
            for (k, v) in out.iter().enumerate() {
                let want = grey.at(origin[0] + (k % PATCH_SIDE) as f32, origin[1] + (k / PATCH_SIDE) as f32);
                assert!((v - want).abs() < 1e-4, "at {origin:?} + {k}: {v} vs {want}");
            }
        }
    }

    #[test]
    fn a_flat_window_is_not_tracked() {
        let flat = pyramid(&RgbImage::from_pixel(32, 32, image::Rgb([90, 90, 90])));
        let (mut starts, mut ends) = (vec![[0.0; 2]], vec![[0.0; 2]]);
        track(&flat, &flat, &[[16.0, 16.0]], false, &mut starts, &mut ends);
        assert!(starts.is_empty() && ends.is_empty());
    }
}
