//! Loaders on the real sets in `../shared/data`. Each test says clearly when the data is absent.

use faceunlock_data::classes::{FaceClass, LabelledClasses};
use faceunlock_data::lfw::Lfw;
use faceunlock_data::lfw_parts::{LfwParts, Split};
use faceunlock_data::sample::{OnError, load_all};
use faceunlock_data::shared_or_skip as shared;

#[test]
fn lfw_has_ten_folds_of_people_and_pairs_and_its_images_load() {
    let Some(root) = shared("data/lfw") else { return };
    let lfw = Lfw::open(&root).unwrap();
    assert_eq!(lfw.people_folds.len(), 10);
    assert_eq!(lfw.pair_folds.len(), 10);
    for fold in 1..=10 {
        let pairs = lfw.pairs(fold);
        assert_eq!(pairs.len(), 600, "fold {fold}");
        assert_eq!(pairs.iter().filter(|p| p.same).count(), 300);
    }
    let (refs, names) = lfw.people_samples(&[1]);
    assert_eq!(names.len(), lfw.people_folds[0].len());
    let loaded = load_all(&refs[..20], OnError::Fail).unwrap();
    assert!(loaded.samples.iter().all(|s| s.image.dimensions() == (250, 250) && s.mask.is_none()));
    // Train and test people never overlap.
    let (train, _) = lfw.people_samples(&[1, 2, 3, 4, 5]);
    let (test, _) = lfw.people_samples(&[6, 7, 8, 9, 10]);
    let train_dirs: std::collections::HashSet<_> = train.iter().map(|r| r.image.parent().unwrap().to_path_buf()).collect();
    assert!(test.iter().all(|r| !train_dirs.contains(r.image.parent().unwrap())));
}

#[test]
fn part_labels_map_to_hair_skin_background_and_mark_the_rest_unknown() {
    let Some(root) = shared("data/lfw-parts") else { return };
    let parts = LfwParts::open(&root).unwrap();
    let sizes: Vec<usize> = [Split::Train, Split::Validation, Split::Test].iter().map(|s| parts.samples(*s).unwrap().0.len()).collect();
    assert_eq!(sizes, [1500, 500, 927]);
    let (refs, _) = parts.samples(Split::Validation).unwrap();
    let loaded = load_all(&refs[..10], OnError::Fail).unwrap();
    let coarse = LabelledClasses::of(&[FaceClass::Background, FaceClass::Skin, FaceClass::Hair]);
    for s in &loaded.samples {
        assert_eq!(s.labelled, coarse);
        let mask = s.mask.as_ref().unwrap();
        assert!(mask.pixels().all(|p| [0, 1, 2].contains(&p.0[0])));
        assert!(mask.pixels().any(|p| p.0[0] == FaceClass::Skin as u8));
    }
}

#[test]
fn a_corrupt_or_missing_file_is_named_or_counted_never_a_panic() {
    let Some(root) = shared("data/lfw-parts") else { return };
    let parts = LfwParts::open(&root).unwrap();
    let (mut refs, _) = parts.samples(Split::Test).unwrap();
    refs.truncate(3);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8 not really a jpeg").unwrap();
    refs[1].image = bad.clone();
    refs[2].image = dir.path().join("missing.jpg");
    let err = load_all(&refs, OnError::Fail).err().unwrap().to_string();
    assert!(err.contains("broken.jpg") || err.contains("missing.jpg"), "{err}");
    let loaded = load_all(&refs, OnError::SkipAndCount).unwrap();
    assert_eq!((loaded.samples.len(), loaded.skipped.len()), (1, 2));
}
