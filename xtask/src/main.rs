//! `cargo xtask provision --board rpi4 --host user@pi`: build the board's `.deb`, copy it to the
//! board, install it, write the board file to `/etc/faceunlock/board.toml`, enable the service,
//! then run `faceunlock doctor` and `faceunlock bench --json` there and bring the JSON back.
//!
//! `--local DIR` provisions a directory standing in for the board instead (the package is
//! unpacked into it, commands run from it, under `qemu-aarch64` for an arm64 package): what the
//! tests and a dry run use.
//!
//! `cargo xtask embed-cost`: instructions per embed on emulated Cortex-A53/A72/A76.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod embed_cost;
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
    /// Instructions per embed on emulated Cortex-A53/A72/A76 (qemu plugin), a cost proxy.
    EmbedCost(embed_cost::Options),
}

fn run() -> Result<()> {
    match Args::parse().command {
        Command::Provision(o) => provision::provision(&o),
        Command::EmbedCost(o) => embed_cost::embed_cost(&o),
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

/// `cargo` in the repository, with the cross linker and C compiler set for an aarch64 `target`.
fn cargo(target: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(repo());
    if target.starts_with("aarch64") {
        cmd.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc").env("CC_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-gcc");
    }
    cmd
}
