//! The fuzz targets' corpora replayed on stable Rust: every parser of outside data
//! ([`faceunlock::parsers`]) over its seeds (files of the repository, state files made in code),
//! the corpus its fuzzing grew (`fuzz/corpus/<target>`, minimised) and the inputs of past
//! findings (`fuzz/regressions/<target>`). None may panic. docs/fuzzing.md has the fuzzing runs.

use faceunlock::parsers::PARSERS;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files of `dir`, none if it does not exist.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn every_parser_survives_its_seeds_corpus_and_past_findings() {
    for parser in &PARSERS {
        let seeds = parser.seeds(&repo()).unwrap();
        assert!(!seeds.is_empty(), "{}: no seeds", parser.name);
        seeds.iter().for_each(|s| (parser.run)(s));
        let mut replayed = 0;
        for kind in ["corpus", "regressions"] {
            for (path, bytes) in files(&repo().join("fuzz").join(kind).join(parser.name)) {
                let outcome = std::panic::catch_unwind(|| (parser.run)(&bytes));
                assert!(outcome.is_ok(), "{}: {} panics", parser.name, path.display());
                replayed += 1;
            }
        }
        println!("{:<15} {} seeds, {replayed} corpus and regression inputs", parser.name, seeds.len());
    }
}

/// `cargo test --workspace --test fuzz_corpus -- --ignored --exact write_seeds`: each parser's
/// seeds as files in `fuzz/seeds/<target>/` (not committed), for `cargo fuzz run`.
#[test]
#[ignore]
fn write_seeds() {
    for parser in &PARSERS {
        let dir = repo().join("fuzz/seeds").join(parser.name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in parser.seeds(&repo()).unwrap().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
        }
    }
}

#[test]
fn a_model_tract_panics_on_is_refused_naming_the_file() {
    use faceunlock_core::contract::Manifest;
    let path = repo().join("fuzz/regressions/onnx_model/tract-node-input-names-no-tensor.onnx");
    let manifest = Manifest::load(&repo().join("models/manifest.toml")).unwrap();
    let err = faceunlock::embed::Embedder::from_bytes(&path, &std::fs::read(&path).unwrap(), manifest.embedder.as_ref().unwrap()).err().unwrap().to_string();
    assert!(err.contains("tract-node-input-names-no-tensor.onnx: not a loadable ONNX model: the ONNX reader failed on it (no entry found for key)"), "{err}");
}
