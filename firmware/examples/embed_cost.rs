//! Run only the embed stage, `N` times, on one aligned crop: the workload that
//! `cargo xtask embed-cost` counts instructions of under qemu (threads: 1).
//!
//! `embed_cost MANIFEST CROP.png N`

use faceunlock::embed::Embedder;
use faceunlock_core::contract::Manifest;
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, manifest, crop, n] = args.as_slice() else { anyhow::bail!("usage: embed_cost MANIFEST CROP.png N") };
    let manifest = Path::new(manifest);
    let entry = Manifest::load(manifest)?.embedder(manifest)?.clone();
    let mut embedder = Embedder::from_manifest(manifest.parent().unwrap_or(Path::new(".")), &entry)?;
    let crop = image::open(crop)?.to_rgb8();
    for _ in 0..n.parse::<usize>()? {
        std::hint::black_box(embedder.embed(&crop)?);
    }
    Ok(())
}
