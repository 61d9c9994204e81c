//! Reading a generated set back (the layout [`crate::synth::writer`] writes).

use crate::error::{DataError, io_err, read_text};
use crate::sample::{MaskEncoding, MaskRef, SampleRef};
use crate::synth::writer::{DATASET_FILE, DatasetInfo, MANIFEST_FILE, SynthRecord};
use faceunlock_core::geometry::Landmarks5;
use std::path::{Path, PathBuf};

pub struct SynthSet {
    pub root: PathBuf,
    pub info: DatasetInfo,
    pub records: Vec<SynthRecord>,
}

impl SynthSet {
    pub fn open(root: &Path) -> Result<Self, DataError> {
        let info_path = root.join(DATASET_FILE);
        let info_text = read_text(&info_path)?;
        let info: DatasetInfo = serde_json::from_str(&info_text)
            .map_err(|e| DataError::Format { path: info_path.clone(), line: e.line(), message: e.to_string() })?;
        let manifest = root.join(MANIFEST_FILE);
        let records = read_text(&manifest)?
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| DataError::Format {
                    path: manifest.clone(),
                    line: i + 1,
                    message: format!("expected a SynthRecord JSON object: {e}"),
                })
            })
            .collect::<Result<Vec<SynthRecord>, _>>()?;
        std::fs::metadata(root.join("images")).map_err(io_err(&root.join("images")))?;
        Ok(Self { root: root.into(), info, records })
    }

    pub fn sample_ref(&self, r: &SynthRecord) -> SampleRef {
        SampleRef {
            image: self.root.join(&r.image),
            mask: Some(MaskRef { path: self.root.join(&r.mask), encoding: MaskEncoding::ClassIndex }),
            identity: r.person,
            landmarks: Some(Landmarks5(r.landmarks)),
            yaw: Some(r.yaw),
        }
    }

    pub fn samples(&self) -> Vec<SampleRef> {
        self.records.iter().map(|r| self.sample_ref(r)).collect()
    }
}
