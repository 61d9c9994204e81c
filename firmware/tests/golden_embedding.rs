//! tract picks its kernels per CPU (x86 AVX2/FMA; ARM NEON with per-core tunings for Cortex-A53,
//! A55, A72 …); the embedding of a fixed crop must not depend on which. Every shipped embedder
//! (each `models/manifest*.toml`) has its golden file. The golden values were
//! written on x86_64 (`FACEUNLOCK_BLESS=1 cargo test -p faceunlock --test golden_embedding`,
//! which also renders the crop); `cargo xtask cross-test` runs this test for aarch64 under qemu
//! with `TRACT_CPU_AARCH64_KIND=a53` and `=a55`.

mod common;

use common::{repo, shipped_manifests};
use faceunlock::embed::Embedder;
use faceunlock_core::contract::Manifest;
use std::path::Path;

/// Max abs difference allowed per component of the L2-normalised embedding.
const TOLERANCE: f32 = 1e-4;

#[derive(serde::Serialize, serde::Deserialize)]
struct Golden {
    model_sha256: String,
    written_on: String,
    embedding: Vec<f32>,
}

fn bless(crop_path: &Path, crop_size: u32) {
    use faceunlock_data::synth::{Generator, View};
    let g = Generator::new(3);
    let face = g.render(&g.identity(0), &View::posed(12.0, -4.0, 2.0));
    let mut aligner = faceunlock_core::align::Aligner::new(faceunlock_core::geometry::CropSpec::arcface(crop_size));
    aligner.align(&face.image, &face.landmarks).unwrap().save(crop_path).unwrap();
}

/// The golden file of a shipped manifest's embedder: `manifest.toml` → `embedding.json`,
/// `manifest-masked.toml` → `embedding-masked.json` …
fn golden_name(manifest: &Path) -> String {
    let name = manifest.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let suffix = name.strip_prefix("manifest").and_then(|n| n.strip_suffix(".toml")).unwrap_or_default();
    format!("embedding{suffix}.json")
}

#[test]
fn shipped_embedders_give_their_golden_embeddings_on_this_cpu() {
    let manifests = shipped_manifests();
    assert!(manifests.iter().any(|p| p.ends_with("models/manifest.toml")), "models/manifest.toml is missing: {manifests:?}");
    let dir = repo().join("firmware/tests/golden");
    let crop_path = dir.join("crop.png");
    let blessing = std::env::var_os("FACEUNLOCK_BLESS").is_some();
    for manifest_path in manifests {
        let golden_name = golden_name(&manifest_path);
        let entry = Manifest::load(&manifest_path).unwrap().embedder.unwrap_or_else(|| panic!("{} has no [embedder]", manifest_path.display()));
        let golden_path = dir.join(&golden_name);
        if blessing && golden_name == "embedding.json" {
            bless(&crop_path, entry.crop_size);
        }
        let mut embedder = Embedder::from_manifest(&repo().join("models"), &entry).unwrap();
        let crop = image::open(&crop_path).unwrap().to_rgb8();
        let embedding = embedder.embed(&crop).unwrap().to_vec();
        if blessing {
            let golden = Golden { model_sha256: entry.sha256.clone(), written_on: std::env::consts::ARCH.into(), embedding };
            std::fs::write(&golden_path, serde_json::to_string_pretty(&golden).unwrap()).unwrap();
            continue;
        }
        let text = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| panic!("{}: {e}; bless it on x86_64 (see the module docs)", golden_path.display()));
        let golden: Golden = serde_json::from_str(&text).unwrap();
        assert_eq!(
            golden.model_sha256, entry.sha256,
            "{} was written for another embedder than {}'s; re-bless it on x86_64 after shipping a model",
            golden_path.display(),
            manifest_path.display()
        );
        let max = golden.embedding.iter().zip(&embedding).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        eprintln!(
            "{golden_name} on {} (TRACT_CPU_AARCH64_KIND={:?}): max abs diff {max:.2e} vs {} (tolerance {TOLERANCE:.0e})",
            std::env::consts::ARCH,
            std::env::var("TRACT_CPU_AARCH64_KIND").ok(),
            golden.written_on
        );
        assert_eq!(embedding.len(), golden.embedding.len());
        assert!(max <= TOLERANCE, "{golden_name}: max abs diff {max:.2e} > {TOLERANCE:.0e}");
    }
}
