//! Helpers shared by the firmware's integration tests: where the repository and its shipped
//! manifests are.

use std::path::PathBuf;

/// The repository root: from cargo's run-time `CARGO_MANIFEST_DIR` (a build cache shared between
/// checkouts may hold a binary compiled in another one), else the compile-time one.
pub fn repo() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from).join("..")
}

/// Every manifest shipped in `models/` (`manifest.toml`, `manifest-masked.toml` …), sorted.
#[allow(dead_code)] // not every test binary that includes this module reads the manifests
pub fn shipped_manifests() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("manifest") && n.ends_with(".toml")))
        .collect();
    found.sort();
    found
}
