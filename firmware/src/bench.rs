//! Per-stage statistics: latency cold (first frame) vs warm (the rest) with p50/p95/p99, and
//! heap allocations per warm frame.

use crate::cost::{Cost, Meter};
use crate::liveness::Track;
use crate::pipeline::{FaceOutcome, Pipeline, PipelineError, StageCosts};
use crate::templates::Person;
use image::RgbImage;
use serde::Serialize;

pub const STAGES: [&str; 7] = ["capture", "decode", "detect", "align", "embed", "match", "liveness"];

fn stage_costs(c: &StageCosts) -> [Cost; 7] {
    [c.capture, c.decode, c.detect, c.align, c.embed, c.matching, c.liveness]
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StageStats {
    pub stage: &'static str,
    pub cold_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    /// Mean heap allocations per warm frame (0 unless the binary counts them, see
    /// [`crate::cost`]).
    pub allocations: f64,
}

/// One frame as `bench` measures it: through the pipeline and, with a face, matched against
/// `people` and pushed onto the liveness `track`; each stage's cost is recorded in `costs`.
pub fn measure_frame(pipeline: &mut Pipeline, people: &[Person], track: &mut Track, frame: &RgbImage, costs: &mut StageCosts) -> Result<(), PipelineError> {
    if let FaceOutcome::Embedded { embedding, .. } = pipeline.process(frame, costs)? {
        let meter = Meter::start();
        std::hint::black_box(crate::decision::best_match(people, embedding));
        costs.matching = meter.stop();
        let meter = Meter::start();
        std::hint::black_box(track.push(pipeline.last_crop()));
        costs.liveness = meter.stop();
    }
    Ok(())
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
}

/// Statistics per stage (plus `total`) over recorded frames; the first frame is the cold one.
pub fn summarize(frames: &[StageCosts]) -> Vec<StageStats> {
    let mut out = Vec::new();
    for k in 0..=STAGES.len() {
        // Stage k's cost per frame, or with k past the stages their sum: the frame's.
        let costs: Vec<Cost> = frames.iter().map(|c| if k < STAGES.len() { stage_costs(c)[k] } else { stage_costs(c).into_iter().sum() }).collect();
        let ms = |c: &Cost| c.time.as_secs_f64() * 1e3;
        let cold = costs.first().map_or(0.0, ms);
        let mut warm: Vec<f64> = costs.iter().skip(1).map(ms).collect();
        warm.sort_by(f64::total_cmp);
        let allocations: Vec<f64> = costs.iter().skip(1).map(|c| c.allocations as f64).collect();
        out.push(StageStats {
            stage: STAGES.get(k).copied().unwrap_or("total"),
            cold_ms: cold,
            p50_ms: percentile(&warm, 50.0),
            p95_ms: percentile(&warm, 95.0),
            p99_ms: percentile(&warm, 99.0),
            mean_ms: mean(&warm),
            allocations: mean(&allocations),
        });
    }
    out
}

pub fn table(stats: &[StageStats]) -> String {
    let mut s = format!("{:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "stage", "cold ms", "p50 ms", "p95 ms", "p99 ms", "mean ms", "allocs");
    for r in stats {
        s += &format!("{:<8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.1}\n", r.stage, r.cold_ms, r.p50_ms, r.p95_ms, r.p99_ms, r.mean_ms, r.allocations);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn the_first_frame_is_cold_and_the_rest_warm() {
        let f = |ms: u64, allocations: u64| StageCosts {
            embed: Cost { time: Duration::from_millis(ms), allocations },
            detect: Cost { time: Duration::from_millis(1), allocations: 1 },
            ..Default::default()
        };
        let s = summarize(&[f(100, 50), f(10, 2), f(20, 4)]);
        let embed = s.iter().find(|r| r.stage == "embed").unwrap();
        assert_eq!(embed.cold_ms, 100.0);
        assert_eq!(embed.p50_ms, 10.0);
        assert_eq!(embed.p99_ms, 20.0);
        assert_eq!(embed.allocations, 3.0, "the cold frame's allocations are not counted");
        let total = s.last().unwrap();
        assert_eq!(total.stage, "total");
        assert_eq!((total.p50_ms, total.allocations), (11.0, 4.0));
    }
}
