//! Where provisioning happens: a board over SSH, or a local directory standing in for one.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub trait Target {
    /// Put a local file at `remote` (absolute path on the target) with `mode`.
    fn put(&self, local: &Path, remote: &str, mode: u32) -> Result<()>;
    /// Install the package already put at `remote_deb`.
    fn install(&self, remote_deb: &str) -> Result<()>;
    fn enable_service(&self) -> Result<()>;
    /// How the installed `faceunlock` must name the target path `remote`.
    fn path(&self, remote: &str) -> String;
    /// Run the installed `faceunlock` (as the service user) with `args`.
    fn faceunlock(&self, args: &[String]) -> Result<Output>;
    /// Bring the target file `remote` back to `local`.
    fn get(&self, remote: &str, local: &Path) -> Result<()>;
}

/// Run a command, failing with its stderr when it fails.
pub fn checked(cmd: &mut Command) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("starting {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out)
}

/// A board reached with `ssh`/`scp` (key-based login; `sudo` for the installing steps).
pub struct Ssh {
    pub host: String,
}

impl Ssh {
    fn ssh(&self, remote_command: &str) -> Result<Output> {
        checked(Command::new("ssh").args([self.host.as_str(), remote_command]))
    }
}

impl Target for Ssh {
    fn put(&self, local: &Path, remote: &str, mode: u32) -> Result<()> {
        let staging = format!("/tmp/faceunlock-provision-{}", local.file_name().and_then(|n| n.to_str()).unwrap_or("file"));
        checked(Command::new("scp").arg(local).arg(format!("{}:{staging}", self.host)))?;
        self.ssh(&format!("sudo install -D -m {mode:o} {staging} {remote} && rm -f {staging}"))?;
        Ok(())
    }
    fn install(&self, remote_deb: &str) -> Result<()> {
        self.ssh(&format!("sudo apt-get install -y --reinstall {remote_deb}")).map(drop)
    }
    fn enable_service(&self) -> Result<()> {
        self.ssh("sudo systemctl daemon-reload && sudo systemctl enable --now faceunlock").map(drop)
    }
    fn path(&self, remote: &str) -> String {
        remote.to_string()
    }
    fn faceunlock(&self, args: &[String]) -> Result<Output> {
        // As root: the store key is root-only; files written in the state directory are handed
        // to its owner, the service user.
        let line = format!("sudo faceunlock --state-dir /var/lib/faceunlock {}", args.join(" "));
        Command::new("ssh").args([self.host.as_str(), &line]).output().with_context(|| format!("ssh {}", self.host))
    }
    fn get(&self, remote: &str, local: &Path) -> Result<()> {
        checked(Command::new("scp").arg(format!("{}:{remote}", self.host)).arg(local)).map(drop)
    }
}

/// A directory standing in for the board's root file system. The package is unpacked into it
/// (`dpkg-deb -x`), and `faceunlock` runs from it through `runner` (`qemu-aarch64 -L …` for an
/// arm64 package on x86-64; empty for a native one) with the installed board file, models and
/// state directory.
pub struct LocalRoot {
    pub root: PathBuf,
    pub runner: Vec<String>,
}

impl LocalRoot {
    fn at(&self, remote: &str) -> PathBuf {
        self.root.join(remote.trim_start_matches('/'))
    }
}

impl Target for LocalRoot {
    fn put(&self, local: &Path, remote: &str, mode: u32) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dest = self.at(remote);
        std::fs::create_dir_all(dest.parent().unwrap_or(&self.root)).with_context(|| format!("creating the parent of {}", dest.display()))?;
        std::fs::copy(local, &dest).with_context(|| format!("copying {} to {}", local.display(), dest.display()))?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }
    fn install(&self, remote_deb: &str) -> Result<()> {
        checked(Command::new("dpkg-deb").arg("-x").arg(self.at(remote_deb)).arg(&self.root)).map(drop)
    }
    fn enable_service(&self) -> Result<()> {
        let unit = ["lib/systemd/system/faceunlock.service", "usr/lib/systemd/system/faceunlock.service"].iter().map(|u| self.root.join(u)).find(|u| u.exists());
        match unit {
            Some(u) => {
                println!("  (stand-in: {} is installed; systemctl enable is not run)", u.display());
                Ok(())
            }
            None => bail!("the package installed no faceunlock.service under {}", self.root.display()),
        }
    }
    fn path(&self, remote: &str) -> String {
        self.at(remote).display().to_string()
    }
    fn faceunlock(&self, args: &[String]) -> Result<Output> {
        let binary = self.at("/usr/bin/faceunlock");
        let (program, pre) = match self.runner.split_first() {
            Some((p, rest)) => (PathBuf::from(p), rest.iter().map(Into::into).chain([binary.clone().into_os_string()]).collect::<Vec<_>>()),
            None => (binary.clone(), Vec::new()),
        };
        let state = self.at("/var/lib/faceunlock");
        std::fs::create_dir_all(&state)?;
        Command::new(program)
            .args(pre)
            .arg("--config")
            .arg(self.at("/etc/faceunlock/board.toml"))
            .arg("--models")
            .arg(self.at("/usr/share/faceunlock/models/manifest.toml"))
            .arg("--state-dir")
            .arg(state)
            .arg("--key-file")
            .arg(self.at("/etc/faceunlock/store.key"))
            .args(args)
            .output()
            .with_context(|| format!("running {}", binary.display()))
    }
    fn get(&self, remote: &str, local: &Path) -> Result<()> {
        std::fs::copy(self.at(remote), local).with_context(|| format!("copying {} to {}", self.at(remote).display(), local.display())).map(drop)
    }
}
