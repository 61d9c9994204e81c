//! Atomic file replacement: temp file, fsync, rename, fsync of the directory. A crash at any
//! point leaves the previous file or the new one, never a torn one, and a failed write (disk
//! full, read-only) leaves the previous file as it was.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Prefix of the temp files written beside a state file.
const TEMP_MARK: &str = ".tmp-";

/// Both name the state file being replaced, whichever step failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: writing failed ({source}); nothing was changed, the previous file is kept")]
    NotWritten { path: PathBuf, source: std::io::Error },
    #[error("{path}: written, but syncing its directory failed ({source}); a power cut now may bring back the previous file")]
    NotDurable { path: PathBuf, source: std::io::Error },
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::NotWritten { path: path.into(), source }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    path.with_file_name(format!(".{name}{TEMP_MARK}{}", std::process::id()))
}

/// Replace `path` with `bytes`, mode 0600, owned like its directory (so a file written by root
/// for the service stays the service's).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = temp_path(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut f = options.open(&tmp).map_err(err(path))?;
        own_like_directory(&f, dir);
        f.write_all(bytes).and_then(|_| f.sync_all()).map_err(err(path))?;
        std::fs::rename(&tmp, path).map_err(err(path))?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|source| WriteError::NotDurable { path: path.into(), source })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Give `file` its directory's owner and group; only root can, and only root needs to.
fn own_like_directory(file: &std::fs::File, dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(d), Ok(f)) = (std::fs::metadata(dir), file.metadata())
            && (d.uid(), d.gid()) != (f.uid(), f.gid())
        {
            let _ = std::os::unix::fs::fchown(file, Some(d.uid()), Some(d.gid()));
        }
    }
}

/// Remove temp files that a killed writer left beside `path` (any process id but ours).
pub fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else { return };
    let prefix = format!(".{name}{TEMP_MARK}");
    let ours = temp_path(path);
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) && entry.path() != ours;
        if stale && pid_of_temp(&entry.path()).is_none_or(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn pid_of_temp(path: &Path) -> Option<u32> {
    path.file_name()?.to_str()?.rsplit(TEMP_MARK).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_mode_0600_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lockout.sealed");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temps_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("templates.sealed");
        // No process has id 4194304 + 1 (above Linux's pid_max); ours is alive.
        let dead = dir.path().join(".templates.sealed.tmp-4194305");
        let live = temp_path(&path);
        let other = dir.path().join(".lockout.sealed.tmp-4194305");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        remove_stale_temps(&path);
        assert!(!dead.exists() && live.exists() && other.exists());
    }
}
