//! Provisioning against a local directory standing in for the board, with a stand-in package
//! whose `faceunlock` records its arguments: every step must leave its trace (package unpacked,
//! board file written, unit present, doctor run, bench report fetched). Needs `dpkg-deb`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const FAKE_FACEUNLOCK: &str = r#"#!/bin/sh
echo "$@" >> "$(dirname "$0")/../../var/tmp/faceunlock-calls"
for a in "$@"; do
  case "$a" in doctor) echo "verdict: READY";; esac
done
while [ $# -gt 0 ]; do
  if [ "$1" = --json ]; then echo '{"frames": 3}' > "$2"; fi
  shift
done
"#;

fn fake_package(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("pkg");
    for d in ["DEBIAN", "usr/bin", "lib/systemd/system", "var/tmp"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    std::fs::write(tree.join("DEBIAN/control"), "Package: faceunlock\nVersion: 0.0.1\nArchitecture: all\nMaintainer: test <t@t.invalid>\nDescription: stand-in\n").unwrap();
    let bin = tree.join("usr/bin/faceunlock");
    std::fs::write(&bin, FAKE_FACEUNLOCK).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(tree.join("lib/systemd/system/faceunlock.service"), "[Service]\n").unwrap();
    let deb = dir.join("faceunlock.deb");
    let status = Command::new("dpkg-deb").args(["--root-owner-group", "--build"]).arg(&tree).arg(&deb).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    deb
}

#[test]
fn every_step_reaches_the_stand_in_board() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("SKIPPED: dpkg-deb is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = fake_package(dir.path());
    let root = dir.path().join("board");
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["provision", "--board", "x86-dev", "--local"])
        .arg(&root)
        .arg("--deb")
        .arg(&deb)
        .arg("--out")
        .arg(&out)
        .args(["--frames", "3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    let repo = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from).join("..");
    assert_eq!(std::fs::read(root.join("etc/faceunlock/board.toml")).unwrap(), std::fs::read(repo.join("boards/x86-dev.toml")).unwrap());
    let calls = std::fs::read_to_string(root.join("var/tmp/faceunlock-calls")).unwrap();
    assert!(calls.lines().any(|l| l.ends_with("doctor")), "{calls}");
    assert!(calls.lines().any(|l| l.contains("bench --frames 3 --json")), "{calls}");
    assert_eq!(std::fs::read_to_string(out.join("x86-dev-bench.json")).unwrap().trim(), r#"{"frames": 3}"#);
    assert!(stdout.contains("provisioned x86-dev: doctor READY"), "{stdout}");

    let bad = Command::new(env!("CARGO_BIN_EXE_xtask")).args(["provision", "--board", "no-such-board", "--local"]).arg(&root).output().unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("no-such-board.toml"), "{err}");
}
