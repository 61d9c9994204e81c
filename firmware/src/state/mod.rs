//! The state directory: the template store and the lockout state, sealed at rest
//! ([`sealed`]) under the store key ([`key`]), written atomically ([`atomic`]).
//!
//! Plain files of earlier versions (`templates.v1`, `lockout.json`) are read once, sealed in
//! their place and removed. A sealed file that cannot be opened (another key, another device,
//! edited) is refused with a message naming it and is never overwritten.
//!
//! Threat model, in short. Sealing protects templates and lockout state from being read or
//! edited by someone who copies the state files (a backup, another user, a pulled card on a
//! board whose key is sealed by a TPM2 through `LoadCredentialEncrypted=`), and refuses files
//! moved to another device or key. It does not protect against someone who holds the whole
//! card of a board without a TPM (the key file is on it), nor against root on the running
//! device, nor against rolling a state file back to an older sealed copy from the same device.

pub mod atomic;
pub mod key;
pub mod sealed;

use crate::config::StorageConfig;
use crate::decision::Lockout;
use key::{DeviceId, KeyError, StoreKey};
use sealed::{Kind, SealError, Sealer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Write(#[from] atomic::WriteError),
    #[error(transparent)]
    Sealed(#[from] SealError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("{path}: {message}; the file was left untouched")]
    Content { path: PathBuf, message: String },
    #[error("{key}: no store key, but {sealed} is sealed (with key {fingerprint}): restore the key file from its backup (without it the file cannot be read; to start over, delete the file and re-enrol)")]
    KeyMissing { key: PathBuf, sealed: PathBuf, fingerprint: String },
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Templates => "templates.sealed",
            Kind::Lockout => "lockout.sealed",
        }
    }

    /// The plain file an earlier version kept this state in.
    fn legacy_file(self) -> &'static str {
        match self {
            Kind::Templates => "templates.v1",
            Kind::Lockout => "lockout.json",
        }
    }
}

const KINDS: [Kind; 2] = [Kind::Templates, Kind::Lockout];

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Io { path: path.into(), source }),
    }
}

/// A state directory and the sealer for its files.
#[derive(Clone)]
pub struct StateDir {
    dir: PathBuf,
    sealer: Arc<Sealer>,
}

impl StateDir {
    /// The configured state directory with this device's key: the systemd credential, else the
    /// key file. A missing key file is created only while nothing in the directory is sealed.
    pub fn open(storage: &StorageConfig) -> Result<Self, StateError> {
        let key = match StoreKey::credential() {
            Some(credential) => StoreKey::read(&credential)?,
            None => Self::key_file(&storage.state_dir, &storage.key_file)?,
        };
        Ok(Self::with_sealer(&storage.state_dir, Sealer::new(&key, DeviceId::of_this_machine())))
    }

    fn key_file(dir: &Path, path: &Path) -> Result<StoreKey, StateError> {
        match StoreKey::read(path) {
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                for kind in KINDS {
                    let sealed = dir.join(kind.file());
                    if let Some(bytes) = read_if_present(&sealed)? {
                        let fingerprint = sealed::key_fingerprint(&bytes).unwrap_or_else(|| "unreadable".into());
                        return Err(StateError::KeyMissing { key: path.into(), sealed, fingerprint });
                    }
                }
                let key = StoreKey::create(path)?;
                log::info!("created the store key {} (mode 0400)", path.display());
                Ok(key)
            }
            read => Ok(read?),
        }
    }

    pub fn with_sealer(dir: &Path, sealer: Sealer) -> Self {
        Self { dir: dir.into(), sealer: Arc::new(sealer) }
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    pub fn path(&self, kind: Kind) -> PathBuf {
        self.dir.join(kind.file())
    }

    /// A state file's content, decoded by `decode`: the sealed file's, else the legacy plain
    /// file's (its body taken by `legacy_body`; sealed in its place and removed only once it
    /// decodes), else `None`.
    pub fn load<T>(&self, kind: Kind, legacy_body: impl Fn(&Path, &[u8]) -> Result<Vec<u8>, StateError>, decode: impl Fn(&[u8]) -> Result<T, String>) -> Result<Option<T>, StateError> {
        let path = self.path(kind);
        let legacy = self.dir.join(kind.legacy_file());
        let content = |from: &Path, plain: &[u8]| decode(plain).map_err(|message| StateError::Content { path: from.into(), message });
        if let Some(bytes) = read_if_present(&path)? {
            let value = content(&path, &self.sealer.open(&path, kind, &bytes)?)?;
            // Left by a migration cut short after the sealed file was written.
            if legacy.exists() {
                std::fs::remove_file(&legacy).map_err(|source| StateError::Io { path: legacy, source })?;
            }
            return Ok(Some(value));
        }
        let Some(bytes) = read_if_present(&legacy)? else { return Ok(None) };
        let plain = legacy_body(&legacy, &bytes)?;
        let value = content(&legacy, &plain)?;
        self.store(kind, &plain)?;
        std::fs::remove_file(&legacy).map_err(|source| StateError::Io { path: legacy.clone(), source })?;
        log::info!("sealed {} into {}", legacy.display(), path.display());
        Ok(Some(value))
    }

    /// Seal `plaintext` and replace the state file with it.
    pub fn store(&self, kind: Kind, plaintext: &[u8]) -> Result<(), StateError> {
        let path = self.path(kind);
        std::fs::create_dir_all(&self.dir).map_err(|source| atomic::WriteError::NotWritten { path: path.clone(), source })?;
        atomic::remove_stale_temps(&path);
        atomic::write_atomic(&path, &self.sealer.seal(kind, plaintext)?)?;
        Ok(())
    }

    pub fn load_lockout(&self) -> Result<Lockout, StateError> {
        Ok(self.load(Kind::Lockout, |_, bytes| Ok(bytes.to_vec()), decode_lockout)?.unwrap_or_default())
    }

    pub fn save_lockout(&self, lockout: &Lockout) -> Result<(), StateError> {
        self.store(Kind::Lockout, &serde_json::to_vec(lockout).expect("the lockout state serialises"))
    }
}

