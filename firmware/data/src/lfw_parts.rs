//! LFW Part Labels (funneled LFW images with hair / skin / background masks) and its official
//! train / validation / test split. Masks map into the 14-class scheme as hair → `hair`,
//! skin → `skin`, background → `background`; their "skin" covers the whole face (eyes, nose,
//! lips …), which a loss must treat as "any face part", see [`crate::classes::LabelledClasses`].

use crate::error::{DataError, read_text};
use crate::sample::{MaskEncoding, MaskRef, SampleRef};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    fn file(self) -> &'static str {
        match self {
            Split::Train => "parts_train.txt",
            Split::Validation => "parts_validation.txt",
            Split::Test => "parts_test.txt",
        }
    }
}

pub struct LfwParts {
    pub root: PathBuf,
}

impl LfwParts {
    pub fn open(root: &Path) -> Result<Self, DataError> {
        for dir in ["images", "masks"] {
            let p = root.join(dir);
            std::fs::metadata(&p).map_err(crate::error::io_err(&p))?;
        }
        Ok(Self { root: root.into() })
    }

    /// `(person name, file stem)` of each image in a split, in file order.
    pub fn split_stems(&self, split: Split) -> Result<Vec<(String, String)>, DataError> {
        let path = self.root.join(split.file());
        read_text(&path)?
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let bad = |m: String| DataError::Format { path: path.clone(), line: i + 1, message: m };
                let (name, num) = l.trim().split_once(' ').ok_or_else(|| bad(format!("expected `Name number`, found `{l}`")))?;
                let n: u32 = num.trim().parse().map_err(|_| bad(format!("expected an image number, found `{num}`")))?;
                Ok((name.to_string(), format!("{name}_{n:04}")))
            })
            .collect()
    }

    /// Samples of a split, identities numbered densely by name within it; also the names.
    pub fn samples(&self, split: Split) -> Result<(Vec<SampleRef>, Vec<String>), DataError> {
        let stems = self.split_stems(split)?;
        let ids: BTreeMap<&str, u32> = {
            let mut names: Vec<&str> = stems.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            names.into_iter().enumerate().map(|(i, n)| (n, i as u32)).collect()
        };
        let refs = stems
            .iter()
            .map(|(name, stem)| SampleRef {
                image: self.root.join("images").join(format!("{stem}.jpg")),
                mask: Some(MaskRef { path: self.root.join("masks").join(format!("{stem}.png")), encoding: MaskEncoding::HairSkinBackground }),
                identity: ids[name.as_str()],
                landmarks: None,
                yaw: None,
            })
            .collect();
        Ok((refs, ids.keys().map(|s| s.to_string()).collect()))
    }
}
