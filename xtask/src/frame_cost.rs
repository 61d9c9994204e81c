//! `cargo xtask frame-cost`: instructions per frame, stage by stage, on emulated Cortex-A53
//! (Pi 3), A72 (Pi 4) and A76 (Pi 5), each at its board file's settings: a cost model that
//! neither the host's speed nor its load changes. The firmware's `frame_cost` example (release,
//! aarch64, one thread) warms every stage up on two generated frames, then runs each stage N
//! more times between markers, once per board under `qemu-aarch64` with an instruction-counting
//! plugin (`icount.c`, built here with `cc`) that reports its count at each marker; a stage's
//! cost is the count between its markers, over N. tract's kernel family
//! is forced per core with `TRACT_CPU_AARCH64_KIND` (qemu shows the host's /proc/cpuinfo to the
//! guest). Counts are deterministic for a given build, so `--check` compares them with the
//! recorded ones (`boards/frame-cost.json`) and fails when a stage grew more than 10 %.

use crate::target::checked;
use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Args)]
pub struct Options {
    /// Runs of each stage (a stage's figure is its count over these).
    #[arg(long, default_value_t = 3)]
    pub repeats: u64,
    /// Only these boards (rpi3, rpi4, rpi5); all three by default.
    #[arg(long)]
    pub board: Vec<String>,
    /// Write the counts here as JSON (the recorded ones live in `boards/frame-cost.json`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Fail when a stage's count exceeds the one recorded in this JSON by more than 10 %.
    #[arg(long)]
    pub check: Option<PathBuf>,
}

/// The stages the example counts, in the frame's order (bench's, less the camera wait), as it
/// names them.
pub const STAGES: [&str; 6] = ["decode", "detect", "align", "embed", "match", "liveness"];
/// How much a stage may grow over its recorded count before `--check` fails.
const TOLERANCE: f64 = 0.10;

/// A board's core as qemu and tract name it, and the assumptions that turn its instruction
/// count into milliseconds.
struct Core {
    board: &'static str,
    name: &'static str,
    qemu_cpu: &'static str,
    tract_kind: &'static str,
    clock_ghz: f64,
    /// Instructions retired per cycle assumed for this workload (stated with the estimate,
    /// until a board's `bench --json` replaces it).
    ipc: f64,
}

const CORES: [Core; 3] = [
    Core { board: "rpi3", name: "Cortex-A53 (Pi 3)", qemu_cpu: "cortex-a53", tract_kind: "a53", clock_ghz: 1.2, ipc: 0.8 },
    Core { board: "rpi4", name: "Cortex-A72 (Pi 4)", qemu_cpu: "cortex-a72", tract_kind: "a72", clock_ghz: 1.5, ipc: 1.2 },
    Core { board: "rpi5", name: "Cortex-A76 (Pi 5)", qemu_cpu: "cortex-a76", tract_kind: "a75", clock_ghz: 2.4, ipc: 2.0 },
];

/// One board's counts, as the JSON records them.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct BoardCost {
    pub board: String,
    pub core: String,
    pub tract_kernels: String,
    pub clock_ghz: f64,
    pub assumed_ipc: f64,
    /// Instructions per frame of each stage.
    pub stages: BTreeMap<String, u64>,
    pub total: u64,
    /// `total / (assumed_ipc · clock)`.
    pub estimated_ms: f64,
}

/// The plugin and the example, built under `target_dir` (the arm64 build in its `cross/`, beside
/// the aarch64 tests' builds).
fn build(target_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let plugin = target_dir.join("libicount.so");
    checked(Command::new("cc").args(["-shared", "-fPIC", "-O2", "-o"]).arg(&plugin).arg(crate::repo().join("xtask/src/icount.c"))).context("building the qemu plugin (needs a C compiler)")?;
    let target = "aarch64-unknown-linux-gnu";
    let cross_dir = target_dir.join("cross");
    let mut cargo = crate::cross::cargo(target, "build", &["--release", "-p", "faceunlock", "--example", "frame_cost"])?;
    checked(cargo.env("CARGO_TARGET_DIR", &cross_dir)).context("cross-building the frame_cost example (needs the aarch64 rustup target and cargo-zigbuild)")?;
    Ok((plugin, cross_dir.join(target).join("release/examples/frame_cost")))
}

