//! What a latency number depends on, recorded with every `bench` report: board, device-tree
//! model, kernel, CPU governor, tract's CPU kind, threads, and the SoC temperature and throttle
//! flags at the start and at the end of the run.

use crate::board::read_trimmed;
use crate::config::Config;
use serde::Serialize;
use std::path::Path;

/// Thermal state at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Thermal {
    pub temperature_c: Option<f32>,
    /// The board's throttle flags as its firmware reports them (Pi: `get_throttled`, hex).
    pub throttled: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Environment {
    pub board: String,
    pub device_tree_model: Option<String>,
    pub arch: &'static str,
    pub kernel: Option<String>,
    pub governor: Option<String>,
    /// The kernel family tract uses for this CPU (aarch64; `TRACT_CPU_AARCH64_KIND` forces it).
    pub tract_cpu_kind: String,
    pub threads: usize,
    pub start: Thermal,
    pub end: Option<Thermal>,
}

pub fn thermal(cfg: &Config) -> Thermal {
    Thermal {
        temperature_c: cfg.board.thermal_path.as_deref().and_then(read_trimmed).and_then(|s| s.parse::<f32>().ok()).map(|milli| milli / 1000.0),
        throttled: cfg.board.throttle_path.as_deref().and_then(read_trimmed),
    }
}

#[cfg(target_arch = "aarch64")]
fn tract_cpu_kind() -> String {
    format!("{:?}", tract_linalg::arm64::Kind::choose())
}

#[cfg(not(target_arch = "aarch64"))]
fn tract_cpu_kind() -> String {
    format!("{} (tract picks kernels by CPU features)", std::env::consts::ARCH)
}

impl Environment {
    /// Record everything but the end state (see [`Environment::finish`]).
    pub fn start(cfg: &Config) -> Self {
        Self {
            board: cfg.board.id.clone(),
            device_tree_model: read_trimmed(Path::new(crate::board::DEVICE_TREE_MODEL)),
            arch: std::env::consts::ARCH,
            kernel: read_trimmed(Path::new("/proc/sys/kernel/osrelease")),
            governor: read_trimmed(Path::new("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")),
            tract_cpu_kind: tract_cpu_kind(),
            threads: cfg.compute.threads,
            start: thermal(cfg),
            end: None,
        }
    }

    pub fn finish(&mut self, cfg: &Config) {
        self.end = Some(thermal(cfg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_and_throttle_are_read_from_the_board_files() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, throttle) = (dir.path().join("temp"), dir.path().join("throttled"));
        std::fs::write(&temp, "48312\n").unwrap();
        std::fs::write(&throttle, "0x50000\n").unwrap();
        let mut cfg = Config::default();
        cfg.board.thermal_path = Some(temp);
        cfg.board.throttle_path = Some(throttle);
        let mut env = Environment::start(&cfg);
        assert_eq!(env.start.temperature_c, Some(48.312));
        assert_eq!(env.start.throttled.as_deref(), Some("0x50000"));
        env.finish(&cfg);
        assert!(env.end.is_some());
        cfg.board.thermal_path = Some(dir.path().join("absent"));
        assert_eq!(thermal(&cfg).temperature_c, None);
    }
}
