//! The firmware's unit tests and the golden embedding and detection checks, cross-built for aarch64 and run under
//! qemu-user twice: as a Cortex-A53 (Pi 3) with `TRACT_CPU_AARCH64_KIND=a53`, and as a
//! Cortex-A76 (an ARMv8.2 core, as the A55 tuning assumes) with `TRACT_CPU_AARCH64_KIND=a55`.
//! Needs the `aarch64-unknown-linux-gnu` rustup target, `aarch64-linux-gnu-gcc` and
//! `qemu-aarch64` (`.ci/run` installs them); without them it is skipped with a notice.

use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "aarch64-unknown-linux-gnu";
const SYSROOT: &str = "/usr/aarch64-linux-gnu";

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

/// Why the cross run cannot happen here, if it cannot.
fn missing() -> Option<String> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().ok()?;
    let std_dir = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim()).join("lib/rustlib").join(TARGET);
    if !std_dir.exists() {
        return Some(format!("the rustup target {TARGET} is not installed (rustup target add {TARGET})"));
    }
    ["aarch64-linux-gnu-gcc", "qemu-aarch64"]
        .into_iter()
        .find(|t| !on_path(t))
        .map(|t| format!("{t} is not on PATH (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"))
}

#[test]
fn firmware_tests_pass_on_aarch64_under_qemu() {
    if let Some(why) = missing() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: aarch64 under qemu: {why}");
        return;
    }
    let models = std::fs::read_dir(faceunlock_e2e::repo_root().join("models")).expect("models/ is readable");
    let shipped_manifests = models.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with("manifest") && n.ends_with(".toml")).count();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| faceunlock_e2e::repo_root().join("target"), PathBuf::from).join("cross");
    for (cpu, kind) in [("cortex-a53", "a53"), ("cortex-a76", "a55")] {
        let out = Command::new(env!("CARGO"))
            .current_dir(faceunlock_e2e::repo_root())
            .args(["test", "--target", TARGET, "-p", "faceunlock-core", "-p", "faceunlock", "--lib", "--test", "golden_embedding", "--test", "golden_detection", "--", "--nocapture"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc")
            .env("CC_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-gcc")
            .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER", format!("qemu-aarch64 -cpu {cpu} -L {SYSROOT}"))
            .env("TRACT_CPU_AARCH64_KIND", kind)
            .output()
            .expect("cargo runs");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let tail: String = text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        assert!(out.status.success(), "aarch64 tests failed on {cpu} ({kind}):\n{tail}");
        // One line per shipped embedder: `embedding.json on aarch64 …`, `embedding-masked.json …`.
        let golden: Vec<&str> = text.lines().filter(|l| l.starts_with("embedding") && l.contains(".json on aarch64")).collect();
        assert_eq!(golden.len(), shipped_manifests, "the golden check did not run for every models/manifest*.toml on {cpu}:\n{tail}");
        golden.iter().for_each(|g| eprintln!("{cpu}: {g}"));
        let detection = text.lines().find(|l| l.starts_with("detection.json on aarch64")).unwrap_or_else(|| panic!("the golden detection check did not run on {cpu}:\n{tail}"));
        eprintln!("{cpu}: {detection}");
        let passed: usize = text.lines().filter_map(|l| l.strip_prefix("test result: ok. ")).filter_map(|l| l.split(' ').next()?.parse::<usize>().ok()).sum();
        assert!(passed >= 20, "expected the firmware's unit tests to run on {cpu}, {passed} passed:\n{tail}");
    }
}
