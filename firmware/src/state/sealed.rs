//! The sealed file format: a state file's plaintext encrypted and authenticated with
//! XChaCha20-Poly1305 under the store key, bound to one device.
//!
//! One header line, which is the AEAD's associated data, then the ciphertext and its 16-byte tag:
//!
//! ```text
//! faceunlock-sealed 2 kind=templates device=<16 hex> key=<16 hex> nonce=<48 hex>
//! ```
//!
//! `device` and `key` are fingerprints (sha256, 64 bits) of the device id and of the key, so a
//! file from another device, or sealed under another key, is refused as such rather than as
//! "edited"; any change to the header or the body fails authentication. Every write draws a
//! fresh 192-bit random nonce, so nonces never repeat under one key.

use super::key::{DeviceId, StoreKey};
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::path::{Path, PathBuf};

const MAGIC: &str = "faceunlock-sealed";
const FORMAT: &str = "2";
const NONCE_LEN: usize = 24;

/// What a sealed file holds; a file of one kind is never read as the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Templates,
    Lockout,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Templates => "templates",
            Kind::Lockout => "lockout",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{path}: {message}; the file was left untouched")]
    Malformed { path: PathBuf, message: String },
    #[error("{path}: holds the {found} state, expected the {expected} state; the file was left untouched")]
    WrongKind { path: PathBuf, expected: &'static str, found: String },
    #[error("{path}: sealed with another key (key {found}; this device's key is {ours}): the file was copied from another device or the key was replaced; the file was left untouched")]
    OtherKey { path: PathBuf, found: String, ours: String },
    #[error("{path}: sealed on another device (device {found}; this one is {ours}): the file was copied from another device; the file was left untouched")]
    OtherDevice { path: PathBuf, found: String, ours: String },
    #[error("{path}: authentication failed: the file was edited or damaged; the file was left untouched")]
    Tampered { path: PathBuf },
    #[error("drawing a nonce from the system's random source: {0}")]
    Random(String),
}

/// The fields of a sealed file's header.
struct Header<'a> {
    kind: &'a str,
    device: &'a str,
    key: &'a str,
    nonce: [u8; NONCE_LEN],
}

/// Split a sealed file into its header (parsed), the header's bytes and the sealed body.
fn split<'a>(path: &Path, bytes: &'a [u8]) -> Result<(Header<'a>, &'a [u8], &'a [u8]), SealError> {
    let malformed = |message: String| SealError::Malformed { path: path.into(), message };
    let nl = bytes.iter().position(|b| *b == b'\n').ok_or_else(|| malformed("no header line".into()))?;
    let line = std::str::from_utf8(&bytes[..nl]).map_err(|_| malformed("header is not text".into()))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let expected = format!("expected `{MAGIC} {FORMAT} kind=… device=… key=… nonce=…`");
    let [magic, format, kind, device, key, nonce] = fields.as_slice() else {
        return Err(malformed(format!("header has {} fields, {expected}", fields.len())));
    };
    if *magic != MAGIC {
        return Err(malformed(format!("not a sealed faceunlock file, {expected}")));
    }
    if *format != FORMAT {
        return Err(malformed(format!("sealed format `{format}`, this firmware reads format {FORMAT}")));
    }
    let field = |text: &'a str, name: &str| text.strip_prefix(name).and_then(|v| v.strip_prefix('=')).ok_or_else(|| malformed(format!("header field `{text}`, {expected}")));
    let nonce_hex = field(nonce, "nonce")?;
    let nonce = decode_hex::<NONCE_LEN>(nonce_hex).ok_or_else(|| malformed(format!("nonce `{nonce_hex}`, expected {} hex digits", 2 * NONCE_LEN)))?;
    let header = Header { kind: field(kind, "kind")?, device: field(device, "device")?, key: field(key, "key")?, nonce };
    Ok((header, &bytes[..nl], &bytes[nl + 1..]))
}

fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Whether `bytes` start like a sealed file (of any format version).
pub fn looks_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC.as_bytes())
}

/// The key fingerprint a sealed file names, if its header can be read.
pub fn key_fingerprint(bytes: &[u8]) -> Option<String> {
    split(Path::new(""), bytes).ok().map(|(h, _, _)| h.key.to_string())
}

/// Seals and opens state files with one device's key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    key: String,
    device: DeviceId,
}

impl Sealer {
    pub fn new(key: &StoreKey, device: DeviceId) -> Self {
        Self { cipher: XChaCha20Poly1305::new(key.bytes().into()), key: key.fingerprint().to_string(), device }
    }

