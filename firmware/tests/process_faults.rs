//! Process-level faults, with the real `faceunlock` binary and the shipped embedder: a process
//! killed mid-enrol leaves the previous store intact and readable, and SIGTERM during the
//! service loop leaves the relay locked. With the shipped models (`models/manifest.toml`).

mod common;

use faceunlock::config::Config;
use faceunlock::frame::ImageFiles;
use faceunlock::relay::Relay;
use faceunlock::state::StateDir;
use faceunlock::templates::TemplateStore;
use faceunlock_core::contract::Manifest;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn manifest_path() -> PathBuf {
    common::repo().join("models/manifest.toml")
}

fn write_config(dir: &Path) -> PathBuf {
    let cfg = format!(
        "[models]\nmanifest = {:?}\n[storage]\nstate_dir = {:?}\nkeep_images = false\nkey_file = {:?}\n",
        manifest_path().display().to_string(),
        dir.join("state").display().to_string(),
        dir.join("store.key").display().to_string()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn faces(dir: &Path, person: u32) -> PathBuf {
    let g = faceunlock_data::synth::Generator::new(5);
    let out = dir.join(format!("faces{person}"));
    faceunlock::demo::render_views(&g, person, &faceunlock::demo::enrol_views(), &out).unwrap();
    out
}

fn enroll(config: &Path, name: &str, source: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_faceunlock"));
    c.args(["--config"]).arg(config).args(["enroll", "--name", name, "--source"]).arg(source);
    c.env("RUST_LOG", "warn");
    c
}

fn open_store(config: &Path) -> TemplateStore {
    let m = Manifest::load(&manifest_path()).unwrap();
    let sha = m.embedder(&manifest_path()).unwrap().sha256.clone();
    let cfg = Config::from_toml(&std::fs::read_to_string(config).unwrap()).unwrap();
    TemplateStore::open(&StateDir::open(&cfg.storage).unwrap(), &sha, 128).expect("the store must stay readable")
}

#[test]
fn a_process_killed_mid_enrol_leaves_the_previous_store_intact() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let alice = faces(dir.path(), 0);
    let bob = faces(dir.path(), 1);
    assert!(enroll(&config, "alice", &alice).status().unwrap().success());
    let before = open_store(&config).people().to_vec();
    assert_eq!(before.len(), 1);

    // How long a full enrolment takes, then kills spread over that span.
    let t = Instant::now();
    assert!(enroll(&config, "bob", &bob).status().unwrap().success());
    let full = t.elapsed();
    for i in 0..10u32 {
        let mut child = enroll(&config, &format!("bob{i}"), &bob).spawn().unwrap();
        std::thread::sleep(full.mul_f64(f64::from(i) / 10.0));
        child.kill().unwrap();
        child.wait().unwrap();
        let store = open_store(&config);
        let names: Vec<&str> = store.people().iter().map(|p| p.name.as_str()).collect();
        assert!(names.contains(&"alice") && names.contains(&"bob"), "kill {i}: {names:?}");
        assert_eq!(store.people().iter().find(|p| p.name == "alice").unwrap(), &before[0]);
        for p in store.people() {
            assert!(!p.templates.is_empty(), "kill {i}: {} stored without templates", p.name);
        }
    }
    // No temp files left where they could be mistaken for the store.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("state")).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.len() <= 1, "{leftovers:?}");
}

#[test]
fn sigterm_in_the_service_loop_leaves_the_relay_locked() {
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg: Config = Config::from_toml(&std::fs::read_to_string(write_config(dir.path())).unwrap()).unwrap();
    cfg.decision.attempt_timeout_ms = 200;
    let mut u = faceunlock::app::Unlocker::open(cfg, None).unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, std::sync::Arc::clone(&stop)).unwrap();
    // Locked at start, locked when the loop ends, locked again on drop; never energised.
    let mut pin = Mock::new(&[Transaction::set(State::Low), Transaction::set(State::Low), Transaction::set(State::Low)]);
    {
        let mut relay = Relay::new(pin.clone(), false, Duration::from_millis(10)).unwrap();
        let stranger = faces(dir.path(), 3);
        let mut source = ImageFiles::open_dir(&stranger, true).unwrap();
        let killer = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        });
        u.serve(&mut source, &mut relay, &stop).unwrap();
        killer.join().unwrap();
    }
    pin.done();
}
