//! Writing a generated set to disk in the documented layout:
//!
//! ```text
//! DIR/dataset.json            generator, version, seed, counts, size, class names
//! DIR/manifest.jsonl          one record per image (see SynthRecord), in person/view order
//! DIR/images/pPPPP_vVVVV.jpg  RGB image, JPEG quality 92
//! DIR/masks/pPPPP_vVVVV.png   8-bit class-index mask (0..13, see classes.rs)
//! ```

use super::{GENERATOR_VERSION, Generator, Occluder, View};
use crate::classes::FaceClass;
use crate::error::{DataError, io_err};
use image::codecs::jpeg::JpegEncoder;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const DATASET_FILE: &str = "dataset.json";
pub const MANIFEST_FILE: &str = "manifest.jsonl";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub generator: String,
    pub version: u32,
    pub seed: u64,
    pub people: u32,
    pub views: u32,
    pub size: u32,
    pub classes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OccluderFlags {
    pub mask: bool,
    pub hand: bool,
    pub cap: bool,
}

impl OccluderFlags {
    fn of(o: Option<Occluder>) -> Self {
        Self { mask: o == Some(Occluder::Mask), hand: o == Some(Occluder::Hand), cap: o == Some(Occluder::Cap) }
    }

    pub fn any(&self) -> bool {
        self.mask || self.hand || self.cap
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthRecord {
    pub image: String,
    pub mask: String,
    pub person: u32,
    pub view: u32,
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
    /// `[x, y, w, h]` in pixels.
    pub face_box: [f32; 4],
    /// Left eye, right eye, nose tip, left and right mouth corner, pixels.
    pub landmarks: [[f32; 2]; 5],
    pub visible: [bool; 5],
    pub occluders: OccluderFlags,
}

/// Render one view and write its image and mask under `out`; returns its manifest record.
fn write_one(generator: &Generator, out: &Path, person: u32, index: u32, view: &View) -> Result<SynthRecord, DataError> {
    let identity = generator.identity(person);
    let r = generator.render(&identity, view);
    let stem = format!("p{person:04}_v{index:05}");
    let (image, mask) = (format!("images/{stem}.jpg"), format!("masks/{stem}.png"));
    let image_path = out.join(&image);
    let mut jpeg = Vec::with_capacity(32 * 1024);
    JpegEncoder::new_with_quality(&mut jpeg, 92)
        .encode_image(&r.image)
        .map_err(|e| DataError::Encode { path: image_path.clone(), message: e.to_string() })?;
    std::fs::write(&image_path, jpeg).map_err(io_err(&image_path))?;
    let mask_path = out.join(&mask);
    r.mask.save(&mask_path).map_err(|e| DataError::Encode { path: mask_path, message: e.to_string() })?;
    Ok(SynthRecord {
        image,
        mask,
        person,
        view: index,
        yaw: view.yaw,
        pitch: view.pitch,
        roll: view.roll,
        face_box: r.face_box,
        landmarks: r.landmarks.0,
        visible: r.visible,
        occluders: OccluderFlags::of(view.occluder),
    })
}

/// Generate `people` × `views` images into `out` (created if missing). `progress` is called with
/// the number of images finished so far, from worker threads.
pub fn write_dataset(
    generator: &Generator,
    people: u32,
    views: u32,
    out: &Path,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<DatasetInfo, DataError> {
    for dir in [out.join("images"), out.join("masks")] {
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    }
    let done = AtomicUsize::new(0);
    let jobs: Vec<(u32, u32)> = (0..people).flat_map(|p| (0..views).map(move |v| (p, v))).collect();
    let records = jobs
        .par_iter()
        .map(|&(person, index)| {
            let record = write_one(generator, out, person, index, &generator.view(person, index));
            progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            record
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut manifest = String::with_capacity(records.len() * 400);
    for r in &records {
        manifest.push_str(&serde_json::to_string(r).expect("records serialise"));
        manifest.push('\n');
    }
    let info = DatasetInfo {
        generator: "faceunlock-synth".into(),
        version: GENERATOR_VERSION,
        seed: generator.seed,
        people,
        views,
        size: generator.size,
        classes: FaceClass::ALL.iter().map(|c| c.name().to_string()).collect(),
    };
    crate::error::write_atomic(&out.join(MANIFEST_FILE), manifest.as_bytes())?;
    let info_json = serde_json::to_vec_pretty(&info).expect("info serialises");
    crate::error::write_atomic(&out.join(DATASET_FILE), &info_json)?;
    Ok(info)
}
