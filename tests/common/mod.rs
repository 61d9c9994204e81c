//! Helpers for the end-to-end tests in `tests/`: where the shipped models and the shared
//! development data are, and an unlocker wired to the shipped models.
//!
//! ```no_run
//! let dir = tempfile::tempdir().unwrap();
//! let unlocker = faceunlock_e2e::unlocker(dir.path()).unwrap();
//! assert!(unlocker.threshold > 0.0);
//! ```

use faceunlock::app::Unlocker;
use faceunlock::config::{Config, ModelsConfig, StorageConfig};
use std::path::{Path, PathBuf};

/// The repository root: where cargo says it is at run time (a build cache shared between
/// checkouts may hold a binary compiled in another one), else where it was compiled.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// Config using the shipped `models/manifest.toml` and a state directory of the test's own.
pub fn config(state_dir: &Path) -> Config {
    Config {
        models: ModelsConfig { manifest: repo_root().join("models/manifest.toml") },
        storage: StorageConfig { state_dir: state_dir.into(), keep_images: false, key_file: state_dir.with_extension("key") },
        ..Config::default()
    }
}

/// An unlocker with the shipped detector and embedder (`models/manifest.toml`).
pub fn unlocker(state_dir: &Path) -> anyhow::Result<Unlocker> {
    Unlocker::open(config(state_dir), None)
}
