//! `cargo xtask provision --board rpi4 --host user@pi`: build the board's `.deb`, copy it to the
//! board, install it, write the board file to `/etc/faceunlock/board.toml`, enable the service,
//! then run `faceunlock doctor` and `faceunlock bench --json` there and bring the JSON back.
//!
//! `--local DIR` provisions a directory standing in for the board instead (the package is
//! unpacked into it, commands run from it, under `qemu-aarch64` for an arm64 package): what the
//! tests and a dry run use.
//!
//! `cargo xtask frame-cost`: instructions per frame, stage by stage, on emulated Cortex-A53/A72/A76
//! at each Pi's board settings; `--check` fails when a stage grew over the recorded counts.
//!
//! `cargo xtask glibc-floor FILE…`: the newest glibc each binary needs; fails above 2.27 (the
//! oldest JetPack's), the floor every arm64 build links against ([`cross`]).

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod cross;
mod frame_cost;
mod provision;
mod target;

#[derive(Parser)]
#[command(name = "xtask", about = "faceunlock repository tasks")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build, copy, install, configure, enable, then doctor + bench on a board.
    Provision(provision::Options),
    /// Instructions per frame, stage by stage, on emulated Cortex-A53/A72/A76 (qemu plugin) at
    /// each Pi's settings: a cost model, and with --check a regression check.
    FrameCost(frame_cost::Options),
    /// The newest glibc each ELF binary needs; fails above the arm64 floor (2.27).
    GlibcFloor {
        #[arg(required = true)]
        binaries: Vec<PathBuf>,
    },
}

fn run() -> Result<()> {
    match Args::parse().command {
        Command::Provision(o) => provision::provision(&o),
        Command::FrameCost(o) => frame_cost::frame_cost(&o),
        Command::GlibcFloor { binaries } => cross::check_floor(&binaries),
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The repository root (this crate sits in `xtask/`): from cargo's `CARGO_MANIFEST_DIR` at run
/// time (`cargo xtask`, tests), else where this binary was compiled.
fn repo() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from).join("..")
}

/// Where `qemu-aarch64 -L` finds the arm64 loader and libraries (`libc6-dev-arm64-cross`).
const AARCH64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// Where cargo writes its builds: `CARGO_TARGET_DIR`, else `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from)
}
