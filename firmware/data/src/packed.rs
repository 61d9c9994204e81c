//! A compact, self-describing sample list: pre-cropped JPEG faces (with their landmarks in crop
//! coordinates) and class-index masks, written so a training set fits in a small upload.
//!
//! ```text
//! DIR/packed.jsonl        one PackedRecord per line
//! DIR/images/NNNNNN.jpg   face crop
//! DIR/masks/NNNNNN.png    class-index mask of the crop (when the sample has one)
//! ```

use crate::classes::LabelledClasses;
use crate::error::{DataError, io_err, read_text};
use crate::sample::{FaceSample, MaskEncoding, MaskRef, SampleRef};
use faceunlock_core::align::{warp_into, warp_labels_into};
use faceunlock_core::geometry::{CropSpec, Landmarks5, Similarity};
use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const PACKED_FILE: &str = "packed.jsonl";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackedRecord {
    pub image: String,
    pub mask: Option<String>,
    /// Bit set of the classes the mask labels (see [`LabelledClasses`]).
    pub labelled: u16,
    pub identity: u32,
    pub landmarks: [[f32; 2]; 5],
    pub yaw: Option<f32>,
}

/// The crop a sample is packed as: the canonical template scaled into a `size` square with a
/// margin, so training can still jitter scale, rotation and shift.
pub fn pack_transform(marks: &Landmarks5, size: u32) -> Option<Similarity> {
    // The 128 template sits in the middle 75 % of the packed square.
    let inner = CropSpec::arcface((size as f32 * 0.75) as u32);
    let offset = (size as f32 - inner.size as f32) / 2.0;
    let t = Similarity::estimate(marks, &inner.template)?;
    Some(Similarity { tx: t.tx + offset, ty: t.ty + offset, ..t })
}

/// Crop one sample; returns the crop, its mask and its landmarks in crop coordinates.
pub fn pack_sample(sample: &FaceSample, size: u32) -> Option<(RgbImage, Option<GrayImage>, Landmarks5)> {
    let marks = sample.landmarks?;
    let to_crop = pack_transform(&marks, size)?;
    let to_src = to_crop.inverse()?;
    let mut crop = RgbImage::new(size, size);
    warp_into(&sample.image, &to_src, &mut crop);
    let mask = sample.mask.as_ref().map(|m| {
        let mut out = GrayImage::new(size, size);
        warp_labels_into(m, &to_src, crate::classes::UNLABELLED, &mut out);
        out
    });
    Some((crop, mask, marks.transformed(&to_crop)))
}

pub fn write_record(dir: &Path, index: usize, sample: &FaceSample, size: u32, quality: u8) -> Result<Option<PackedRecord>, DataError> {
    let Some((crop, mask, marks)) = pack_sample(sample, size) else { return Ok(None) };
    let image = format!("images/{index:06}.jpg");
    let path = dir.join(&image);
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode_image(&crop)
        .map_err(|e| DataError::Encode { path: path.clone(), message: e.to_string() })?;
    std::fs::write(&path, bytes).map_err(io_err(&path))?;
    let mask_name = match mask {
        Some(m) => {
            let name = format!("masks/{index:06}.png");
            let p = dir.join(&name);
            m.save(&p).map_err(|e| DataError::Encode { path: p, message: e.to_string() })?;
            Some(name)
        }
        None => None,
    };
    Ok(Some(PackedRecord { image, mask: mask_name, labelled: sample.labelled.0, identity: sample.identity, landmarks: marks.0, yaw: sample.yaw }))
}

pub fn create_dirs(dir: &Path) -> Result<(), DataError> {
    for d in [dir.join("images"), dir.join("masks")] {
        std::fs::create_dir_all(&d).map_err(io_err(&d))?;
    }
    Ok(())
}

pub fn write_index(dir: &Path, records: &[PackedRecord]) -> Result<(), DataError> {
    let text: String = records.iter().map(|r| serde_json::to_string(r).expect("records serialise") + "\n").collect();
    crate::error::write_atomic(&dir.join(PACKED_FILE), text.as_bytes())
}

/// Read a packed directory back as sample references.
pub fn open(dir: &Path) -> Result<Vec<SampleRef>, DataError> {
    let index = dir.join(PACKED_FILE);
    read_text(&index)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let r: PackedRecord = serde_json::from_str(l)
                .map_err(|e| DataError::Format { path: index.clone(), line: i + 1, message: format!("expected a PackedRecord: {e}") })?;
            let encoding = MaskEncoding::ClassIndexOf(LabelledClasses(r.labelled));
            Ok(SampleRef {
                image: dir.join(&r.image),
                mask: r.mask.map(|m| MaskRef { path: dir.join(m), encoding }),
                identity: r.identity,
                landmarks: Some(Landmarks5(r.landmarks)),
                yaw: r.yaw,
            })
        })
        .collect()
}

/// Paths written by a pack, for reporting.
pub fn size_on_disk(dir: &Path) -> u64 {
    fn walk(p: &PathBuf) -> u64 {
        std::fs::read_dir(p).map_or(0, |rd| {
            rd.filter_map(Result::ok).map(|e| if e.path().is_dir() { walk(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) }).sum()
        })
    }
    walk(&dir.to_path_buf())
}
