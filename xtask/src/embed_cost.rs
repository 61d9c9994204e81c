//! `cargo xtask embed-cost`: instructions per embed on emulated Cortex-A53, A72 and A76, a cost
//! proxy that does not depend on the host's speed or load. The firmware's `embed_cost` example
//! (release, aarch64) runs the embed stage 1 and 1 + N times under `qemu-aarch64` with an
//! instruction-counting plugin (`icount.c`, built here with `cc`); the difference over N is the
//! cost of one embed, model loading excluded. tract's kernel family is forced per core with
//! `TRACT_CPU_AARCH64_KIND` (qemu shows the host's /proc/cpuinfo to the guest).

use crate::target::checked;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Args)]
pub struct Options {
    /// Extra embeds of the second run (the per-embed figure is the difference over these).
    #[arg(long, default_value_t = 5)]
    pub repeats: u64,
}

/// (qemu CPU model, tract kernel family) per board core.
const CORES: [(&str, &str, &str); 3] = [("Cortex-A53 (Pi 3)", "cortex-a53", "a53"), ("Cortex-A72 (Pi 4)", "cortex-a72", "a72"), ("Cortex-A76 (Pi 5)", "cortex-a76", "a75")];

fn build(target_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let plugin = target_dir.join("libicount.so");
    checked(Command::new("cc").args(["-shared", "-fPIC", "-O2", "-o"]).arg(&plugin).arg(crate::repo().join("xtask/src/icount.c"))).context("building the qemu plugin (needs a C compiler)")?;
    let target = "aarch64-unknown-linux-gnu";
    checked(&mut crate::cross::cargo(target, "build", &["--release", "-p", "faceunlock", "--example", "embed_cost"])?).context("cross-building the embed_cost example (needs the aarch64 rustup target and cargo-zigbuild)")?;
    Ok((plugin, target_dir.join("aarch64-unknown-linux-gnu/release/examples/embed_cost")))
}

fn instructions(plugin: &Path, program: &Path, cpu: &str, kind: &str, embeds: u64) -> Result<u64> {
    let repo = crate::repo();
    let out = checked(
        Command::new("qemu-aarch64")
            .args(["-cpu", cpu, "-L", crate::AARCH64_SYSROOT, "-plugin"])
            .arg(plugin)
            .arg(program)
            .arg(repo.join("models/manifest.toml"))
            .arg(repo.join("firmware/tests/golden/crop.png"))
            .arg(embeds.to_string())
            .env("TRACT_CPU_AARCH64_KIND", kind),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find_map(|l| l.strip_prefix("instructions: ")).context("the plugin printed no count")?;
    Ok(line.trim().parse()?)
}

pub fn embed_cost(o: &Options) -> Result<()> {
    let (plugin, program) = build(&crate::target_dir())?;
    println!("| core | tract kernels | instructions per embed |\n|---|---|---:|");
    for (name, cpu, kind) in CORES {
        let once = instructions(&plugin, &program, cpu, kind, 1)?;
        let more = instructions(&plugin, &program, cpu, kind, 1 + o.repeats)?;
        println!("| {name} | {kind} | {:.1} M |", more.saturating_sub(once) as f64 / o.repeats as f64 / 1e6);
    }
    Ok(())
}
