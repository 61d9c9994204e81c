//! The generator's written layout, read back through the loader, and its class coverage.

use faceunlock_data::classes::{FaceClass, NUM_CLASSES};
use faceunlock_data::sample::{OnError, load_all};
use faceunlock_data::sheet::ClassFrequency;
use faceunlock_data::synth::Generator;
use faceunlock_data::synth::writer::write_dataset;
use faceunlock_data::synth_set::SynthSet;
use rayon::prelude::*;

#[test]
fn the_same_seed_writes_identical_bytes_and_the_loader_reads_them_back() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let g = Generator::new(21);
    write_dataset(&g, 2, 3, a.path(), &|_| {}).unwrap();
    write_dataset(&g, 2, 3, b.path(), &|_| {}).unwrap();
    for f in ["dataset.json", "manifest.jsonl", "images/p0001_v00002.jpg", "masks/p0001_v00002.png"] {
        assert_eq!(std::fs::read(a.path().join(f)).unwrap(), std::fs::read(b.path().join(f)).unwrap(), "{f}");
    }
    let set = SynthSet::open(a.path()).unwrap();
    assert_eq!(set.records.len(), 6);
    let loaded = load_all(&set.samples(), OnError::Fail).unwrap();
    assert!(loaded.samples.iter().all(|s| s.mask.is_some() && s.landmarks.is_some() && s.image.width() >= 256));
}

#[test]
fn every_class_appears_in_a_thousand_images() {
    let g = Generator::new(1);
    let masks: Vec<_> = (0..1000u32).into_par_iter().map(|i| g.render(&g.identity(i / 20), &g.view(i / 20, i % 20)).mask).collect();
    let mut freq = ClassFrequency::default();
    masks.iter().for_each(|m| freq.add(m));
    for c in FaceClass::ALL {
        assert!(freq.images[c as usize] > 0, "{} never appears:\n{}", c.name(), freq.table());
    }
    assert_eq!(freq.pixels.len(), NUM_CLASSES);
}

#[test]
fn a_broken_manifest_line_is_reported_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&Generator::new(2), 1, 2, dir.path(), &|_| {}).unwrap();
    let path = dir.path().join("manifest.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"image\": 3}\n");
    std::fs::write(&path, text).unwrap();
    let err = SynthSet::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("manifest.jsonl:3"), "{err}");
}
