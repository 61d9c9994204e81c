//! The faces a student distils from, each with its teacher template: LFW people of
//! `people.txt` folds 1-5 (landmarks: the ones their templates were cut from), their LFW Part
//! Labels photos (the same photos in another alignment: the same templates, hair/skin/background
//! masks for the segmentation teacher), and `faces-extra` (aligned 128 crops of 2,000 more
//! people), some of whose people are held out: never trained on, for validation and threshold
//! calibration. Generated faces carry no template; they feed the segmentation teacher only.

use super::templates::Templates;
use crate::landmarks::CachedFace;
use crate::sources::TRAIN_FOLDS;
use anyhow::{Context, Result};
use faceunlock_core::geometry::CropSpec;
use faceunlock_data::lfw::Lfw;
use faceunlock_data::lfw_parts::{LfwParts, Split};
use faceunlock_data::sample::SampleRef;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Every this-many-th `faces-extra` person (in identity order) is held out.
pub const HOLDOUT_EVERY: usize = 10;

/// A face and the row of its teacher template in [`KdData::templates`].
#[derive(Clone, Debug)]
pub struct KdFace {
    pub sample: SampleRef,
    pub row: usize,
}

/// Faces with targets, identities numbered densely over all sources.
#[derive(Default)]
pub struct KdData {
    pub train: Vec<KdFace>,
    /// `faces-extra` people never trained on.
    pub holdout: Vec<KdFace>,
    /// All sources' templates, rows concatenated.
    pub templates: Vec<f32>,
    pub dim: usize,
    pub identities: usize,
    /// Generated faces (segmentation; their people numbered densely over the generated sets,
    /// apart from the faces with targets, for the generated people's identity term).
    pub generated: Vec<SampleRef>,
    pub generated_people: usize,
}

/// Where each source lives.
pub struct KdSources<'a> {
    pub lfw: &'a Path,
    pub lfw_teacher: &'a Path,
    /// LFW Part Labels and the landmark cache holding its photos (`faceunlock-train landmarks`).
    pub parts: Option<(&'a Path, &'a Path)>,
    pub extra: Option<&'a Path>,
    pub synth: &'a [PathBuf],
}

impl KdData {
    pub fn load(s: &KdSources) -> Result<Self> {
        let mut data = Self::default();
        data.add_lfw(s.lfw, s.lfw_teacher, s.parts)?;
        if let Some(extra) = s.extra {
            data.add_extra(extra)?;
        }
        for dir in s.synth {
            let set = faceunlock_data::synth_set::SynthSet::open(dir).with_context(|| format!("loading generated set {}", dir.display()))?;
            let offset = data.generated_people as u32;
            let samples = set.samples();
            data.generated_people += samples.iter().map(|r| r.identity as usize + 1).max().unwrap_or(0);
            data.generated.extend(samples.into_iter().map(|r| SampleRef { identity: r.identity + offset, ..r }));
        }
        Ok(data)
    }

    /// The template of `face` (of the image, or of its mirror image).
    pub fn template(&self, face: &KdFace, mirrored: bool) -> &[f32] {
        super::templates::template_of(&self.templates, self.dim, face.row, mirrored)
    }

    /// Append `set`'s templates; the row its first one gets.
    fn append(&mut self, set: &Templates, what: &Path) -> Result<usize> {
        anyhow::ensure!(self.dim == 0 || self.dim == set.dim, "{}: templates of {} dimensions, the other sources' have {}", what.display(), set.dim, self.dim);
        self.dim = set.dim;
        let first = self.templates.len() / (2 * set.dim);
        self.templates.extend_from_slice(&set.values);
        Ok(first)
    }

