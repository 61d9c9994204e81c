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

/// A grey image, high-passed (its local mean over about [`SMOOTHING`] pixels removed) and scaled
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

/// Samples of a tracking window.
const WINDOW_AREA: usize = ((2 * HALF_WINDOW + 1) * (2 * HALF_WINDOW + 1)) as usize;

/// Where `p` of `from` lies in `to`: coarse to fine, each level refining the displacement by
/// Gauss–Newton on the window's intensities. `None` for a flat window or a diverging solve.
fn track_point(from: &Pyramid, to: &Pyramid, p: [f32; 2]) -> Option<[f32; 2]> {
    let mut d = [0.0f32; 2];
    for level in (0..LEVELS).rev() {
        let s = 0.5f32.powi(level as i32);
        let (a, b) = (&from.levels[level], &to.levels[level]);
        let c = [p[0] * s, p[1] * s];
        let offsets = (-HALF_WINDOW..=HALF_WINDOW).flat_map(|dy| (-HALF_WINDOW..=HALF_WINDOW).map(move |dx| (dx as f32, dy as f32)));
        // Per sample: offset x, y, intensity and gradient x, y in `from`.
        let mut window = [[0.0f32; 5]; WINDOW_AREA];
        let (mut gxx, mut gxy, mut gyy) = (0.0f32, 0.0f32, 0.0f32);
        for ((dx, dy), sample) in offsets.zip(&mut window) {
            let (x, y) = (c[0] + dx, c[1] + dy);
            let gx = 0.5 * (a.at(x + 1.0, y) - a.at(x - 1.0, y));
            let gy = 0.5 * (a.at(x, y + 1.0) - a.at(x, y - 1.0));
            gxx += gx * gx;
            gxy += gx * gy;
            gyy += gy * gy;
            *sample = [dx, dy, a.at(x, y), gx, gy];
        }
        let n = WINDOW_AREA as f32;
        let det = gxx * gyy - gxy * gxy;
        let min_eigen = 0.5 * (gxx + gyy - ((gxx - gyy).powi(2) + 4.0 * gxy * gxy).sqrt()) / n;
        if level == 0 && min_eigen < MIN_TEXTURE || det.abs() < 1e-9 {
            return None;
        }
        for _ in 0..ITERATIONS {
            let (mut bx, mut by) = (0.0f32, 0.0f32);
            for &[dx, dy, va, gx, gy] in &window {
                let diff = va - b.at(c[0] + d[0] + dx, c[1] + d[1] + dy);
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
/// [`MAX_ROUND_TRIP`] pixels of the start (twice the work; drops points that slid or were hidden)
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
    fn a_flat_window_is_not_tracked() {
        let flat = pyramid(&RgbImage::from_pixel(32, 32, image::Rgb([90, 90, 90])));
        let (mut starts, mut ends) = (vec![[0.0; 2]], vec![[0.0; 2]]);
        track(&flat, &flat, &[[16.0, 16.0]], false, &mut starts, &mut ends);
        assert!(starts.is_empty() && ends.is_empty());
    }
}
