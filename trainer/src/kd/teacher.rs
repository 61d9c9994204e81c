//! Running a face teacher (an ONNX embedder with the dlib ResNet's contract: RGB 0..255
//! `[1, 3, 150, 150]` in, a 128-d template out) on its own chip of each original image, and of
//! the image's mirror, through tract: the targets a student regresses, for any image set.
//!
//! The chip is the dlib one the shared sets were made with: a similarity transform from the five
//! landmarks to `DLIB_CHIP_150`, bilinear, cut from the original image (it reaches beyond our
//! 128 crop). The mirror row is the teacher on the chip of the mirrored image (landmarks
//! mirrored with it).

use super::templates::Templates;
use anyhow::{Context, Result};
use faceunlock_core::align::Aligner;
use faceunlock_core::geometry::{CropSpec, Landmarks5};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

/// dlib's mean face shape reduced to the five points (YuNet's order), with dlib's padding 0.25,
/// on a 150×150 chip: `(p + 0.25) / 1.5 · 150`.
pub const DLIB_CHIP_150: [[f32; 2]; 5] = [[47.549, 46.599], [100.476, 46.599], [74.013, 76.562], [50.415, 103.023], [97.610, 103.023]];
const CHIP: usize = 150;

/// One image to embed: its path relative to the set's root (the index line) and its landmarks.
#[derive(Clone, Debug)]
pub struct Item {
    pub relative: String,
    pub landmarks: Landmarks5,
}

/// A loaded teacher, shared by the threads that run it.
pub struct Teacher {
    path: PathBuf,
    plan: Arc<TypedSimplePlan>,
    dim: usize,
}

impl Teacher {
    /// Load the teacher ONNX at `path` for one 150×150 RGB chip per run.
    pub fn open(path: &Path) -> Result<Self> {
        let expected = "an ONNX face teacher taking f32 [1, 3, 150, 150] (RGB 0..255) and giving f32 [1, D]";
        let plan = tract_onnx::onnx()
            .model_for_path(path)
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, CHIP, CHIP]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| anyhow::anyhow!("{}: not loadable as {expected}: {e:#}", path.display()))?;
        let out = plan.model().output_fact(0).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let dim = match out.shape.as_concrete() {
            Some([1, d]) if *d > 0 => *d,
            other => anyhow::bail!("{}: output shape {other:?}; expected {expected}", path.display()),
        };
        Ok(Self { path: path.into(), plan, dim })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The teacher's L2-normalised template of the chip of `image` at `marks`.
    pub fn template(&self, image: &image::RgbImage, marks: &Landmarks5) -> Result<Vec<f32>> {
        let spec = CropSpec { size: CHIP as u32, template: Landmarks5(DLIB_CHIP_150) };
        let mut aligner = Aligner::new(spec);
        let chip = aligner.align(image, marks).with_context(|| format!("cutting the teacher's chip at {marks:?}"))?;
        let plane = CHIP * CHIP;
        let mut input = vec![0.0f32; 3 * plane];
        for (i, px) in chip.as_raw().chunks_exact(3).enumerate() {
            (input[i], input[plane + i], input[2 * plane + i]) = (px[0] as f32, px[1] as f32, px[2] as f32);
        }
        let tensor = tract_ndarray::Array4::from_shape_vec((1, 3, CHIP, CHIP), input)?.into_tensor();
        let out = self.plan.run(tvec!(tensor.into())).map_err(|e| anyhow::anyhow!("{}: inference failed: {e:#}", self.path.display()))?;
        let raw = out[0].to_plain_array_view::<f32>().map_err(|e| anyhow::anyhow!("{}: output is not f32: {e}", self.path.display()))?;
        let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
        anyhow::ensure!(norm.is_finite() && norm > 0.0, "{}: the template has length {norm}", self.path.display());
        Ok(raw.iter().map(|v| v / norm).collect())
    }

    /// Templates of `items` under `root` (image and mirror image), in `items`' order, with the
    /// landmarks they were cut from; `progress` is called with the count done.
    pub fn embed_set(&self, root: &Path, items: &[Item], progress: impl Fn(usize) + Sync) -> Result<Templates> {
        let done = std::sync::atomic::AtomicUsize::new(0);
        let rows: Vec<Vec<f32>> = items
            .par_iter()
            .map(|item| {
                let path = root.join(&item.relative);
                let image = faceunlock_data::error::decode_rgb(&path)?;
                let mirror = image::imageops::flip_horizontal(&image);
                let mut row = self.template(&image, &item.landmarks).with_context(|| format!("{}", path.display()))?;
                row.extend(self.template(&mirror, &item.landmarks.mirrored(image.width() as f32)).with_context(|| format!("{} (mirrored)", path.display()))?);
                progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
                Ok(row)
            })
            .collect::<Result<_>>()?;
        Ok(Templates {
            index: items.iter().map(|i| i.relative.clone()).collect(),
            dim: self.dim,
            values: rows.concat(),
            landmarks: Some(items.iter().map(|i| i.landmarks).collect()),
        })
    }
}
