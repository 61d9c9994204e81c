//! ROC (TAR against FAR) and DET (FRR against FAR) curves from genuine and impostor scores,
//! drawn as PNG with the `image` crate: log-scale FAR axis, decade grid, labelled ticks (a small
//! built-in bitmap font, so no font files are needed).

use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use std::path::Path;

/// `(far, tar)` at `steps` thresholds spread over the impostor-score quantiles (plus the ends).
pub fn roc_points(genuine: &[f32], impostor: &[f32], steps: usize) -> Vec<(f64, f64)> {
    let mut imp = impostor.to_vec();
    imp.sort_by(|a, b| b.total_cmp(a));
    let rate = |scores: &[f32], t: f32| scores.iter().filter(|s| **s >= t).count() as f64 / scores.len().max(1) as f64;
    let mut thresholds: Vec<f32> = (0..=steps).filter_map(|k| {
        // Quantiles spaced evenly in log(FAR): 1, 10^-1/steps·6, … down to one impostor.
        let far = 10f64.powf(-6.0 * k as f64 / steps as f64);
        imp.get(((far * imp.len() as f64) as usize).min(imp.len().saturating_sub(1))).copied()
    }).collect();
    thresholds.dedup();
    thresholds.iter().map(|t| (rate(&imp, *t), rate(genuine, *t))).collect()
}

const W: u32 = 560;
const H: u32 = 440;
const LEFT: u32 = 80;
const RIGHT: u32 = 20;
const TOP: u32 = 40;
const BOTTOM: u32 = 60;
const SCALE: u32 = 2;
const FAR_DECADES: f64 = 6.0;

/// 5×7 glyphs (one row per byte, bit 4 leftmost) of the characters the plots use.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1e, 0x01, 0x01, 0x0e, 0x01, 0x01, 0x1e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        '.' => [0, 0, 0, 0, 0, 0x0c, 0x0c],
        '-' => [0, 0, 0, 0x1f, 0, 0, 0],
        'A' => [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        'C' => [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
        'D' => [0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e],
        'E' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
        'F' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
        'O' => [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        'R' => [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
        'T' => [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        _ => [0; 7],
    }
}

fn text(img: &mut RgbImage, x: u32, y: u32, s: &str) {
    for (i, c) in s.chars().enumerate() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..5u32 {
                if bits & (0x10 >> col) != 0 {
                    for (dx, dy) in (0..SCALE).flat_map(|a| (0..SCALE).map(move |b| (a, b))) {
                        let (px, py) = (x + (i as u32 * 6 + col) * SCALE + dx, y + row as u32 * SCALE + dy);
                        if px < W && py < H {
                            img.put_pixel(px, py, Rgb([0, 0, 0]));
                        }
                    }
                }
            }
        }
    }
}

/// Plot-area pixel of a FAR (log axis) and a y value already mapped to 0..1 (bottom to top).
fn to_px(far: f64, y01: f64) -> (f64, f64) {
    let x01 = (far.max(10f64.powf(-FAR_DECADES)).log10() + FAR_DECADES) / FAR_DECADES;
    (LEFT as f64 + x01 * (W - LEFT - RIGHT) as f64, (H - BOTTOM) as f64 - y01.clamp(0.0, 1.0) * (H - TOP - BOTTOM) as f64)
}

fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), colour: Rgb<u8>) {
    let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for k in 0..=n {
        let t = k as f64 / n as f64;
        let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
            let (px, py) = (x as u32 + dx, y as u32 + dy);
            if px < W && py < H {
                img.put_pixel(px, py, colour);
            }
        }
    }
}

