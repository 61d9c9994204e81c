//! A full disk and a read-only state directory, for real: this test binary runs again as a child
//! in a user and mount namespace (`unshare --user --map-root-user --mount`) where it mounts a
//! 48 KiB tmpfs as the state directory. Enrolling until the disk is full must end in a clear
//! error naming the store, with the previous store intact; so must enrolling and saving the
//! lockout state once the directory is remounted read-only. Says SKIPPED where the machine
//! allows no such namespace.

use faceunlock::decision::Lockout;
use faceunlock::state::StateDir;
use faceunlock::state::sealed::fixed_sealer;
use faceunlock::templates::TemplateStore;
use std::path::Path;
use std::process::Command;

const CHILD_DIR: &str = "FACEUNLOCK_FULL_DISK_CHILD";
const MODEL: &str = "full-disk-model";
const DIM: usize = 128;

fn mount(args: &[&str], dir: &Path) {
    let status = Command::new("mount").args(args).arg(dir).status().expect("running mount in the namespace");
    assert!(status.success(), "mount {args:?} {}", dir.display());
}

fn open(dir: &Path) -> (StateDir, TemplateStore) {
    let state = StateDir::with_sealer(dir, fixed_sealer(9, "full-disk"));
    let store = TemplateStore::open(&state, MODEL, DIM).expect("the previous store must still open");
    (state, store)
}

fn template(i: usize) -> Vec<Vec<f32>> {
    (0..5).map(|t| (0..DIM).map(|d| ((i * 7 + t * 3 + d) % 17) as f32 / 17.0 - 0.5).collect()).collect()
}

/// Runs only as the child, inside the namespace.
#[test]
fn full_disk_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else { return };
    let dir = Path::new(&dir);
    mount(&["-t", "tmpfs", "-o", "size=48k", "tmpfs"], dir);
    let (state, mut store) = open(dir);
    state.save_lockout(&Lockout { consecutive_failures: 1, ..Lockout::default() }).unwrap();
    let mut enrolled = 0;
    let err = loop {
        match store.enroll(&format!("p{enrolled}"), template(enrolled), 0) {
            Ok(()) => enrolled += 1,
            Err(e) => break e.to_string(),
        }
        assert!(enrolled < 1_000, "48 KiB never filled up");
    };
    assert!(err.contains("templates.sealed: writing failed (No space left on device") && err.contains("the previous file is kept"), "{err}");
    assert!(enrolled > 0, "nothing fitted: {err}");
    let before = store.people().to_vec();
    assert_eq!(open(dir).1.people(), before, "the full disk changed the store");
    println!("disk full after {enrolled} people: {err}");

    mount(&["-o", "remount,ro"], dir);
    let err = store.enroll("late", template(999), 0).unwrap_err().to_string();
    assert!(err.contains("templates.sealed: writing failed (Read-only file system"), "{err}");
    assert_eq!(store.people(), before, "a failed write changed the store in memory");
    let err = state.save_lockout(&Lockout::default()).unwrap_err().to_string();
    assert!(err.contains("lockout.sealed: writing failed (Read-only file system"), "{err}");
    let (state, store) = open(dir);
    assert_eq!(store.people(), before);
    assert_eq!(state.load_lockout().unwrap().consecutive_failures, 1);
    println!("read-only: {err}");
    println!("FULL-DISK-CHILD-PASSED");
}

#[test]
fn a_full_or_read_only_state_dir_keeps_the_previous_store() {
    let probe = Command::new("unshare").args(["--user", "--map-root-user", "--mount", "true"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = probe.map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string()).unwrap_or_else(|e| e.to_string());
        println!("SKIPPED: no user+mount namespace here (unshare: {why})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "full_disk_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("FULL-DISK-CHILD-PASSED"), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for marker in ["disk full after", "read-only:"] {
        let line = stdout.lines().find_map(|l| l.find(marker).map(|at| &l[at..]));
        println!("{}", line.unwrap_or_default());
    }
}
