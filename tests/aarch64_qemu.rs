//! The firmware's unit tests and the golden embedding and detection checks, cross-built for aarch64 and run under
//! qemu-user twice: as a Cortex-A53 (Pi 3) with `TRACT_CPU_AARCH64_KIND=a53`, and as a
//! Cortex-A76 (an ARMv8.2 core, as the A55 tuning assumes) with `TRACT_CPU_AARCH64_KIND=a55`.
//! Built as the packages are, with `cargo-zigbuild` against glibc 2.27 (JetPack 4's), and then
//! the `faceunlock` binary's dynamic symbols must need no glibc above 2.27 (`cargo xtask
//! glibc-floor`). Needs the `aarch64-unknown-linux-gnu` rustup target, `qemu-aarch64` with the
//! arm64 loader in `/usr/aarch64-linux-gnu`, and cargo-zigbuild + zig, or else
//! `aarch64-linux-gnu-gcc` (then the glibc floor is not checked, and says so); `.ci/run`
//! installs them. Without them it is skipped with a notice.

use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "aarch64-unknown-linux-gnu";
const SYSROOT: &str = "/usr/aarch64-linux-gnu";

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

/// Whether `cargo-zigbuild` can link here (it finds zig on PATH or as the `ziglang` pip package).
fn zig_builds() -> bool {
    runs("cargo-zigbuild", &["--version"]) && (runs("zig", &["version"]) || runs("python3", &["-m", "ziglang", "version"]))
}

/// The cargo that cross-builds the tests: `cargo-zigbuild test` against glibc 2.27, else plain
/// `cargo test` linked by `aarch64-linux-gnu-gcc` (the sysroot's glibc).
fn cross_cargo() -> Option<Command> {
    if zig_builds() {
        let mut cmd = Command::new("cargo-zigbuild");
        cmd.args(["test", "--target", &format!("{TARGET}.2.27")]);
        return Some(cmd);
    }
    on_path("aarch64-linux-gnu-gcc").then(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["test", "--target", TARGET]).env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc").env("CC_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-gcc");
        cmd
    })
}

/// Why the cross run cannot happen here, if it cannot.
fn missing() -> Option<String> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().ok()?;
    let std_dir = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim()).join("lib/rustlib").join(TARGET);
    if !std_dir.exists() {
        return Some(format!("the rustup target {TARGET} is not installed (rustup target add {TARGET})"));
    }
    if !on_path("qemu-aarch64") || !PathBuf::from(SYSROOT).join("lib/ld-linux-aarch64.so.1").exists() {
        return Some(format!("qemu-aarch64 or the arm64 loader in {SYSROOT} is missing (apt-get install qemu-user libc6-arm64-cross)"));
    }
    cross_cargo().is_none().then(|| "neither cargo-zigbuild with zig nor aarch64-linux-gnu-gcc is installed (pip install ziglang; cargo install cargo-zigbuild)".into())
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
        let out = cross_cargo()
            .expect("checked by missing()")
            .current_dir(faceunlock_e2e::repo_root())
            .args(["-p", "faceunlock-core", "-p", "faceunlock", "--lib", "--test", "golden_embedding", "--test", "golden_detection", "--", "--nocapture"])
            .env("CARGO_TARGET_DIR", &target_dir)
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
    let binary = target_dir.join(TARGET).join("debug/faceunlock");
    if !zig_builds() {
        eprintln!("SKIPPED: the glibc floor of {}: built with the sysroot's glibc, not cargo-zigbuild", binary.display());
        return;
    }
    let floor = Command::new(env!("CARGO")).current_dir(faceunlock_e2e::repo_root()).args(["run", "-q", "-p", "xtask", "--", "glibc-floor"]).arg(&binary).output().expect("cargo runs");
    let report = format!("{}{}", String::from_utf8_lossy(&floor.stdout), String::from_utf8_lossy(&floor.stderr));
    assert!(floor.status.success(), "the arm64 firmware needs a glibc newer than JetPack 4's 2.27:\n{report}");
    eprint!("{report}");
}
