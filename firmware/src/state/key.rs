//! The store key that seals the state files, and the id of the device they are bound to.
//!
//! The key is 32 random bytes. It comes from the systemd credential `store.key` when the service
//! is given one (`$CREDENTIALS_DIRECTORY`; `LoadCredential=` from the root-only key file, or
//! `LoadCredentialEncrypted=`, which a TPM2 seals to the board), else from the key file
//! (`storage.key_file`, made by the package's postinst with `faceunlock keygen`).
//!
//! The device id is the SoC's serial number where the device tree has one (Raspberry Pi,
//! Jetson), else `/etc/machine-id`.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const KEY_LEN: usize = 32;
/// Name of the systemd credential that carries the key.
pub const CREDENTIAL: &str = "store.key";
/// Mode of a key file: readable by root only.
pub const KEY_FILE_MODE: u32 = 0o400;
const DEVICE_ID_FILES: [&str; 3] = ["/proc/device-tree/serial-number", "/sys/firmware/devicetree/base/serial-number", "/etc/machine-id"];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {found} bytes, expected a {KEY_LEN}-byte store key (as `faceunlock keygen` writes)")]
    Length { path: PathBuf, found: usize },
    #[error("{path} already exists; a store key is never overwritten, the sealed state files need it")]
    Exists { path: PathBuf },
    #[error("the system's random source: {0}")]
    Random(String),
}

/// 16 hex digits of sha256(`domain` ‖ `bytes`): names a key or a device without revealing it.
pub fn fingerprint(domain: &[u8], bytes: &[u8]) -> String {
    Sha256::new().chain_update(domain).chain_update(bytes).finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A store key and its fingerprint.
pub struct StoreKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    fingerprint: String,
}

impl StoreKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self { fingerprint: fingerprint(b"faceunlock store key", &bytes), bytes: Zeroizing::new(bytes) }
    }

    /// Read a key file (or credential) of exactly [`KEY_LEN`] bytes.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::Io { path: path.into(), source })?);
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| KeyError::Length { path: path.into(), found: bytes.len() })?;
        Ok(Self::from_bytes(key))
    }

    /// The systemd credential's path when the service was given one.
    pub fn credential() -> Option<PathBuf> {
        let path = PathBuf::from(std::env::var_os("CREDENTIALS_DIRECTORY")?).join(CREDENTIAL);
        path.exists().then_some(path)
    }

    /// Draw a new key and write it to `path` (mode 0400, synced), refusing to replace a file.
    pub fn create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io { path: path.into(), source };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut drawn = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(drawn.as_mut_slice()).map_err(|e| KeyError::Random(e.to_string()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, KEY_FILE_MODE);
        let mut file = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists { path: path.into() },
            _ => io(e),
        })?;
        let written = file.write_all(drawn.as_slice()).and_then(|_| file.sync_all()).and_then(|_| std::fs::File::open(dir)?.sync_all());
        if let Err(e) = written {
            // A partial key would seal nothing readable later: never leave one behind.
            let _ = std::fs::remove_file(path);
            return Err(io(e));
        }
        Ok(Self::from_bytes(*drawn))
    }

    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// The id of the device the state files are bound to, as a fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceId {
    fingerprint: String,
}

impl DeviceId {
    pub fn named(id: &str) -> Self {
        Self { fingerprint: fingerprint(b"faceunlock device", id.as_bytes()) }
    }

    /// This machine's: the first of the SoC serial number and `/etc/machine-id` that can be read.
    /// Without either the files are bound to the key alone (logged).
    pub fn of_this_machine() -> Self {
        for file in DEVICE_ID_FILES {
            let Ok(raw) = std::fs::read(file) else { continue };
            let id = String::from_utf8_lossy(&raw).trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string();
            if !id.is_empty() {
                return Self::named(&id);
            }
        }
        log::warn!("no device serial number or machine id ({}): state files are bound to the store key only", DEVICE_ID_FILES.join(", "));
        Self::named("")
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_reads_back_root_only_and_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/store.key");
        let made = StoreKey::create(&path).unwrap();
        let read = StoreKey::read(&path).unwrap();
        assert_eq!(made.fingerprint(), read.fingerprint());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), KEY_LEN as u64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, KEY_FILE_MODE);
        }
        assert!(matches!(StoreKey::create(&path), Err(KeyError::Exists { .. })));
        assert_eq!(StoreKey::read(&path).unwrap().fingerprint(), made.fingerprint());
        assert_ne!(StoreKey::create(&dir.path().join("other.key")).unwrap().fingerprint(), made.fingerprint());
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        std::fs::write(&path, b"0123456789abcdef0123456789abcdef\n").unwrap();
        let err = StoreKey::read(&path).err().unwrap().to_string();
        assert!(err.contains("store.key: 33 bytes, expected a 32-byte store key"), "{err}");
    }
}
