//! A teacher's templates of an image set, as `../shared/data/lfw-teacher` and
//! `../shared/data/faces-extra` hold them: `index.txt` (one image path per line, relative to the
//! set's image root) and `teacher.safetensors` with `embedding` f16 `[N, 2, D]` (the image's
//! L2-normalised template and its mirror image's) and optionally `landmarks` f32 `[N, 5, 2]`
//! (the five points the teacher's chip was cut from).

use anyhow::{Context, Result};
use faceunlock_core::geometry::Landmarks5;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

pub const INDEX_FILE: &str = "index.txt";
pub const TENSORS_FILE: &str = "teacher.safetensors";

/// Templates of a set of images, in index order.
#[derive(Clone, Debug, PartialEq)]
pub struct Templates {
    /// Image paths relative to the set's image root.
    pub index: Vec<String>,
    pub dim: usize,
    /// `[N, 2, dim]`: image, then mirror image, per row.
    pub values: Vec<f32>,
    pub landmarks: Option<Vec<Landmarks5>>,
}

impl Templates {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Row `row`'s template of the image (`mirrored` false) or of its mirror image.
    pub fn template(&self, row: usize, mirrored: bool) -> &[f32] {
        template_of(&self.values, self.dim, row, mirrored)
    }

    /// Row of each image path.
    pub fn rows(&self) -> HashMap<&str, usize> {
        self.index.iter().enumerate().map(|(i, p)| (p.as_str(), i)).collect()
    }

    /// Read `index.txt` and `teacher.safetensors` from `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let index_path = dir.join(INDEX_FILE);
        let index: Vec<String> = std::fs::read_to_string(&index_path)
            .with_context(|| format!("reading {}", index_path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        let path = dir.join(TENSORS_FILE);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| anyhow::anyhow!("{}: not a safetensors file: {e}", path.display()))?;
        let embedding = tensors.tensor("embedding").map_err(|e| anyhow::anyhow!("{}: no `embedding` tensor ({e}); expected f16 [N, 2, D]", path.display()))?;
        let shape = embedding.shape().to_vec();
        anyhow::ensure!(
            shape.len() == 3 && shape[0] == index.len() && shape[1] == 2 && shape[2] > 0,
            "{}: `embedding` has shape {shape:?}, expected [{}, 2, D] (one row per line of {})",
            path.display(),
            index.len(),
            index_path.display()
        );
        let values: Vec<f32> = match embedding.dtype() {
            Dtype::F16 => embedding.data().chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::F32 => f32s(embedding.data()),
            other => anyhow::bail!("{}: `embedding` is {other:?}, expected f16 or f32", path.display()),
        };
        anyhow::ensure!(values.iter().all(|v| v.is_finite()), "{}: `embedding` holds a value that is not finite", path.display());
        let landmarks = match tensors.tensor("landmarks") {
            Err(_) => None,
            Ok(t) => {
                anyhow::ensure!(
                    t.dtype() == Dtype::F32 && t.shape() == [index.len(), 5, 2],
                    "{}: `landmarks` is {:?} {:?}, expected f32 [{}, 5, 2]",
                    path.display(),
                    t.dtype(),
                    t.shape(),
                    index.len()
                );
                Some(f32s(t.data()).chunks_exact(10).map(|p| Landmarks5(std::array::from_fn(|k| [p[2 * k], p[2 * k + 1]]))).collect())
            }
        };
        Ok(Self { index, dim: shape[2], values, landmarks })
    }

    /// Write the set into `dir` (created if need be): embeddings as f16 like the shared sets,
    /// each file atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        use safetensors::tensor::TensorView;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let halves: Vec<u8> = self.values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        let marks: Option<Vec<u8>> = self.landmarks.as_ref().map(|l| l.iter().flat_map(|m| m.0.iter().flatten().flat_map(|v| v.to_le_bytes())).collect());
        let mut views = vec![("embedding", TensorView::new(Dtype::F16, vec![self.len(), 2, self.dim], &halves)?)];
        if let Some(marks) = &marks {
            views.push(("landmarks", TensorView::new(Dtype::F32, vec![self.len(), 5, 2], marks)?));
        }
        let bytes = safetensors::serialize(views, None)?;
        faceunlock_data::error::write_atomic(&dir.join(TENSORS_FILE), &bytes)?;
        let index: String = self.index.iter().map(|p| format!("{p}\n")).collect();
        faceunlock_data::error::write_atomic(&dir.join(INDEX_FILE), index.as_bytes())?;
        Ok(())
    }
}

/// In `values` laid out `[rows, 2, dim]`, row `row`'s template of the image or of its mirror.
pub fn template_of(values: &[f32], dim: usize, row: usize, mirrored: bool) -> &[f32] {
    let start = (2 * row + mirrored as usize) * dim;
    &values[start..start + dim]
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_set_reads_back_within_f16_rounding() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<f32> = (0..2 * 2 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
        let marks = vec![Landmarks5([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]); 2];
        let set = Templates { index: vec!["a/a_0001.jpg".into(), "b/b_0002.jpg".into()], dim: 4, values: values.clone(), landmarks: Some(marks.clone()) };
        set.save(dir.path()).unwrap();
        let back = Templates::open(dir.path()).unwrap();
        assert_eq!((back.index.clone(), back.dim, back.landmarks.clone()), (set.index.clone(), 4, Some(marks)));
        let worst = back.values.iter().zip(&values).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "f16 keeps 3 decimals of a unit template: {worst}");
        assert_eq!(back.template(1, true), &back.values[12..16]);
    }

    #[test]
    fn an_index_of_another_length_is_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let set = Templates { index: vec!["a.jpg".into()], dim: 2, values: vec![0.0; 4], landmarks: None };
        set.save(dir.path()).unwrap();
        std::fs::write(dir.path().join(INDEX_FILE), "a.jpg\nb.jpg\n").unwrap();
        let message = format!("{:#}", Templates::open(dir.path()).unwrap_err());
        assert!(message.contains("teacher.safetensors") && message.contains("index.txt") && message.contains("[1, 2, 2]"), "{message}");
    }
}
