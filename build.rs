//! Validates every board file at build time: each `boards/*.toml` must parse as the firmware's
//! `Config` (unknown keys rejected), pass its consistency checks, and name itself by its file.

#[allow(dead_code)]
#[path = "firmware/src/config.rs"]
mod config;

fn main() {
    println!("cargo:rerun-if-changed=boards");
    println!("cargo:rerun-if-changed=firmware/src/config.rs");
    let mut files: Vec<_> = std::fs::read_dir("boards")
        .expect("boards/ must exist beside build.rs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "boards/ holds no *.toml board file");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let cfg = config::Config::from_toml(&text).unwrap_or_else(|e| panic!("{}: invalid board file: {e}", path.display()));
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        assert_eq!(cfg.board.id, stem, "{}: board.id must equal the file name", path.display());
        assert!(!cfg.board.target.is_empty(), "{}: board.target (a Rust target triple) is required", path.display());
    }
}
