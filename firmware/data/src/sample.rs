//! The one item type every loader yields, and lazy references to it.

use crate::classes::{FaceClass, LabelledClasses, UNLABELLED};
use crate::error::{DataError, decode_rgb, io_err};
use faceunlock_core::geometry::Landmarks5;
use image::{GrayImage, RgbImage};
use std::path::PathBuf;

/// How a mask file encodes classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskEncoding {
    /// 8-bit PNG whose values are [`FaceClass`] indices (the generator's masks).
    ClassIndex,
    /// LFW Part Labels: pure red = hair, green = skin (the whole face), blue = background.
    HairSkinBackground,
    /// 8-bit class indices authoritative only for the given classes (a packed coarse mask).
    ClassIndexOf(LabelledClasses),
}

impl MaskEncoding {
    /// Whether the mask knows only some classes (real part-label sets).
    pub fn is_coarse(self) -> bool {
        match self {
            MaskEncoding::ClassIndex => false,
            MaskEncoding::HairSkinBackground => true,
            MaskEncoding::ClassIndexOf(l) => l != LabelledClasses::ALL,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MaskRef {
    pub path: PathBuf,
    pub encoding: MaskEncoding,
}

/// A sample on disk, not yet decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleRef {
    pub image: PathBuf,
    pub mask: Option<MaskRef>,
    /// Dense identity index within the set it came from.
    pub identity: u32,
    pub landmarks: Option<Landmarks5>,
    /// Head yaw in degrees where known (generated faces).
    pub yaw: Option<f32>,
}

/// A decoded sample.
#[derive(Clone, Debug)]
pub struct FaceSample {
    pub image: RgbImage,
    /// Class index per pixel; [`UNLABELLED`] where unknown.
    pub mask: Option<GrayImage>,
    /// The classes the mask is authoritative for.
    pub labelled: LabelledClasses,
    pub identity: u32,
    pub landmarks: Option<Landmarks5>,
    pub yaw: Option<f32>,
}

impl SampleRef {
    pub fn load(&self) -> Result<FaceSample, DataError> {
        let image = decode_rgb(&self.image)?;
        let (mask, labelled) = match &self.mask {
            None => (None, LabelledClasses(0)),
            Some(m) => {
                let (mask, labelled) = read_mask(m)?;
                if mask.dimensions() != image.dimensions() {
                    return Err(DataError::MaskSize { path: m.path.clone(), expected: image.dimensions(), found: mask.dimensions() });
                }
                (Some(mask), labelled)
            }
        };
        Ok(FaceSample { image, mask, labelled, identity: self.identity, landmarks: self.landmarks, yaw: self.yaw })
    }
}

fn read_mask(m: &MaskRef) -> Result<(GrayImage, LabelledClasses), DataError> {
    let bytes = std::fs::read(&m.path).map_err(io_err(&m.path))?;
    let decoded = image::load_from_memory(&bytes).map_err(|e| DataError::Decode { path: m.path.clone(), message: e.to_string() })?;
    match m.encoding {
        MaskEncoding::ClassIndex | MaskEncoding::ClassIndexOf(_) => {
            let mask = decoded.to_luma8();
            if let Some((x, y, p)) = mask.enumerate_pixels().find(|(_, _, p)| p.0[0] as usize >= crate::classes::NUM_CLASSES && p.0[0] != UNLABELLED) {
                return Err(DataError::MaskClass { path: m.path.clone(), x, y, value: p.0[0] });
            }
            let labelled = if let MaskEncoding::ClassIndexOf(l) = m.encoding { l } else { LabelledClasses::ALL };
            Ok((mask, labelled))
        }
        MaskEncoding::HairSkinBackground => {
            let rgb = decoded.to_rgb8();
            let mut mask = GrayImage::new(rgb.width(), rgb.height());
            for (x, y, p) in rgb.enumerate_pixels() {
                let class = match p.0 {
                    [255, 0, 0] => FaceClass::Hair,
                    [0, 255, 0] => FaceClass::Skin,
                    [0, 0, 255] => FaceClass::Background,
                    colour => return Err(DataError::MaskColour { path: m.path.clone(), x, y, colour }),
                };
                mask.put_pixel(x, y, image::Luma([class as u8]));
            }
            Ok((mask, LabelledClasses::of(&[FaceClass::Background, FaceClass::Skin, FaceClass::Hair])))
        }
    }
}

/// What a bulk load does with a sample that fails to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    Fail,
    /// Skip it, count it, and log the reason.
    SkipAndCount,
}

/// Decoded samples plus the failures that were skipped (empty under [`OnError::Fail`]).
pub struct Loaded {
    pub samples: Vec<FaceSample>,
    pub skipped: Vec<DataError>,
}

pub fn load_all(refs: &[SampleRef], on_error: OnError) -> Result<Loaded, DataError> {
    use rayon::prelude::*;
    let results: Vec<_> = refs.par_iter().map(SampleRef::load).collect();
    let mut loaded = Loaded { samples: Vec::with_capacity(refs.len()), skipped: Vec::new() };
    for r in results {
        match (r, on_error) {
            (Ok(s), _) => loaded.samples.push(s),
            (Err(e), OnError::Fail) => return Err(e),
            (Err(e), OnError::SkipAndCount) => loaded.skipped.push(e),
        }
    }
    Ok(loaded)
}
