//! Per-stage latency statistics: cold (first frame) vs warm (the rest), p50/p95/p99.

use crate::pipeline::StageTimes;
use serde::Serialize;
use std::time::Duration;

pub const STAGES: [&str; 7] = ["capture", "decode", "detect", "align", "embed", "match", "liveness"];

fn stage_values(t: &StageTimes) -> [Duration; 7] {
    [t.capture, t.decode, t.detect, t.align, t.embed, t.matching, t.liveness]
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StageStats {
    pub stage: &'static str,
    pub cold_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Statistics per stage (plus `total`) over recorded frames; the first frame is the cold one.
pub fn summarize(frames: &[StageTimes]) -> Vec<StageStats> {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut out = Vec::new();
    for k in 0..=STAGES.len() {
        let value = |t: &StageTimes| if k < STAGES.len() { ms(stage_values(t)[k]) } else { stage_values(t).iter().map(|d| ms(*d)).sum() };
        let cold = frames.first().map_or(0.0, value);
        let mut warm: Vec<f64> = frames.iter().skip(1).map(value).collect();
        warm.sort_by(f64::total_cmp);
        out.push(StageStats {
            stage: STAGES.get(k).copied().unwrap_or("total"),
            cold_ms: cold,
            p50_ms: percentile(&warm, 50.0),
            p95_ms: percentile(&warm, 95.0),
            p99_ms: percentile(&warm, 99.0),
            mean_ms: if warm.is_empty() { 0.0 } else { warm.iter().sum::<f64>() / warm.len() as f64 },
        });
    }
    out
}

pub fn table(stats: &[StageStats]) -> String {
    let mut s = format!("{:<8} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "stage", "cold ms", "p50 ms", "p95 ms", "p99 ms", "mean ms");
    for r in stats {
        s += &format!("{:<8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n", r.stage, r.cold_ms, r.p50_ms, r.p95_ms, r.p99_ms, r.mean_ms);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let f = |ms: u64| StageTimes { embed: Duration::from_millis(ms), ..Default::default() };
        let s = summarize(&[f(100), f(10), f(20)]);
        let embed = s.iter().find(|r| r.stage == "embed").unwrap();
        assert_eq!(embed.cold_ms, 100.0);
        assert_eq!(embed.p50_ms, 10.0);
        assert_eq!(embed.p99_ms, 20.0);
        assert_eq!(s.last().unwrap().stage, "total");
    }
}
