//! Assembling a training set from the sources at hand: generated faces (14-class masks),
//! LFW identities of `people.txt` folds 1-5, and LFW Part Labels masks of those same people.
//! People of folds 6-10 are never trained on: they are the open-set test.

use crate::landmarks::CachedFace;
use anyhow::{Context, Result};
use faceunlock_data::lfw::Lfw;
use faceunlock_data::lfw_parts::{LfwParts, Split};
use faceunlock_data::sample::SampleRef;
use faceunlock_data::synth_set::SynthSet;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const TRAIN_FOLDS: [usize; 5] = [1, 2, 3, 4, 5];
pub const TEST_FOLDS: [usize; 5] = [6, 7, 8, 9, 10];

/// All samples with dense identities across sources, and how many were dropped for want of
/// landmarks.
#[derive(Default)]
pub struct Pool {
    pub samples: Vec<SampleRef>,
    pub identities: usize,
    pub missing_landmarks: usize,
}

impl Pool {
    pub fn add_synth(&mut self, dir: &Path) -> Result<()> {
        let set = SynthSet::open(dir)?;
        let offset = self.identities as u32;
        self.samples.extend(set.samples().into_iter().map(|mut r| {
            r.identity += offset;
            r
        }));
        self.identities += set.info.people as usize;
        Ok(())
    }

    /// A packed directory (see `faceunlock_data::packed`), identities offset past those held.
    pub fn add_packed(&mut self, dir: &Path) -> Result<()> {
        let refs = faceunlock_data::packed::open(dir)?;
        let offset = self.identities as u32;
        let count = refs.iter().map(|r| r.identity + 1).max().unwrap_or(0);
        self.samples.extend(refs.into_iter().map(|mut r| {
            r.identity += offset;
            r
        }));
        self.identities += count as usize;
        Ok(())
    }

    /// LFW people of folds 1-5, and (when given) their LFW Part Labels masks.
    pub fn add_lfw(&mut self, lfw_root: &Path, parts_root: Option<&Path>, faces: &HashMap<PathBuf, CachedFace>) -> Result<()> {
        let lfw = Lfw::open(lfw_root)?;
        let (refs, names) = lfw.people_samples(&TRAIN_FOLDS);
        let offset = self.identities as u32;
        for mut r in refs {
            match faces.get(&r.image) {
                Some(f) => {
                    r.landmarks = Some(f.landmarks);
                    r.identity += offset;
                    self.samples.push(r);
                }
                None => self.missing_landmarks += 1,
            }
        }
        if let Some(parts_root) = parts_root {
            let parts = LfwParts::open(parts_root)?;
            let by_name: HashMap<&str, u32> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
            for split in [Split::Train, Split::Validation, Split::Test] {
                let (refs, part_names) = parts.samples(split)?;
                for mut r in refs {
                    let Some(id) = by_name.get(part_names[r.identity as usize].as_str()) else { continue };
                    match faces.get(&r.image) {
                        Some(f) => {
                            r.landmarks = Some(f.landmarks);
                            r.identity = offset + id;
                            self.samples.push(r);
                        }
                        None => self.missing_landmarks += 1,
                    }
                }
            }
        }
        self.identities += names.len();
        Ok(())
    }
}

/// Per identity: `test_fraction` of its images to test (closed-set protocol), then
/// `val_fraction` of the rest to validation; identities with one image stay in training.
pub struct Splits {
    pub train: Vec<SampleRef>,
    pub val: Vec<SampleRef>,
    pub test: Vec<SampleRef>,
}

pub fn split(samples: Vec<SampleRef>, test_fraction: f64, val_fraction: f64, seed: u64) -> Splits {
    let mut by_id: BTreeMap<u32, Vec<SampleRef>> = BTreeMap::new();
    for s in samples {
        by_id.entry(s.identity).or_default().push(s);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Splits { train: vec![], val: vec![], test: vec![] };
    for (_, items) in by_id {
        // Part-label photos are other crops of LFW photos: keep them out of every held-out set.
        let (coarse, mut items): (Vec<_>, Vec<_>) =
            items.into_iter().partition(|s| s.mask.as_ref().is_some_and(|m| m.encoding.is_coarse()));
        out.train.extend(coarse);
        items.shuffle(&mut rng);
        let n = items.len();
        let n_test = if n >= 3 { ((n as f64 * test_fraction).round() as usize).max(1) } else { 0 };
        let rest = n - n_test;
        let n_val = if rest >= 3 { ((rest as f64 * val_fraction).round() as usize).max(1) } else { 0 };
        out.test.extend(items.drain(..n_test));
        out.val.extend(items.drain(..n_val));
        out.train.extend(items);
    }
    out
}

/// Write a split as JSON lines so evaluation can use the very same images.
pub fn save_list(path: &Path, refs: &[SampleRef]) -> Result<()> {
    let text: String = refs
        .iter()
        .map(|r| serde_json::json!({"image": r.image, "identity": r.identity, "landmarks": r.landmarks.map(|l| l.0), "yaw": r.yaw}).to_string() + "\n")
        .collect();
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
