//! How arm64 binaries are built here, and the glibc they need.
//!
//! The build machine's cross sysroot (Debian 12) would make every arm64 binary need glibc 2.36,
//! which no JetPack has. `cargo-zigbuild` links against the symbol versions of an older glibc
//! instead: [`GLIBC_FLOOR`] is JetPack 4's (Ubuntu 18.04, Jetson Nano), so one arm64 binary runs
//! on Raspberry Pi OS Bookworm and on JetPack 4, 5 and 6. [`glibc_needed`] reads what a built
//! binary asks of the dynamic loader.

use anyhow::{Context, Result, bail};
use object::read::elf::{ElfFile64, Sym};
use std::path::Path;
use std::process::Command;

/// The newest glibc an arm64 binary may need: JetPack 4.6's 2.27.
pub const GLIBC_FLOOR: (u32, u32) = (2, 27);

/// What `cargo-zigbuild` needs, if this machine lacks it.
pub fn zig_missing() -> Option<&'static str> {
    let runs = |program: &str, args: &[&str]| Command::new(program).args(args).output().is_ok_and(|o| o.status.success());
    if !runs("cargo-zigbuild", &["--version"]) {
        return Some("cargo-zigbuild is not installed (cargo install cargo-zigbuild --locked)");
    }
    if !runs("zig", &["version"]) && !runs("python3", &["-m", "ziglang", "version"]) {
        return Some("zig is not installed (pip install ziglang)");
    }
    None
}

/// `cargo SUBCOMMAND --target TARGET ARGS` in the repository: plain cargo for the host;
/// `cargo-zigbuild` with [`GLIBC_FLOOR`] for aarch64 (`build` is its `zigbuild`).
pub fn cargo(target: &str, subcommand: &str, args: &[&str]) -> Result<Command> {
    let mut cmd = if target.starts_with("aarch64") {
        if let Some(missing) = zig_missing() {
            bail!("arm64 builds link against glibc {}.{} through cargo-zigbuild, but {missing}", GLIBC_FLOOR.0, GLIBC_FLOOR.1);
        }
        let mut cmd = Command::new("cargo-zigbuild");
        cmd.current_dir(crate::repo()).arg(if subcommand == "build" { "zigbuild" } else { subcommand });
        cmd.args(["--target", &format!("{target}.{}.{}", GLIBC_FLOOR.0, GLIBC_FLOOR.1)]);
        cmd
    } else {
        let mut cmd = plain_cargo();
        cmd.args([subcommand, "--target", target]);
        cmd
    };
    cmd.args(args);
    Ok(cmd)
}

/// The cargo that runs this task (`CARGO`), else `cargo`, in the repository.
pub fn plain_cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(crate::repo());
    cmd
}

/// Every `GLIBC_x.y` version the binary's dynamic symbols require, newest first, each with one
/// symbol that requires it (empty for a static binary).
pub fn glibc_needed(binary: &Path) -> Result<Vec<((u32, u32), String)>> {
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let elf = ElfFile64::<object::Endianness>::parse(&*data).with_context(|| format!("{}: not a 64-bit ELF file", binary.display()))?;
    let (endian, sections) = (elf.endian(), elf.elf_section_table());
    let Some(versions) = sections.versions(endian, &*data)? else { return Ok(Vec::new()) };
    let symbols = sections.symbols(endian, &*data, object::elf::SHT_DYNSYM)?;
    let mut needed: Vec<((u32, u32), String)> = Vec::new();
    for (index, symbol) in symbols.enumerate() {
        let Some(version) = versions.version(versions.version_index(endian, index).index())? else { continue };
        let Some(number) = std::str::from_utf8(version.name()).ok().and_then(|n| n.strip_prefix("GLIBC_")).and_then(parse_version) else { continue };
        if !needed.iter().any(|(v, _)| *v == number) {
            let name = String::from_utf8_lossy(symbol.name(endian, symbols.strings())?).into_owned();
            needed.push((number, name));
        }
    }
    needed.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    Ok(needed)
}

/// `2.27` (or `2.17.1`: the third part does not matter here) → `(2, 27)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.').map(str::parse::<u32>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// Fail unless every binary needs at most [`GLIBC_FLOOR`]; one line per binary.
pub fn check_floor(binaries: &[impl AsRef<Path>]) -> Result<()> {
    let mut over = Vec::new();
    for binary in binaries.iter().map(AsRef::as_ref) {
        let needed = glibc_needed(binary)?;
        match needed.first() {
            Some(((major, minor), symbol)) => println!("{}: needs glibc {major}.{minor} (for {symbol})", binary.display()),
            None => println!("{}: needs no versioned glibc symbol", binary.display()),
        }
        let too_new: Vec<String> = needed.iter().filter(|(v, _)| *v > GLIBC_FLOOR).map(|((a, b), s)| format!("GLIBC_{a}.{b} ({s})")).collect();
        if !too_new.is_empty() {
            over.push(format!("{}: {}", binary.display(), too_new.join(", ")));
        }
    }
    if !over.is_empty() {
        bail!("above the glibc floor {}.{}: {}", GLIBC_FLOOR.0, GLIBC_FLOOR.1, over.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number_not_by_text() {
        assert_eq!(parse_version("2.27"), Some((2, 27)));
        assert_eq!(parse_version("2.17.1"), Some((2, 17)));
        assert_eq!(parse_version("PRIVATE"), None);
        assert!(parse_version("2.3").unwrap() < parse_version("2.27").unwrap());
    }

    #[test]
    fn this_host_binary_needs_a_glibc_it_can_name() {
        let me = std::env::current_exe().unwrap();
        let needed = glibc_needed(&me).unwrap();
        assert!(needed.iter().any(|(v, symbol)| *v >= (2, 2) && !symbol.is_empty()), "{needed:?}");
        assert!(needed.windows(2).all(|w| w[0].0 > w[1].0), "newest first, each version once: {needed:?}");
    }
}
