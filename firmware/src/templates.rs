//! Enrolment templates: per person a few L2-normalised embeddings, stored in one versioned file
//! under the state directory.
//!
//! File format (`templates.v1`): a header line
//! `faceunlock-templates 1 crc32=XXXXXXXX len=N` followed by `N` bytes of JSON whose CRC-32 the
//! header carries. Writes are atomic: temp file, fsync, rename, fsync of the directory, mode
//! 0600; a crash at any point leaves the previous file or the new one, never a torn one.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STORE_FILE: &str = "templates.v1";
const MAGIC: &str = "faceunlock-templates";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}; the file was left untouched")]
    Corrupt { path: PathBuf, message: String },
    #[error("{path}: version {found}, this firmware reads version {VERSION}")]
    Version { path: PathBuf, found: String },
    #[error("{path}: templates were made by model {found}, the loaded model is {expected}; re-enrol (`faceunlock clear` then `enroll`)")]
    ModelMismatch { path: PathBuf, expected: String, found: String },
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

/// The store on disk: loaded once, rewritten atomically on every change.
pub struct TemplateStore {
    path: PathBuf,
    pub data: Templates,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.into(), source }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn encode(data: &Templates) -> Vec<u8> {
    let body = serde_json::to_vec(data).expect("templates serialise");
    let mut out = format!("{MAGIC} {VERSION} crc32={:08x} len={}\n", crc32fast::hash(&body), body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Templates, StoreError> {
    let corrupt = |m: &str| StoreError::Corrupt { path: path.into(), message: m.into() };
    let nl = bytes.iter().position(|b| *b == b'\n').ok_or_else(|| corrupt("no header line"))?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| corrupt("header is not text"))?;
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, version, crc, len] = fields.as_slice() else {
        return Err(corrupt(&format!("header `{header}`, expected `{MAGIC} {VERSION} crc32=… len=…`")));
    };
    if *magic != MAGIC {
        return Err(corrupt(&format!("starts with `{magic}`, expected `{MAGIC}`")));
    }
    if *version != VERSION.to_string() {
        return Err(StoreError::Version { path: path.into(), found: version.to_string() });
    }
    let crc = crc.strip_prefix("crc32=").and_then(|h| u32::from_str_radix(h, 16).ok()).ok_or_else(|| corrupt("bad crc32 field"))?;
    let len: usize = len.strip_prefix("len=").and_then(|l| l.parse().ok()).ok_or_else(|| corrupt("bad len field"))?;
    let body = &bytes[nl + 1..];
    if body.len() != len {
        return Err(corrupt(&format!("body is {} bytes, header says {len} (truncated write?)", body.len())));
    }
    let found = crc32fast::hash(body);
    if found != crc {
        return Err(corrupt(&format!("checksum {found:08x}, header says {crc:08x}")));
    }
    serde_json::from_slice(body).map_err(|e| corrupt(&format!("body is not valid templates JSON: {e}")))
}

/// Atomically replace `path` with `bytes`, mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp-{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("store"), std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut f = options.open(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl TemplateStore {
    /// Open the store in `state_dir` for templates of model `model_sha256` with `dim` values.
    /// A missing file is an empty store; a corrupt one is an error and is never overwritten.
    pub fn open(state_dir: &Path, model_sha256: &str, dim: usize) -> Result<Self, StoreError> {
        let path = state_dir.join(STORE_FILE);
        let data = match std::fs::read(&path) {
            Ok(bytes) => decode(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Templates { model_sha256: model_sha256.into(), dim, people: vec![] },
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        if !data.people.is_empty() && (data.model_sha256 != model_sha256 || data.dim != dim) {
            return Err(StoreError::ModelMismatch { path, expected: model_sha256.into(), found: data.model_sha256 });
        }
        Ok(Self { path, data: Templates { model_sha256: model_sha256.into(), dim, ..data } })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn save(&self) -> Result<(), StoreError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        write_atomic(&self.path, &encode(&self.data))
    }

    /// Add (or replace) a person's templates and persist.
    pub fn enroll(&mut self, name: &str, templates: Vec<Vec<f32>>, now: u64) -> Result<(), StoreError> {
        if !valid_name(name) {
            return Err(StoreError::BadName(name.into()));
        }
        if let Some(bad) = templates.iter().find(|t| t.len() != self.data.dim) {
            return Err(StoreError::Dimension { expected: self.data.dim, found: bad.len() });
        }
        self.data.people.retain(|p| p.name != name);
        self.data.people.push(Person { name: name.into(), templates, enrolled_at: now });
        self.data.people.sort_by(|a, b| a.name.cmp(&b.name));
        self.save()
    }

    pub fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        let before = self.data.people.len();
        self.data.people.retain(|p| p.name != name);
        if self.data.people.len() == before {
            return Err(StoreError::UnknownPerson(name.into()));
        }
        self.save()
    }

    pub fn clear(&mut self) -> Result<(), StoreError> {
        self.data.people.clear();
        self.save()
    }

    pub fn people(&self) -> &[Person] {
        &self.data.people
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> TemplateStore {
        TemplateStore::open(dir, "abc", 2).unwrap()
    }

    #[test]
    fn enrol_persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.enroll("alice", vec![vec![1.0, 0.0]], 7).unwrap();
        s.enroll("bob", vec![vec![0.0, 1.0]], 8).unwrap();
        let again = store(dir.path());
        assert_eq!(again.people().iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(again.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_flipped_byte_is_detected_and_the_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path()).enroll("alice", vec![vec![1.0, 0.0]], 7).unwrap();
        let path = dir.path().join(STORE_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let err = TemplateStore::open(dir.path(), "abc", 2).err().unwrap().to_string();
        assert!(err.contains("checksum") && err.contains(STORE_FILE), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_truncated_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path()).enroll("alice", vec![vec![1.0, 0.0]], 7).unwrap();
        let path = dir.path().join(STORE_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let err = TemplateStore::open(dir.path(), "abc", 2).err().unwrap().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn templates_of_another_model_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path()).enroll("alice", vec![vec![1.0, 0.0]], 7).unwrap();
        let err = TemplateStore::open(dir.path(), "def", 2).err().unwrap().to_string();
        assert!(err.contains("re-enrol"), "{err}");
    }

    #[test]
    fn names_and_dimensions_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        assert!(matches!(s.enroll("../etc", vec![vec![1.0, 0.0]], 0), Err(StoreError::BadName(_))));
        assert!(matches!(s.enroll("al", vec![vec![1.0]], 0), Err(StoreError::Dimension { .. })));
        assert!(matches!(s.remove("nobody"), Err(StoreError::UnknownPerson(_))));
    }
}
