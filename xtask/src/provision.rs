//! The provisioning steps, in order, against any [`Target`].

use crate::target::{LocalRoot, Ssh, Target, checked};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Options {
    /// Board id: a file `boards/<id>.toml`.
    #[arg(long)]
    pub board: String,
    /// The board over SSH, `user@address`.
    #[arg(long, required_unless_present = "local", conflicts_with = "local")]
    pub host: Option<String>,
    /// A directory standing in for the board's root file system.
    #[arg(long)]
    pub local: Option<PathBuf>,
    /// A package already built (skips `cargo deb`).
    #[arg(long)]
    pub deb: Option<PathBuf>,
    /// A detector ONNX to install and use instead of the manifest's `[detector]`.
    #[arg(long)]
    pub detector: Option<PathBuf>,
    #[arg(long, default_value_t = 50)]
    pub frames: usize,
    /// Where the board's bench JSON is written here.
    #[arg(long, default_value = "runs/provision")]
    pub out: PathBuf,
}

const REMOTE_DEB: &str = "/var/tmp/faceunlock.deb";
const REMOTE_BOARD: &str = "/etc/faceunlock/board.toml";
const REMOTE_DETECTOR: &str = "/usr/share/faceunlock/models/detector-dev.onnx";
const REMOTE_BENCH: &str = "/var/tmp/faceunlock-bench.json";

#[derive(serde::Deserialize)]
struct BoardFile {
    board: BoardHead,
}

#[derive(serde::Deserialize)]
struct BoardHead {
    id: String,
    target: String,
    /// The cargo-deb variant this board installs (`jetson`); none: the plain package.
    deb_variant: Option<String>,
}

fn read_board(path: &Path) -> Result<BoardHead> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {} (expected a board file; see boards/)", path.display()))?;
    let file: BoardFile = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(file.board)
}

/// Build the firmware for the board's target (arm64: against the glibc floor, checked), then
/// package it with `cargo deb` (the board's variant, if any); the path of the package.
fn build_deb(board: &BoardHead) -> Result<PathBuf> {
    let target = board.target.as_str();
    checked(&mut crate::cross::cargo(target, "build", &["--release", "-p", "faceunlock"])?).with_context(|| format!("building the firmware for {target}"))?;
    if target.starts_with("aarch64") {
        crate::cross::check_floor(&[crate::target_dir().join(target).join("release/faceunlock")])?;
    }
    let mut deb = crate::cross::plain_cargo();
    deb.args(["deb", "-p", "faceunlock", "--no-build", "--target", target]);
    if let Some(variant) = &board.deb_variant {
        deb.args(["--variant", variant]);
    }
    let out = checked(&mut deb).context("building the package (needs `cargo install cargo-deb`)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout.lines().rev().find(|l| l.trim_end().ends_with(".deb")).context("cargo deb printed no .deb path")?;
    Ok(PathBuf::from(path.trim()))
}

/// A runner for the package's binaries on this host.
fn runner_for(target: &str) -> Vec<String> {
    if target.starts_with("aarch64") && std::env::consts::ARCH != "aarch64" {
        ["qemu-aarch64", "-cpu", "cortex-a72", "-L", crate::AARCH64_SYSROOT].map(String::from).to_vec()
    } else {
        Vec::new()
    }
}

fn step<T>(what: &str, r: Result<T>) -> Result<T> {
    println!("- {what}");
    r.with_context(|| format!("step \"{what}\" failed"))
}

pub fn provision(o: &Options) -> Result<()> {
    let board_file = crate::repo().join("boards").join(format!("{}.toml", o.board));
    let board = read_board(&board_file)?;
    if board.id != o.board {
        bail!("{}: board.id is `{}`, expected `{}`", board_file.display(), board.id, o.board);
    }
    let target: Box<dyn Target> = match (&o.host, &o.local) {
        (Some(host), _) => Box::new(Ssh { host: host.clone() }),
        (None, Some(root)) => Box::new(LocalRoot { root: root.clone(), runner: runner_for(&board.target) }),
        (None, None) => bail!("give --host USER@ADDRESS or --local DIR"),
    };
    let deb = match &o.deb {
        Some(p) => p.clone(),
        None => step(&format!("build the package for {}", board.target), build_deb(&board))?,
    };
    step(&format!("copy {}", deb.display()), target.put(&deb, REMOTE_DEB, 0o644))?;
    step("install the package", target.install(REMOTE_DEB))?;
    step(&format!("write {REMOTE_BOARD}"), target.put(&board_file, REMOTE_BOARD, 0o644))?;
    let mut detector_args = Vec::new();
    if let Some(d) = &o.detector {
        step(&format!("install the detector {}", d.display()), target.put(d, REMOTE_DETECTOR, 0o644))?;
        detector_args = vec!["--detector".to_string(), target.path(REMOTE_DETECTOR)];
    }
    step("enable the service", target.enable_service())?;
    let doctor = step("faceunlock doctor", target.faceunlock(&[detector_args.clone(), vec!["doctor".into()]].concat()))?;
    print!("{}", String::from_utf8_lossy(&doctor.stdout));
    let bench_args = [detector_args, vec!["bench".into(), "--frames".into(), o.frames.to_string(), "--json".into(), target.path(REMOTE_BENCH)]].concat();
    let bench = step("faceunlock bench", target.faceunlock(&bench_args))?;
    print!("{}", String::from_utf8_lossy(&bench.stdout));
    if !bench.status.success() {
        bail!("faceunlock bench failed ({}): {}", bench.status, String::from_utf8_lossy(&bench.stderr).trim());
    }
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let local = o.out.join(format!("{}-bench.json", o.board));
    step(&format!("fetch the bench report to {}", local.display()), target.get(REMOTE_BENCH, &local))?;
    println!("provisioned {}: doctor {}", o.board, if doctor.status.success() { "READY" } else { "NOT READY (see above)" });
    Ok(())
}
