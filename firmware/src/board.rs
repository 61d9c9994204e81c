//! Which configuration applies. In order: `--config FILE`; `/etc/faceunlock/board.toml`, the
//! installer's override; the installed board file whose `board.model_match` occurs in
//! `/proc/device-tree/model`; else built-in defaults (a dev box).

use crate::config::Config;
use std::path::{Path, PathBuf};

pub const OVERRIDE: &str = "/etc/faceunlock/board.toml";
pub const DEVICE_TREE_MODEL: &str = "/proc/device-tree/model";
/// Where the package installs the board files; a checkout's `boards/` is searched after it.
pub const BOARD_DIRS: [&str; 2] = ["/usr/share/faceunlock/boards", "boards"];

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: invalid configuration: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Where the configuration came from, for logs and `doctor`.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    Explicit(PathBuf),
    Override(PathBuf),
    Detected { path: PathBuf, model: String },
    Defaults { model: Option<String> },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Explicit(p) => write!(f, "{} (--config)", p.display()),
            Origin::Override(p) => write!(f, "{} (installer override)", p.display()),
            Origin::Detected { path, model } => write!(f, "{} (matched device-tree model \"{model}\")", path.display()),
            Origin::Defaults { model: Some(m) } => write!(f, "built-in defaults (no board file matches \"{m}\")"),
            Origin::Defaults { model: None } => write!(f, "built-in defaults (no device-tree model: not a board)"),
        }
    }
}

pub fn load_file(path: &Path) -> Result<Config, BoardError> {
    let text = std::fs::read_to_string(path).map_err(|e| BoardError::Read { path: path.into(), message: e.to_string() })?;
    Config::from_toml(&text).map_err(|message| BoardError::Invalid { path: path.into(), message })
}

/// A one-value kernel text file (`/proc`, `/sys`) without its trailing NUL and whitespace;
/// `None` when it is absent or empty.
pub fn read_trimmed(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes).trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string();
    (!text.is_empty()).then_some(text)
}

/// The first board file (directories in order, files by name) whose `model_match` occurs in
/// `model`.
pub fn find_board(model: &str, dirs: &[PathBuf]) -> Result<Option<(PathBuf, Config)>, BoardError> {
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
        files.sort();
        for path in files {
            let cfg = load_file(&path)?;
            if cfg.board.model_match.iter().any(|m| !m.is_empty() && model.contains(m.as_str())) {
                return Ok(Some((path, cfg)));
            }
        }
    }
    Ok(None)
}

/// Pick the configuration as the module doc says. `defaults` is used when nothing matches.
pub fn choose(explicit: Option<&Path>, override_path: &Path, model_path: &Path, dirs: &[PathBuf], defaults: Config) -> Result<(Config, Origin), BoardError> {
    if let Some(p) = explicit {
        return Ok((load_file(p)?, Origin::Explicit(p.into())));
    }
    if override_path.exists() {
        return Ok((load_file(override_path)?, Origin::Override(override_path.into())));
    }
    let model = read_trimmed(model_path);
    if let Some(m) = &model
        && let Some((path, cfg)) = find_board(m, dirs)?
    {
        return Ok((cfg, Origin::Detected { path, model: m.clone() }));
    }
    Ok((defaults, Origin::Defaults { model }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boards_dir() -> Vec<PathBuf> {
        vec![std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from).join("../boards")]
    }

    #[test]
    fn every_board_is_found_from_its_device_tree_model() {
        for (model, id) in [
            ("Raspberry Pi 3 Model B Plus Rev 1.3", "rpi3"),
            ("Raspberry Pi 4 Model B Rev 1.4", "rpi4"),
            ("Raspberry Pi 5 Model B Rev 1.0", "rpi5"),
            ("NVIDIA Jetson Nano Developer Kit", "jetson-nano"),
            ("NVIDIA Jetson Orin Nano Developer Kit", "jetson-orin"),
        ] {
            let (path, cfg) = find_board(model, &boards_dir()).unwrap().unwrap_or_else(|| panic!("no board for {model}"));
            assert_eq!(cfg.board.id, id, "{model} → {}", path.display());
        }
        assert!(find_board("Some Other Board", &boards_dir()).unwrap().is_none());
    }

    #[test]
    fn the_override_wins_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        std::fs::write(&model, b"Raspberry Pi 4 Model B Rev 1.4\0").unwrap();
        let over = dir.path().join("board.toml");
        let (cfg, origin) = choose(None, &over, &model, &boards_dir(), Config::default()).unwrap();
        assert_eq!(cfg.board.id, "rpi4");
        assert!(matches!(origin, Origin::Detected { .. }), "{origin}");

        std::fs::write(&over, "[board]\nid = \"mine\"\ntarget = \"aarch64-unknown-linux-gnu\"\nmodel_match = []\n").unwrap();
        let (cfg, origin) = choose(None, &over, &model, &boards_dir(), Config::default()).unwrap();
        assert_eq!((cfg.board.id.as_str(), origin), ("mine", Origin::Override(over.clone())));

        std::fs::write(&over, "[camera]\nbakend = \"v4l2\"\n").unwrap();
        let err = choose(None, &over, &model, &boards_dir(), Config::default()).unwrap_err().to_string();
        assert!(err.contains("board.toml") && err.contains("bakend"), "{err}");
    }

    #[test]
    fn without_a_device_tree_the_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let (_, origin) = choose(None, &dir.path().join("none.toml"), &dir.path().join("no-model"), &boards_dir(), Config::default()).unwrap();
        assert_eq!(origin, Origin::Defaults { model: None });
    }
}
