//! Every parser that reads data from outside, one entry point each: what the cargo-fuzz targets
//! in `fuzz/` drive and what `firmware/tests/fuzz_corpus.rs` replays on stable Rust. An entry
//! returns nothing: an error is the expected outcome of most inputs; a panic, an abort or a
//! runaway allocation is a finding.

use crate::config::Config;
use crate::embed::Embedder;
use crate::state::sealed::{self, Kind, Sealer};
use crate::{detect, frame, state, templates};
use faceunlock_core::contract::{EmbedderEntry, Manifest};
use std::path::Path;
use std::sync::OnceLock;

/// A parser's entry for the corpus replay. The fuzz targets call the entry functions directly: a
/// target reached through this table would link every parser, tract included, and libFuzzer would
/// scan tract's coverage counters after each input of even the smallest parser.
pub struct Parser {
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// Files and directories of the repository whose files seed the corpus.
    pub seed_paths: &'static [&'static str],
    /// Seeds made in code: state files sealed under the fuzzing key.
    pub made_seeds: fn() -> Vec<Vec<u8>>,
}

pub const PARSERS: [Parser; 7] = [
    Parser { name: "sealed_state", run: sealed_state, seed_paths: &[], made_seeds: sealed_seeds },
    Parser { name: "template_store", run: template_store, seed_paths: &[], made_seeds: template_seeds },
    Parser { name: "lockout_state", run: lockout_state, seed_paths: &[], made_seeds: lockout_seeds },
    Parser { name: "board_config", run: board_config, seed_paths: &["boards"], made_seeds: Vec::new },
    Parser { name: "model_manifest", run: model_manifest, seed_paths: &["models/manifest.toml", "models/manifest-masked.toml"], made_seeds: Vec::new },
    Parser { name: "image", run: image, seed_paths: &["firmware/tests/golden/crop.png", "firmware/tests/golden/frame.png"], made_seeds: image_seeds },
    Parser { name: "onnx_model", run: onnx_model, seed_paths: &["models/detector.onnx"], made_seeds: Vec::new },
];

impl Parser {
    /// Its seeds: the files under `seed_paths` (relative to `repo`) and the ones made in code.
    pub fn seeds(&self, repo: &Path) -> std::io::Result<Vec<Vec<u8>>> {
        let mut seeds = (self.made_seeds)();
        for relative in self.seed_paths {
            let path = repo.join(relative);
            let files = if path.is_dir() { std::fs::read_dir(&path)?.map(|e| e.map(|e| e.path())).collect::<Result<Vec<_>, _>>()? } else { vec![path] };
            for file in files {
                seeds.push(std::fs::read(&file).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.display())))?);
            }
        }
        Ok(seeds)
    }
}

/// Named in the parsers' error messages.
const PATH: &str = "fuzz-input";

fn fuzz_sealer() -> &'static Sealer {
    static SEALER: OnceLock<Sealer> = OnceLock::new();
    SEALER.get_or_init(|| sealed::fixed_sealer(0x5e, "fuzz-device"))
}

/// A sealed state file, opened as both kinds, and its key fingerprint.
pub fn sealed_state(data: &[u8]) {
    for kind in [Kind::Templates, Kind::Lockout] {
        let _ = fuzz_sealer().open(Path::new(PATH), kind, data);
    }
    let _ = sealed::key_fingerprint(data);
}

/// `templates.v1` (header, length, CRC) and the templates JSON inside it or alone.
pub fn template_store(data: &[u8]) {
    if let Ok(body) = templates::decode_v1(Path::new(PATH), data) {
        let _ = templates::decode_templates(&body);
    }
    let _ = templates::decode_templates(data);
}

/// The lockout JSON.
pub fn lockout_state(data: &[u8]) {
    let _ = state::decode_lockout(data);
}

/// A board TOML with its validation.
pub fn board_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_toml(text);
    }
}

/// A model manifest TOML.
pub fn model_manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Manifest::from_toml(Path::new(PATH), text);
    }
}

/// A JPEG or PNG enrol/verify source, with its size limits.
pub fn image(data: &[u8]) {
    let _ = frame::decode_image(Path::new(PATH), data);
}

/// The shipped embedder's contract (names, shapes), which a model must meet to load.
fn embedder_contract() -> &'static EmbedderEntry {
    static ENTRY: OnceLock<EmbedderEntry> = OnceLock::new();
    ENTRY.get_or_init(|| {
        let text = include_str!("../../models/manifest.toml");
        Manifest::from_toml(Path::new("models/manifest.toml"), text).ok().and_then(|m| m.embedder).expect("the shipped manifest has an [embedder]")
    })
}

/// An ONNX file loaded as the embedder (against the shipped contract) and as the detector.
pub fn onnx_model(data: &[u8]) {
    let _ = Embedder::from_bytes(Path::new(PATH), data, embedder_contract());
    let _ = detect::YuNet::from_bytes(Path::new(PATH), data, [160, 128]);
}

fn sample_templates() -> templates::Templates {
    let person = |name: &str, k: usize| templates::Person { name: name.into(), templates: (0..k).map(|t| (0..4).map(|d| (t + d) as f32 * 0.25).collect()).collect(), enrolled_at: 1_764_806_400 };
    templates::Templates { model_sha256: "3e95131a40b64a25".into(), dim: 4, people: vec![person("alice", 2), person("bob.o-k_2", 1)] }
}

fn sample_lockout() -> Vec<u8> {
    serde_json::to_vec(&crate::decision::Lockout { consecutive_failures: 3, lockouts: 1, locked_until: 1_764_806_460 }).expect("lockout serialises")
}

fn sealed_seeds() -> Vec<Vec<u8>> {
    let templates = serde_json::to_vec(&sample_templates()).expect("templates serialise");
    [(Kind::Templates, templates), (Kind::Lockout, sample_lockout())].iter().map(|(kind, plain)| fuzz_sealer().seal(*kind, plain).expect("the system's random source")).collect()
}

fn template_seeds() -> Vec<Vec<u8>> {
    vec![templates::encode_v1(&sample_templates()), serde_json::to_vec(&sample_templates()).expect("templates serialise")]
}

fn lockout_seeds() -> Vec<Vec<u8>> {
    vec![sample_lockout()]
}

/// A small JPEG next to the repository's PNGs.
fn image_seeds() -> Vec<Vec<u8>> {
    let img = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([(x * 10) as u8, (y * 15) as u8, 128]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&img).expect("encoding a JPEG in memory");
    vec![jpeg]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_seeds_parse_as_their_parser_expects() {
        let plain = fuzz_sealer().open(Path::new(PATH), Kind::Templates, &sealed_seeds()[0]).unwrap();
        assert_eq!(templates::decode_templates(&plain).unwrap(), sample_templates());
        for seed in template_seeds() {
            let body = templates::decode_v1(Path::new(PATH), &seed).map_or(seed, |b| b);
            assert_eq!(templates::decode_templates(&body).unwrap(), sample_templates());
        }
        assert_eq!(state::decode_lockout(&lockout_seeds()[0]).unwrap().consecutive_failures, 3);
        assert_eq!(frame::decode_image(Path::new(PATH), &image_seeds()[0]).unwrap().dimensions(), (24, 16));
    }

    #[test]
    fn an_image_claiming_gigapixels_is_refused_before_allocation() {
        // A PNG header (IHDR) for 100000 x 100000 pixels, no data.
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&crc32fast::hash(&png[12..]).to_be_bytes());
        let err = frame::decode_image(Path::new("huge.png"), &png).unwrap_err().to_string();
        assert!(err.starts_with("huge.png: not a decodable image") && err.contains("limit"), "{err}");
    }
}