/// The lockout state from its JSON.
pub fn decode_lockout(json: &[u8]) -> Result<Lockout, String> {
    serde_json::from_slice(json).map_err(|e| format!("expected the lockout state JSON ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(dir: &Path) -> StorageConfig {
        StorageConfig { state_dir: dir.join("state"), keep_images: false, key_file: dir.join("etc/store.key") }
    }

    #[test]
    fn the_key_is_made_on_first_use_and_its_loss_is_named_once_something_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = storage(dir.path());
        let state = StateDir::open(&cfg).unwrap();
        assert!(cfg.key_file.exists());
        let lockout = Lockout { consecutive_failures: 2, lockouts: 1, locked_until: 99 };
        state.save_lockout(&lockout).unwrap();
        assert_eq!(StateDir::open(&cfg).unwrap().load_lockout().unwrap(), lockout);
        std::fs::remove_file(&cfg.key_file).unwrap();
        let err = StateDir::open(&cfg).err().unwrap().to_string();
        assert!(err.contains("no store key, but") && err.contains("lockout.sealed") && err.contains(state.sealer().key_fingerprint()), "{err}");
        assert!(!cfg.key_file.exists(), "a new key must not replace a lost one while files are sealed");
    }

    #[test]
    fn a_plain_lockout_file_is_sealed_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::with_sealer(dir.path(), sealed::fixed_sealer(3, "pi"));
        std::fs::write(dir.path().join("lockout.json"), br#"{"consecutive_failures":4,"lockouts":0,"locked_until":0}"#).unwrap();
        assert_eq!(state.load_lockout().unwrap().consecutive_failures, 4);
        assert!(!dir.path().join("lockout.json").exists());
        let sealed = std::fs::read(dir.path().join("lockout.sealed")).unwrap();
        assert!(sealed::looks_sealed(&sealed));
        assert_eq!(state.load_lockout().unwrap().consecutive_failures, 4);
    }

    #[test]
    fn a_plain_lockout_file_that_does_not_decode_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::with_sealer(dir.path(), sealed::fixed_sealer(3, "pi"));
        std::fs::write(dir.path().join("lockout.json"), b"{\"consecutive_fail").unwrap();
        let err = state.load_lockout().unwrap_err().to_string();
        assert!(err.contains("lockout.json: expected the lockout state JSON"), "{err}");
        assert!(dir.path().join("lockout.json").exists() && !dir.path().join("lockout.sealed").exists());
    }

    #[test]
    fn a_lockout_file_from_another_device_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        StateDir::with_sealer(dir.path(), sealed::fixed_sealer(3, "pi-a")).save_lockout(&Lockout::default()).unwrap();
        let before = std::fs::read(dir.path().join("lockout.sealed")).unwrap();
        let here = StateDir::with_sealer(dir.path(), sealed::fixed_sealer(3, "pi-b"));
        let err = here.load_lockout().unwrap_err().to_string();
        assert!(err.contains("sealed on another device"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("lockout.sealed")).unwrap(), before);
    }
}