/// Instructions of each stage: one `frame_cost` run of `repeats` per stage after the warm-up,
/// the plugin's count at each marker.
fn board_cost(plugin: &Path, program: &Path, core: &Core, repeats: u64) -> Result<BoardCost> {
    let repo = crate::repo();
    let out = checked(
        Command::new("qemu-aarch64")
            .args(["-cpu", core.qemu_cpu, "-L", crate::AARCH64_SYSROOT, "-plugin"])
            .arg(plugin)
            .arg(program)
            .arg(repo.join("boards").join(format!("{}.toml", core.board)))
            .arg(repo.join("models/manifest.toml"))
            .arg(repeats.to_string())
            .env("TRACT_CPU_AARCH64_KIND", core.tract_kind),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = stdout.lines().next().unwrap_or_default().split_whitespace().collect();
    ensure!(names == STAGES, "frame_cost ran the stages {names:?}, expected {STAGES:?}");
    let marks = String::from_utf8_lossy(&out.stderr).lines().filter_map(|l| l.strip_prefix("mark: ")).map(|n| n.trim().parse::<u64>()).collect::<Result<Vec<_>, _>>()?;
    ensure!(marks.len() == STAGES.len() + 1, "the plugin reported {} markers, expected {} (one before each stage and one after the last)", marks.len(), STAGES.len() + 1);
    let stages: BTreeMap<String, u64> = STAGES.iter().zip(marks.windows(2)).map(|(stage, m)| (stage.to_string(), (m[1] - m[0]) / repeats)).collect();
    let total = stages.values().sum::<u64>();
    Ok(BoardCost {
        board: core.board.into(),
        core: core.name.into(),
        tract_kernels: core.tract_kind.into(),
        clock_ghz: core.clock_ghz,
        assumed_ipc: core.ipc,
        stages,
        total,
        estimated_ms: total as f64 / (core.ipc * core.clock_ghz * 1e6),
    })
}

/// The markdown table of `costs`: one row per stage, one column per board.
fn table(costs: &[BoardCost]) -> String {
    let mut s = format!("| stage |{}\n|---|{}\n", costs.iter().map(|c| format!(" {} |", c.core)).collect::<String>(), "---:|".repeat(costs.len()));
    let millions = |n: u64| format!("{:.1} M", n as f64 / 1e6);
    for stage in STAGES {
        s += &format!("| {stage} |{}\n", costs.iter().map(|c| format!(" {} |", millions(c.stages[stage]))).collect::<String>());
    }
    s += &format!("| **frame** |{}\n", costs.iter().map(|c| format!(" **{}** |", millions(c.total))).collect::<String>());
    s += &format!(
        "| estimate (clock × assumed IPC) |{}\n",
        costs.iter().map(|c| format!(" {:.1} ms ({} GHz × {}) |", c.estimated_ms, c.clock_ghz, c.assumed_ipc)).collect::<String>()
    );
    s
}

/// Every stage that grew more than [`TOLERANCE`] over its recorded count, as one line each.
pub fn regressions(recorded: &[BoardCost], measured: &[BoardCost]) -> Vec<String> {
    let mut out = Vec::new();
    for m in measured {
        let Some(r) = recorded.iter().find(|r| r.board == m.board) else {
            out.push(format!("{}: no recorded counts", m.board));
            continue;
        };
        for (stage, &now) in &m.stages {
            let before = r.stages.get(stage).copied().unwrap_or(0);
            if now as f64 > before as f64 * (1.0 + TOLERANCE) {
                out.push(format!("{} {stage}: {now} instructions, recorded {before} (+{:.1} %)", m.board, 100.0 * (now as f64 / before.max(1) as f64 - 1.0)));
            }
        }
    }
    out
}

pub fn frame_cost(o: &Options) -> Result<()> {
    if o.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    let cores: Vec<&Core> = CORES.iter().filter(|c| o.board.is_empty() || o.board.iter().any(|b| b == c.board)).collect();
    if let Some(unknown) = o.board.iter().find(|b| !CORES.iter().any(|c| c.board == b.as_str())) {
        bail!("--board {unknown}: expected one of rpi3, rpi4, rpi5");
    }
    let recorded: Option<Vec<BoardCost>> = match &o.check {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| format!("{}: expected frame-cost JSON (a list of boards)", path.display()))?)
        }
        None => None,
    };
    let (plugin, program) = build(&crate::target_dir())?;
    let costs = cores.iter().map(|c| board_cost(&plugin, &program, c, o.repeats)).collect::<Result<Vec<_>>>()?;
    print!("{}", table(&costs));
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&costs)? + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(recorded) = recorded {
        let grown = regressions(&recorded, &costs);
        if !grown.is_empty() {
            bail!("instructions per frame grew over the recorded counts by more than {:.0} %:\n{}", TOLERANCE * 100.0, grown.join("\n"));
        }
        println!("every stage within {:.0} % of the recorded counts", TOLERANCE * 100.0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(board: &str, detect: u64) -> BoardCost {
        BoardCost {
            board: board.into(),
            core: String::new(),
            tract_kernels: String::new(),
            clock_ghz: 1.0,
            assumed_ipc: 1.0,
            stages: [("detect".to_string(), detect)].into(),
            total: detect,
            estimated_ms: 0.0,
        }
    }

    #[test]
    fn growth_past_ten_percent_is_a_regression_and_within_it_is_not() {
        assert!(regressions(&[cost("rpi4", 1000)], &[cost("rpi4", 1100)]).is_empty());
        let grown = regressions(&[cost("rpi4", 1000)], &[cost("rpi4", 1101)]);
        assert_eq!(grown.len(), 1, "{grown:?}");
        assert!(grown[0].starts_with("rpi4 detect: 1101 instructions, recorded 1000"), "{}", grown[0]);
        assert!(regressions(&[cost("rpi4", 1000)], &[cost("rpi4", 500)]).is_empty(), "a cut is not a regression");
        assert_eq!(regressions(&[cost("rpi3", 1000)], &[cost("rpi4", 1000)]), ["rpi4: no recorded counts"]);
    }
}