    /// Fingerprint of the key this sealer uses.
    pub fn key_fingerprint(&self) -> &str {
        &self.key
    }

    pub fn seal(&self, kind: Kind, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce = XNonce::try_generate().map_err(|e| SealError::Random(e.to_string()))?;
        let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let header = format!("{MAGIC} {FORMAT} kind={} device={} key={} nonce={hex}", kind.name(), self.device.fingerprint(), self.key);
        let body = self.cipher.encrypt(&nonce, Payload { msg: plaintext, aad: header.as_bytes() }).expect("XChaCha20-Poly1305 encrypts any message under 256 GiB");
        let mut out = header.into_bytes();
        out.push(b'\n');
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The plaintext of the sealed file `path` (for messages) holding `bytes`.
    pub fn open(&self, path: &Path, kind: Kind, bytes: &[u8]) -> Result<Vec<u8>, SealError> {
        let (header, aad, body) = split(path, bytes)?;
        if header.kind != kind.name() {
            return Err(SealError::WrongKind { path: path.into(), expected: kind.name(), found: header.kind.into() });
        }
        if header.key != self.key {
            return Err(SealError::OtherKey { path: path.into(), found: header.key.into(), ours: self.key.clone() });
        }
        if header.device != self.device.fingerprint() {
            return Err(SealError::OtherDevice { path: path.into(), found: header.device.into(), ours: self.device.fingerprint().into() });
        }
        self.cipher.decrypt(&XNonce::from(header.nonce), Payload { msg: body, aad }).map_err(|_| SealError::Tampered { path: path.into() })
    }
}

/// A sealer with a fixed key and device, for tests and fuzzing.
pub fn fixed_sealer(seed: u8, device: &str) -> Sealer {
    Sealer::new(&StoreKey::from_bytes([seed; super::key::KEY_LEN]), DeviceId::named(device))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "state/templates.sealed";

    fn sealed(sealer: &Sealer) -> Vec<u8> {
        sealer.seal(Kind::Templates, b"{\"people\":[]}").unwrap()
    }

    fn open(sealer: &Sealer, bytes: &[u8]) -> Result<Vec<u8>, SealError> {
        sealer.open(Path::new(PATH), Kind::Templates, bytes)
    }

    #[test]
    fn a_sealed_file_opens_and_hides_its_content() {
        let s = fixed_sealer(1, "pi-1");
        let bytes = sealed(&s);
        assert!(!bytes.windows(6).any(|w| w == b"people"));
        assert_eq!(open(&s, &bytes).unwrap(), b"{\"people\":[]}");
        // A fresh nonce per write: the same content seals differently.
        assert_ne!(sealed(&s), bytes);
    }

    #[test]
    fn every_edited_byte_is_refused() {
        let s = fixed_sealer(1, "pi-1");
        let bytes = sealed(&s);
        for i in 0..bytes.len() {
            let mut edited = bytes.clone();
            edited[i] ^= 0x20;
            let err = open(&s, &edited).unwrap_err();
            assert!(err.to_string().contains(PATH) && err.to_string().contains("left untouched"), "byte {i}: {err}");
        }
        let err = open(&s, &bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(err, SealError::Tampered { .. }), "{err}");
    }

    #[test]
    fn another_key_or_device_or_kind_is_named() {
        let bytes = sealed(&fixed_sealer(1, "pi-1"));
        let err = open(&fixed_sealer(2, "pi-1"), &bytes).unwrap_err().to_string();
        assert!(err.contains("sealed with another key"), "{err}");
        let err = open(&fixed_sealer(1, "pi-2"), &bytes).unwrap_err().to_string();
        assert!(err.contains("sealed on another device"), "{err}");
        let err = fixed_sealer(1, "pi-1").open(Path::new(PATH), Kind::Lockout, &bytes).unwrap_err().to_string();
        assert!(err.contains("holds the templates state, expected the lockout state"), "{err}");
    }

    #[test]
    fn a_forged_header_naming_this_device_fails_authentication() {
        let theirs = fixed_sealer(1, "pi-2");
        let mut raw = sealed(&theirs);
        let at = raw.windows(7).position(|w| w == b"device=").unwrap() + 7;
        raw[at..at + 16].copy_from_slice(DeviceId::named("pi-1").fingerprint().as_bytes());
        assert!(matches!(open(&fixed_sealer(1, "pi-1"), &raw), Err(SealError::Tampered { .. })));
    }
}