/// Draw one curve over a log-FAR axis. `y` maps a point's second value to 0..1 and `y_ticks`
/// are `(value in 0..1, label)`.
fn plot(path: &Path, title: &str, y_label: &str, points: &[(f64, f64)], y: impl Fn(f64) -> f64, y_ticks: &[(f64, String)]) -> Result<()> {
    let mut img = RgbImage::from_pixel(W, H, Rgb([255, 255, 255]));
    let grid = Rgb([220, 220, 220]);
    for d in 0..=FAR_DECADES as i32 {
        let far = 10f64.powi(-d);
        let (x, _) = to_px(far, 0.0);
        line(&mut img, (x, TOP as f64), (x, (H - BOTTOM) as f64), grid);
        let label = if d == 0 { "1".to_string() } else { format!("1E-{d}") };
        text(&mut img, (x as u32).saturating_sub(label.len() as u32 * 6), H - BOTTOM + 8, &label);
    }
    for (v, label) in y_ticks {
        let (_, py) = to_px(1.0, *v);
        line(&mut img, (LEFT as f64, py), ((W - RIGHT) as f64, py), grid);
        text(&mut img, LEFT.saturating_sub(label.len() as u32 * 12 + 6), (py as u32).saturating_sub(7), label);
    }
    let axis = Rgb([0, 0, 0]);
    line(&mut img, (LEFT as f64, TOP as f64), (LEFT as f64, (H - BOTTOM) as f64), axis);
    line(&mut img, (LEFT as f64, (H - BOTTOM) as f64), ((W - RIGHT) as f64, (H - BOTTOM) as f64), axis);
    let curve: Vec<(f64, f64)> = points.iter().filter(|p| p.0 > 0.0).map(|p| to_px(p.0, y(p.1))).collect();
    for w in curve.windows(2) {
        line(&mut img, w[0], w[1], Rgb([200, 30, 30]));
    }
    text(&mut img, W / 2 - 20, 10, title);
    text(&mut img, W / 2 - 20, H - 24, "FAR");
    text(&mut img, 4, TOP - 30, y_label);
    img.save(path).with_context(|| format!("writing {}", path.display()))
}

/// Write `roc.png` (TAR, linear) and `det.png` (FRR, log) into `dir`.
pub fn write_curves(dir: &Path, genuine: &[f32], impostor: &[f32]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let points = roc_points(genuine, impostor, 120);
    let linear: Vec<(f64, String)> = (0..=5).map(|k| (k as f64 / 5.0, format!("{:.1}", k as f64 / 5.0))).collect();
    plot(&dir.join("roc.png"), "ROC", "TAR", &points, |tar| tar, &linear)?;
    // DET: FRR on a log axis from 1e-3 to 1.
    let log01 = |frr: f64| (frr.max(1e-3).log10() + 3.0) / 3.0;
    let det: Vec<(f64, f64)> = points.iter().map(|(far, tar)| (*far, 1.0 - tar)).collect();
    let ticks: Vec<(f64, String)> = [(1e-3, "1E-3"), (1e-2, "1E-2"), (1e-1, "0.1"), (1.0, "1")].iter().map(|(v, l)| (log01(*v), l.to_string())).collect();
    plot(&dir.join("det.png"), "DET", "FRR", &det, log01, &ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_is_monotone_and_the_plots_are_drawn() {
        let genuine: Vec<f32> = (0..500).map(|i| 0.5 + i as f32 / 1000.0).collect();
        let impostor: Vec<f32> = (0..5000).map(|i| i as f32 / 5000.0 * 0.8).collect();
        let pts = roc_points(&genuine, &impostor, 60);
        assert!(pts.windows(2).all(|w| w[1].0 <= w[0].0 && w[1].1 <= w[0].1), "{pts:?}");
        assert!(pts.iter().any(|p| p.0 <= 1e-3 && p.1 > 0.3));
        let dir = tempfile::tempdir().unwrap();
        write_curves(dir.path(), &genuine, &impostor).unwrap();
        for name in ["roc.png", "det.png"] {
            let img = image::open(dir.path().join(name)).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (W, H));
            assert!(img.pixels().any(|p| p.0 == [200, 30, 30]), "{name} has no curve");
        }
    }
}
