//! Enrolment templates: per person a few L2-normalised embeddings, kept as JSON in the sealed
//! state file `templates.sealed` ([`crate::state`]).
//!
//! Earlier versions kept them in plain `templates.v1`: a header line
//! `faceunlock-templates 1 crc32=XXXXXXXX len=N` followed by `N` bytes of the same JSON. Such a
//! file is checked ([`decode_v1`]) and sealed in its place the first time the store is opened.

use crate::state::sealed::Kind;
use crate::state::{StateDir, StateError};
use serde::{Deserialize, Serialize};
use std::path::Path;

const V1_MAGIC: &str = "faceunlock-templates";
const V1_VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{path}: templates were made by model {found}, the loaded model is {expected}; re-enrol (`faceunlock clear` then `enroll`)")]
    ModelMismatch { path: std::path::PathBuf, expected: String, found: String },
    #[error("no person named `{0}` is enrolled")]
    UnknownPerson(String),
    #[error("name `{0}` is not allowed: expected 1-64 characters of letters, digits, `-`, `_`, `.`")]
    BadName(String),
    #[error("embedding has {found} values, the store holds {expected}-dimensional templates")]
    Dimension { expected: usize, found: usize },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub templates: Vec<Vec<f32>>,
    /// Unix seconds.
    pub enrolled_at: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Templates {
    /// sha256 of the embedder that made the templates.
    pub model_sha256: String,
    pub dim: usize,
    pub people: Vec<Person>,
}

