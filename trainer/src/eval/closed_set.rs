//! Closed-set identification, the reference's protocol: the trainer splits each identity's
//! images 90/10 and writes the split into its run directory (`train.jsonl`, `test.jsonl`); each
//! test image is given the identity whose mean training embedding is nearest (cosine). For an
//! embedder that ships without its classifier, this is the closed-set accuracy its embedding
//! supports.

use super::embed_with;
use anyhow::{Context, Result, bail};
use faceunlock::embed::l2_normalize;
use faceunlock_core::contract::EmbedderEntry;
use faceunlock_core::geometry::Landmarks5;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize)]
pub struct ClosedSetReport {
    pub accuracy: f64,
    pub probes: usize,
    pub identities: usize,
    pub gallery_images: usize,
    /// Images the list names that could not be used (no landmarks).
    pub skipped: usize,
}

/// One line of a run's split list.
#[derive(Clone, Debug, Deserialize)]
pub struct ListItem {
    pub image: PathBuf,
    pub identity: u32,
    pub landmarks: Option<[[f32; 2]; 5]>,
}

/// Read a split list, rewriting path prefixes `(from, to)` (a run trained elsewhere names its
/// images where they were there).
pub fn read_list(path: &Path, remap: &[(PathBuf, PathBuf)]) -> Result<Vec<ListItem>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let mut item: ListItem = serde_json::from_str(line).with_context(|| format!("{}:{}: expected a split-list JSON line", path.display(), i + 1))?;
            if let Some((from, to)) = remap.iter().find(|(from, _)| item.image.starts_with(from)) {
                item.image = to.join(item.image.strip_prefix(from).unwrap_or(&item.image));
            }
            Ok(item)
        })
        .collect()
}

fn embed_list(onnx: &Path, entry: &EmbedderEntry, items: &[ListItem]) -> Result<Vec<Option<Vec<f32>>>> {
    embed_with(onnx, entry, items, |item| {
        let Some(marks) = item.landmarks else { return Ok(None) };
        let img = image::open(&item.image).with_context(|| format!("decoding {}", item.image.display()))?.to_rgb8();
        Ok(Some((img, Landmarks5(marks))))
    })
}

pub fn closed_set(onnx: &Path, entry: &EmbedderEntry, gallery: &[ListItem], probes: &[ListItem]) -> Result<ClosedSetReport> {
    let mut sums: BTreeMap<u32, Vec<f32>> = BTreeMap::new();
    let gallery_embeddings = embed_list(onnx, entry, gallery)?;
    let mut skipped = 0;
    for (item, e) in gallery.iter().zip(&gallery_embeddings) {
        let Some(e) = e else {
            skipped += 1;
            continue;
        };
        let sum = sums.entry(item.identity).or_insert_with(|| vec![0.0; e.len()]);
        sum.iter_mut().zip(e).for_each(|(s, v)| *s += v);
    }
    if sums.is_empty() {
        bail!("no gallery image could be embedded");
    }
    let centroids: Vec<(u32, Vec<f32>)> = sums.into_iter().map(|(id, mut v)| (id, { l2_normalize(&mut v); v })).collect();
    let probe_embeddings = embed_list(onnx, entry, probes)?;
    let (mut correct, mut scored) = (0usize, 0usize);
    for (item, e) in probes.iter().zip(&probe_embeddings) {
        let Some(e) = e else {
            skipped += 1;
            continue;
        };
        let dot = |c: &[f32]| c.iter().zip(e).map(|(a, b)| a * b).sum::<f32>();
        let best = centroids.iter().max_by(|a, b| dot(&a.1).total_cmp(&dot(&b.1))).map(|c| c.0);
        correct += usize::from(best == Some(item.identity));
        scored += 1;
    }
    Ok(ClosedSetReport {
        accuracy: correct as f64 / scored.max(1) as f64,
        probes: scored,
        identities: centroids.len(),
        gallery_images: gallery_embeddings.iter().flatten().count(),
        skipped,
    })
}
