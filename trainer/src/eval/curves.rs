//! ROC (TAR against FAR) and DET (FRR against FAR) curves from genuine and impostor scores,
//! drawn with `plotters` on log-FAR axes into PNGs. Text uses a font embedded in the binary
//! (Ubuntu Light from `epaint_default_fonts`), so no system font is needed.

use anyhow::{Context, Result, anyhow};
use image::RgbImage;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

/// `(far, tar)` at `steps` thresholds spread over the impostor-score quantiles (plus the ends).
pub fn roc_points(genuine: &[f32], impostor: &[f32], steps: usize) -> Vec<(f64, f64)> {
    let mut imp = impostor.to_vec();
    imp.sort_by(|a, b| b.total_cmp(a));
    let rate = |scores: &[f32], t: f32| scores.iter().filter(|s| **s >= t).count() as f64 / scores.len().max(1) as f64;
    let mut thresholds: Vec<f32> = (0..=steps)
        .filter_map(|k| {
            // Quantiles spaced evenly in log(FAR): 1, 10^-1/steps·6, … down to one impostor.
            let far = 10f64.powf(-FAR_DECADES * k as f64 / steps as f64);
            imp.get(((far * imp.len() as f64) as usize).min(imp.len().saturating_sub(1))).copied()
        })
        .collect();
    thresholds.dedup();
    thresholds.iter().map(|t| (rate(&imp, *t), rate(genuine, *t))).collect()
}

const SIZE: (u32, u32) = (640, 480);
const FAR_DECADES: f64 = 6.0;
/// The lowest FRR the DET's log axis shows.
const FRR_FLOOR: f64 = 1e-3;
const FONT: &str = "sans-serif";
const CURVE: RGBColor = RGBColor(200, 30, 30);

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT).is_ok());
    anyhow::ensure!(ok, "the embedded plot font (Ubuntu Light) did not parse");
    Ok(())
}

/// One curve on a log-FAR axis against `y` (its own coordinate), saved as a PNG at `path`, its
/// legend at `legend` (where the curve is not).
fn plot<Y>(path: &Path, title: &str, y_desc: &str, y: Y, legend: SeriesLabelPosition, label: &str, points: &[(f64, f64)]) -> Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    register_font()?;
    let mut buffer = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, SIZE).into_drawing_area();
        let drawn: Result<(), Box<dyn std::error::Error>> = (|| {
            root.fill(&WHITE)?;
            let far: Range<f64> = 10f64.powf(-FAR_DECADES)..1.0;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, (FONT, 24))
                .margin(16)
                .x_label_area_size(48)
                .y_label_area_size(64)
                .build_cartesian_2d(far.log_scale(), y)?;
            chart
                .configure_mesh()
                .x_desc("FAR (false accepts per impostor attempt)")
                .y_desc(y_desc)
                .label_style((FONT, 15))
                .x_label_formatter(&|v| format!("{v:.0e}"))
                .draw()?;
            let on_axis = points.iter().copied().filter(|p| p.0 > 0.0);
            chart.draw_series(LineSeries::new(on_axis, CURVE.stroke_width(2)))?.label(label).legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], CURVE.stroke_width(2)));
            chart.configure_series_labels().label_font((FONT, 15)).background_style(WHITE.mix(0.9)).border_style(BLACK).position(legend).draw()?;
            root.present()?;
            Ok(())
        })();
        drawn.map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    }
    let img = RgbImage::from_raw(SIZE.0, SIZE.1, buffer).context("plot buffer of the wrong size")?;
    img.save(path).with_context(|| format!("writing {}", path.display()))
}

/// Write `roc.png` (TAR, linear) and `det.png` (FRR, log) into `dir`; `label` names the model in
/// the legend (its TAR at FAR 1e-3 is added).
pub fn write_curves(dir: &Path, label: &str, genuine: &[f32], impostor: &[f32]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let points = roc_points(genuine, impostor, 120);
    let tar_1e3 = points.iter().filter(|p| p.0 <= 1e-3).map(|p| p.1).fold(0.0, f64::max);
    let label = format!("{label}: TAR {:.1} % at FAR 1e-3 ({} genuine, {} impostor pairs)", 100.0 * tar_1e3, genuine.len(), impostor.len());
    plot(&dir.join("roc.png"), "ROC", "TAR (genuine accepts)", 0f64..1f64, SeriesLabelPosition::UpperLeft, &label, &points)?;
    let det: Vec<(f64, f64)> = points.iter().map(|(far, tar)| (*far, (1.0 - tar).max(FRR_FLOOR))).collect();
    plot(&dir.join("det.png"), "DET", "FRR (genuine rejects)", (0.8 * FRR_FLOOR..1f64).log_scale(), SeriesLabelPosition::LowerLeft, &label, &det)
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
        write_curves(dir.path(), "test", &genuine, &impostor).unwrap();
        for name in ["roc.png", "det.png"] {
            let img = image::open(dir.path().join(name)).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), SIZE);
            let curve = img.pixels().filter(|p| p.0 == [CURVE.0, CURVE.1, CURVE.2]).count();
            assert!(curve > 200, "{name}: {curve} curve pixels");
            let text = img.pixels().filter(|p| p.0.iter().all(|c| *c < 80)).count();
            assert!(text > 1000, "{name}: {text} dark pixels (axes and labels)");
        }
    }
}