/// The store: loaded once, sealed and rewritten atomically on every change.
pub struct TemplateStore {
    state: StateDir,
    pub data: Templates,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The templates in `json`, checked: names as [`TemplateStore::enroll`] allows, each template of
/// `dim` finite values, no name twice.
pub fn decode_templates(json: &[u8]) -> Result<Templates, String> {
    let data: Templates = serde_json::from_slice(json).map_err(|e| format!("expected templates JSON ({e})"))?;
    let mut names = std::collections::HashSet::new();
    for p in &data.people {
        if !valid_name(&p.name) || !names.insert(p.name.as_str()) {
            return Err(format!("person name `{}` is not allowed or appears twice", p.name.escape_debug()));
        }
        if let Some(t) = p.templates.iter().find(|t| t.len() != data.dim || t.iter().any(|v| !v.is_finite())) {
            return Err(format!("a template of `{}` has {} values (expected {} finite ones)", p.name, t.len(), data.dim));
        }
    }
    Ok(data)
}

/// `data` as version 1 wrote it (`templates.v1`): for the migration's tests and the fuzz seeds.
pub fn encode_v1(data: &Templates) -> Vec<u8> {
    let body = serde_json::to_vec(data).expect("templates serialise");
    let mut out = format!("{V1_MAGIC} {V1_VERSION} crc32={:08x} len={}\n", crc32fast::hash(&body), body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The JSON body of a plain `templates.v1` file, its length and checksum verified.
pub fn decode_v1(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, StateError> {
    let corrupt = |message: String| StateError::Content { path: path.into(), message };
    let nl = bytes.iter().position(|b| *b == b'\n').ok_or_else(|| corrupt("no header line".into()))?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| corrupt("header is not text".into()))?;
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, version, crc, len] = fields.as_slice() else {
        return Err(corrupt(format!("header `{}`, expected `{V1_MAGIC} {V1_VERSION} crc32=… len=…`", header.escape_debug())));
    };
    if *magic != V1_MAGIC || *version != V1_VERSION {
        return Err(corrupt(format!("starts with `{}`, expected `{V1_MAGIC} {V1_VERSION}`", format!("{magic} {version}").escape_debug())));
    }
    let crc = crc.strip_prefix("crc32=").and_then(|h| u32::from_str_radix(h, 16).ok()).ok_or_else(|| corrupt("bad crc32 field".into()))?;
    let len: usize = len.strip_prefix("len=").and_then(|l| l.parse().ok()).ok_or_else(|| corrupt("bad len field".into()))?;
    let body = &bytes[nl + 1..];
    if body.len() != len {
        return Err(corrupt(format!("body is {} bytes, header says {len} (truncated write?)", body.len())));
    }
    let found = crc32fast::hash(body);
    if found != crc {
        return Err(corrupt(format!("checksum {found:08x}, header says {crc:08x}")));
    }
    Ok(body.to_vec())
}

impl TemplateStore {
    /// Open the store in `state` for templates of model `model_sha256` with `dim` values. A
    /// missing file is an empty store; one that cannot be opened is an error and is never
    /// overwritten.
    pub fn open(state: &StateDir, model_sha256: &str, dim: usize) -> Result<Self, StoreError> {
        let path = state.path(Kind::Templates);
        let data = state.load(Kind::Templates, decode_v1, decode_templates)?.unwrap_or_else(|| Templates { model_sha256: model_sha256.into(), dim, people: vec![] });
        if !data.people.is_empty() && (data.model_sha256 != model_sha256 || data.dim != dim) {
            return Err(StoreError::ModelMismatch { path, expected: model_sha256.into(), found: data.model_sha256 });
        }
        Ok(Self { state: state.clone(), data: Templates { model_sha256: model_sha256.into(), dim, ..data } })
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.state.path(Kind::Templates)
    }

    /// Seal and store `people` in place of the current ones; on failure nothing changes, on disk
    /// or here.
    fn commit(&mut self, people: Vec<Person>) -> Result<(), StoreError> {
        let next = Templates { people, ..self.data.clone() };
        self.state.store(Kind::Templates, &serde_json::to_vec(&next).expect("templates serialise"))?;
        self.data = next;
        Ok(())
    }

    /// Add (or replace) a person's templates and persist.
    pub fn enroll(&mut self, name: &str, templates: Vec<Vec<f32>>, now: u64) -> Result<(), StoreError> {
        if !valid_name(name) {
            return Err(StoreError::BadName(name.into()));
        }
        if let Some(bad) = templates.iter().find(|t| t.len() != self.data.dim) {
            return Err(StoreError::Dimension { expected: self.data.dim, found: bad.len() });
        }
        let mut people: Vec<Person> = self.data.people.iter().filter(|p| p.name != name).cloned().collect();
        people.push(Person { name: name.into(), templates, enrolled_at: now });
        people.sort_by(|a, b| a.name.cmp(&b.name));
        self.commit(people)
    }

    pub fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        if !self.data.people.iter().any(|p| p.name == name) {
            return Err(StoreError::UnknownPerson(name.into()));
        }
        self.commit(self.data.people.iter().filter(|p| p.name != name).cloned().collect())
    }

    pub fn clear(&mut self) -> Result<(), StoreError> {
        self.commit(vec![])
    }

    pub fn people(&self) -> &[Person] {
        &self.data.people
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::sealed::fixed_sealer;

    fn state(dir: &Path, device: &str) -> StateDir {
        StateDir::with_sealer(dir, fixed_sealer(1, device))
    }

    fn store(dir: &Path) -> TemplateStore {
        TemplateStore::open(&state(dir, "pi"), "abc", 2).unwrap()
    }

    fn open_err(dir: &Path, device: &str) -> String {
        TemplateStore::open(&state(dir, device), "abc", 2).err().unwrap().to_string()
    }

    #[test]
    fn enrol_persists_sealed_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.enroll("alice", vec![vec![1.0, 0.0]], 7).unwrap();
        s.enroll("bob", vec![vec![0.0, 1.0]], 8).unwrap();
        let again = store(dir.path());
        assert_eq!(again.people().iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
        let bytes = std::fs::read(again.path()).unwrap();
        assert!(crate::state::sealed::looks_sealed(&bytes) && !bytes.windows(5).any(|w| w == b"alice"));
    }

    #[test]
    fn an_edited_byte_is_refused_and_the_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path()).enroll("alice", vec![vec![1.0, 0.0]], 7).unwrap();
        let path = dir.path().join("templates.sealed");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let err = open_err(dir.path(), "pi");
        assert!(err.contains("authentication failed") && err.contains("templates.sealed"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_store_copied_from_another_device_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path()).enroll("alice", vec![vec![1.0, 0.0]], 7).unwrap();
        let bytes = std::fs::read(dir.path().join("templates.sealed")).unwrap();
        let err = open_err(dir.path(), "another-pi");
        assert!(err.contains("sealed on another device"), "{err}");
        let other_key = StateDir::with_sealer(dir.path(), fixed_sealer(2, "pi"));
        let err = TemplateStore::open(&other_key, "abc", 2).err().unwrap().to_string();
        assert!(err.contains("sealed with another key"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("templates.sealed")).unwrap(), bytes);
    }

    #[test]
    fn a_v1_store_is_migrated_once_and_a_corrupt_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = Templates { model_sha256: "abc".into(), dim: 2, people: vec![Person { name: "alice".into(), templates: vec![vec![0.6, 0.8]], enrolled_at: 5 }] };
        let v1 = dir.path().join("templates.v1");
        std::fs::write(&v1, encode_v1(&data)).unwrap();
        assert_eq!(store(dir.path()).data, data);
        assert!(!v1.exists() && dir.path().join("templates.sealed").exists());
        assert_eq!(store(dir.path()).data, data);

        let other = tempfile::tempdir().unwrap();
        let mut bytes = encode_v1(&data);
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        std::fs::write(other.path().join("templates.v1"), &bytes).unwrap();
        let err = open_err(other.path(), "pi");
        assert!(err.contains("templates.v1: checksum"), "{err}");
        assert_eq!(std::fs::read(other.path().join("templates.v1")).unwrap(), bytes);
        assert!(!other.path().join("templates.sealed").exists());
    }

    #[test]
    fn templates_of_another_model_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path()).enroll("alice", vec![vec![1.0, 0.0]], 7).unwrap();
        let err = TemplateStore::open(&state(dir.path(), "pi"), "def", 2).err().unwrap().to_string();
        assert!(err.contains("re-enrol"), "{err}");
    }

    #[test]
    fn names_and_dimensions_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        assert!(matches!(s.enroll("../etc", vec![vec![1.0, 0.0]], 0), Err(StoreError::BadName(_))));
        assert!(matches!(s.enroll("al", vec![vec![1.0]], 0), Err(StoreError::Dimension { .. })));
        assert!(matches!(s.remove("nobody"), Err(StoreError::UnknownPerson(_))));
        assert!(decode_templates(br#"{"model_sha256":"a","dim":2,"people":[{"name":"x","templates":[[1.0]],"enrolled_at":0}]}"#).unwrap_err().contains("1 values"));
    }
}
