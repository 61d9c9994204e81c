//! The store key from the command line, as the package's postinst and an installer use it:
//! `faceunlock keygen` makes a root-only key once and never replaces it; `doctor` reports where
//! the key comes from (key file or systemd credential) and fails a key file others can read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn faceunlock(dir: &Path, args: &[&str]) -> Command {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut c = Command::new(env!("CARGO_BIN_EXE_faceunlock"));
    c.arg("--models").arg(repo.join("models/manifest.toml")).arg("--state-dir").arg(dir.join("state")).arg("--key-file").arg(dir.join("store.key"));
    c.args(args).env("RUST_LOG", "warn").env_remove("CREDENTIALS_DIRECTORY");
    c
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn store_key_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).lines().find(|l| l.contains("store key:")).unwrap_or_else(|| panic!("no store key line:\n{}", text(out))).to_string()
}

#[test]
fn keygen_makes_a_root_only_key_once_and_doctor_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("store.key");
    let made = faceunlock(dir.path(), &["keygen"]).output().unwrap();
    assert!(made.status.success() && text(&made).contains("created the store key"), "{}", text(&made));
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o400);
    let bytes = std::fs::read(&key).unwrap();

    let again = faceunlock(dir.path(), &["keygen"]).output().unwrap();
    assert!(!again.status.success() && text(&again).contains("already exists; a store key is never overwritten"), "{}", text(&again));
    assert_eq!(std::fs::read(&key).unwrap(), bytes);

    let line = store_key_line(&faceunlock(dir.path(), &["doctor"]).output().unwrap());
    assert!(line.starts_with("ok") && line.contains("mode 0400"), "{line}");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let line = store_key_line(&faceunlock(dir.path(), &["doctor"]).output().unwrap());
    assert!(line.starts_with("FAIL") && line.contains("mode 0644, expected 0400"), "{line}");

    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(credentials.join("store.key"), &bytes).unwrap();
    let out = faceunlock(dir.path(), &["doctor"]).env("CREDENTIALS_DIRECTORY", &credentials).output().unwrap();
    let line = store_key_line(&out);
    assert!(line.starts_with("ok") && line.contains("systemd credential"), "{line}");
}