    /// LFW folds 1-5 and, with `parts` (root, landmark cache), their Part Labels photos.
    fn add_lfw(&mut self, lfw_root: &Path, teacher_dir: &Path, parts: Option<(&Path, &Path)>) -> Result<()> {
        let lfw = Lfw::open(lfw_root)?;
        let set = Templates::open(teacher_dir)?;
        let marks = set.landmarks.as_ref().with_context(|| format!("{}: no `landmarks` tensor; expected the points the LFW templates were cut from", teacher_dir.display()))?;
        let first = self.append(&set, teacher_dir)?;
        let rows = set.rows();
        let images = lfw.root.join("images");
        let (refs, names) = lfw.people_samples(&TRAIN_FOLDS);
        let offset = self.identities as u32;
        for mut r in refs {
            let relative = relative_to(&r.image, &images)?;
            let row = *rows.get(relative.as_str()).with_context(|| format!("{}: no template of {relative}", teacher_dir.display()))?;
            r.landmarks = Some(marks[row]);
            r.identity += offset;
            self.train.push(KdFace { sample: r, row: first + row });
        }
        if let Some((parts_root, cache)) = parts {
            let faces: HashMap<PathBuf, CachedFace> = crate::landmarks::load(cache)?;
            let by_name: HashMap<&str, u32> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
            let parts = LfwParts::open(parts_root)?;
            let mut missing = 0;
            for split in [Split::Train, Split::Validation, Split::Test] {
                let (refs, part_names) = parts.samples(split)?;
                for mut r in refs {
                    let name = part_names[r.identity as usize].as_str();
                    let Some(id) = by_name.get(name) else { continue };
                    let stem = r.image.file_name().and_then(|f| f.to_str()).unwrap_or_default();
                    let Some(row) = rows.get(format!("{name}/{stem}").as_str()) else { continue };
                    let Some(face) = faces.get(&r.image) else {
                        missing += 1;
                        continue;
                    };
                    r.landmarks = Some(face.landmarks);
                    r.identity = offset + id;
                    self.train.push(KdFace { sample: r, row: first + row });
                }
            }
            if missing > 0 {
                log::warn!("{missing} LFW Part Labels photos of folds 1-5 people have no landmarks in {}: left out", cache.display());
            }
        }
        self.identities += names.len();
        Ok(())
    }

    /// `faces-extra`: aligned crops (the template's landmarks), every [`HOLDOUT_EVERY`]-th person
    /// held out.
    fn add_extra(&mut self, dir: &Path) -> Result<()> {
        let set = Templates::open(dir)?;
        let first = self.append(&set, dir)?;
        let (mut trained, mut held) = (0u32, 0u32);
        for (k, rows) in extra_people(&set, dir)?.into_iter().enumerate() {
            let held_out = is_held_out(k);
            let identity = if held_out { held } else { self.identities as u32 + trained };
            if held_out { held += 1 } else { trained += 1 }
            for row in rows {
                let face = KdFace { sample: extra_sample(dir, &set, row, identity), row: first + row };
                if held_out { self.holdout.push(face) } else { self.train.push(face) }
            }
        }
        self.identities += trained as usize;
        Ok(())
    }
}

/// Whether the `k`-th `faces-extra` person (identity order) is held out of training.
fn is_held_out(k: usize) -> bool {
    k % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
}

/// The rows of each `faces-extra` person, people in identity order.
fn extra_people(set: &Templates, dir: &Path) -> Result<Vec<Vec<usize>>> {
    let mut people: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (row, relative) in set.index.iter().enumerate() {
        let person = relative.split_once('/').map(|(p, _)| p).with_context(|| format!("{}: `{relative}`, expected <person>/<file>", dir.join(super::templates::INDEX_FILE).display()))?;
        people.entry(person).or_default().push(row);
    }
    Ok(people.into_values().collect())
}

/// Row `row` of `faces-extra` as a sample: an aligned crop, so its landmarks are the template's.
fn extra_sample(dir: &Path, set: &Templates, row: usize, identity: u32) -> SampleRef {
    SampleRef { image: dir.join("images").join(&set.index[row]), mask: None, identity, landmarks: Some(CropSpec::default().template), yaw: None }
}

/// The held-out `faces-extra` people's faces (identities numbered densely among them): real
/// people no distilled student trained on, to calibrate thresholds with.
pub fn extra_holdout(dir: &Path) -> Result<Vec<SampleRef>> {
    extra_faces(dir, true)
}

/// The faces of the `faces-extra` people that are not held out (identities numbered densely
/// among them): what the detector may train on.
pub fn extra_trainable(dir: &Path) -> Result<Vec<SampleRef>> {
    extra_faces(dir, false)
}

fn extra_faces(dir: &Path, held_out: bool) -> Result<Vec<SampleRef>> {
    let set = Templates::open(dir)?;
    let people: Vec<Vec<usize>> = extra_people(&set, dir)?.into_iter().enumerate().filter(|(k, _)| is_held_out(*k) == held_out).map(|(_, rows)| rows).collect();
    Ok(people.into_iter().enumerate().flat_map(|(id, rows)| rows.into_iter().map(move |row| (id, row))).map(|(id, row)| extra_sample(dir, &set, row, id as u32)).collect())
}

/// `path` relative to `root`, with `/` separators (an index line).
pub fn relative_to(path: &Path, root: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).with_context(|| format!("{} is not under {}", path.display(), root.display()))?;
    Ok(rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"))
}
