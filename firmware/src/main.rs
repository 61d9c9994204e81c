//! `faceunlock`: enrol, verify, run the unlock service, benchmark and diagnose.

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use faceunlock::app::Unlocker;
use faceunlock::config::Config;
use faceunlock::frame::{FrameSource, ImageFiles, StillImage};
use std::path::{Path, PathBuf};

mod commands;

#[global_allocator]
static ALLOC: faceunlock::cost::CountingAllocator = faceunlock::cost::CountingAllocator;

#[derive(Parser)]
#[command(name = "faceunlock", version, about = "Face unlock: enrol, verify, run, bench, doctor")]
struct Args {
    /// Configuration file (a board file). Default: /etc/faceunlock/board.toml if it exists, else
    /// the board file matching /proc/device-tree/model, else built-in defaults (dev box).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Model manifest, overriding the config.
    #[arg(long, global = true)]
    models: Option<PathBuf>,
    /// State directory (templates, lockout), overriding the config.
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// Store key file (seals the state directory's files), overriding the config.
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Detector ONNX overriding the manifest's (e.g. ../shared/models/yunet.onnx).
    #[arg(long, global = true)]
    detector: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol a person from several frames.
    Enroll {
        #[arg(long)]
        name: String,
        /// Image file or directory instead of the camera.
        #[arg(long)]
        source: Option<PathBuf>,
    },
    /// One verification attempt; exit status 0 when unlocked, 3 when rejected.
    Verify {
        #[arg(long)]
        source: Option<PathBuf>,
    },
    /// The service loop: attempts back to back, relay pulses on acceptance, lockout on failures.
    Run {
        #[arg(long)]
        source: Option<PathBuf>,
    },
    /// List enrolled people.
    List,
    /// Remove an enrolled person.
    Remove { name: String },
    /// Remove every enrolled person.
    Clear {
        #[arg(long)]
        yes: bool,
    },
    /// Print the embedding of each image as a JSON line (for evaluation tools).
    Embed { images: Vec<PathBuf> },
    /// Per-stage latency over N frames: p50/p95/p99, cold vs warm, table + JSON.
    Bench {
        #[arg(long, default_value_t = 100)]
        frames: usize,
        /// Image file or directory; default: generated faces.
        #[arg(long)]
        source: Option<PathBuf>,
        /// Write the JSON report here as well.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Check camera, models, GPIO and configuration, with a verdict.
    Doctor,
    /// Drive the relay to locked and exit (systemd `ExecStopPost`).
    Lock,
    /// Create the store key that seals templates and lockout state (32 random bytes, mode 0400;
    /// the package's postinst runs it). Never replaces an existing key.
    Keygen {
        /// Where to write it; default: the configuration's `storage.key_file`.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Enrol 3 generated people, verify them at other poses, reject 10 strangers. The threshold
    /// is calibrated at FAR 1e-3 on 30 other generated people, unless the configuration sets one.
    Demo {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Decide with the manifest's threshold (calibrated on LFW photos) instead.
        #[arg(long)]
        manifest_threshold: bool,
    },
    /// Presentation-attack check on generated attempts: per person one live (head turning) and
    /// one attack (a print or a screen, moved or held still); prints live rejection and attack
    /// acceptance at the configured thresholds.
    LivenessEval {
        #[arg(long, default_value_t = 500)]
        people: u32,
        /// Generator seed: tune on one, report on another.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also print the rates over a range of `liveness.min_parallax` values.
        #[arg(long)]
        sweep: bool,
        /// Write each attempt's assessment here as JSON lines.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn load_config(args: &Args) -> Result<Config> {
    use faceunlock::board;
    let dirs: Vec<PathBuf> = board::BOARD_DIRS.iter().map(PathBuf::from).collect();
    let storage = faceunlock::config::StorageConfig { state_dir: default_state_dir(), keep_images: false, key_file: default_key_file() };
    let defaults = Config { storage, ..Config::default() };
    let (mut cfg, origin) = board::choose(args.config.as_deref(), Path::new(board::OVERRIDE), Path::new(board::DEVICE_TREE_MODEL), &dirs, defaults)?;
    log::info!("configuration: {origin}");
    if let Some(m) = &args.models {
        cfg.models.manifest = m.clone();
    }
    if let Some(s) = &args.state_dir {
        cfg.storage.state_dir = s.clone();
    }
    if let Some(k) = &args.key_file {
        cfg.storage.key_file = k.clone();
    }
    Ok(cfg)
}

/// Without a config file: `$XDG_STATE_HOME/faceunlock` or `~/.local/state/faceunlock`.
fn default_state_dir() -> PathBuf {
    user_dir("XDG_STATE_HOME", ".local/state").join("faceunlock")
}

/// Without a config file: `$XDG_CONFIG_HOME/faceunlock/store.key` or `~/.config/…`.
fn default_key_file() -> PathBuf {
    user_dir("XDG_CONFIG_HOME", ".config").join("faceunlock/store.key")
}

fn user_dir(variable: &str, under_home: &str) -> PathBuf {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(under_home)))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A still image or a directory given on the command line, else the configured camera.
pub fn open_source(cfg: &Config, source: Option<&Path>) -> Result<Box<dyn FrameSource>> {
    match source {
        Some(p) if p.is_dir() => Ok(Box::new(ImageFiles::open_dir(p, false)?)),
        Some(p) => Ok(Box::new(StillImage::open(p)?)),
        None => commands::open_camera(cfg),
    }
}

fn run() -> Result<i32> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let cfg = load_config(&args)?;
    let detector = args.detector.as_deref();
    let open = |cfg: Config| Unlocker::open(cfg, detector);
    match &args.command {
        Command::Enroll { name, source } => commands::enroll(open(cfg.clone())?, name, open_source(&cfg, source.as_deref())?),
        Command::Verify { source } => commands::verify(open(cfg.clone())?, open_source(&cfg, source.as_deref())?),
        Command::Run { source } => commands::run_service(open(cfg.clone())?, open_source(&cfg, source.as_deref())?),
        Command::List => commands::list(&open(cfg)?),
        Command::Remove { name } => {
            open(cfg)?.store.remove(name)?;
            println!("removed {name}");
            Ok(0)
        }
        Command::Clear { yes } => {
            if !yes {
                bail!("`clear` removes every enrolled person; confirm with --yes");
            }
            open(cfg)?.store.clear()?;
            println!("cleared all templates");
            Ok(0)
        }
        Command::Embed { images } => commands::embed(open(cfg)?, images),
        Command::Bench { frames, source, json } => commands::bench(open(cfg.clone())?, &cfg, *frames, source.as_deref(), json.as_deref()),
        Command::Doctor => Ok(commands::doctor(&cfg, detector)),
        Command::Lock => commands::lock(&cfg),
        Command::Keygen { out } => commands::keygen(out.as_deref().unwrap_or(&cfg.storage.key_file)),
        Command::Demo { seed, manifest_threshold } => commands::demo(cfg, detector, *seed, *manifest_threshold),
        Command::LivenessEval { people, seed, sweep, out } => commands::liveness_eval(cfg, detector, *people, *seed, *sweep, out.as_deref()),
    }
}

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
