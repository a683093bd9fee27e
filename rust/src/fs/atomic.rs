//! Atomic file replacement: readers see the old bytes or the new ones, never a mix.
//!
//! A temp file beside the target is written, made durable (`File::sync_all`: `fsync`;
//! `F_FULLFSYNC` on macOS; `FlushFileBuffers` on Windows) and renamed over the target
//! (`rename`; `MoveFileExW` with `MOVEFILE_REPLACE_EXISTING` on Windows), then the
//! directory is made durable so the new name survives a crash (Unix only: see
//! [`fsync_dir`]).

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::errors::CoreError;

/// A new empty directory under the temp directory, for a test: `simulacra-{name}-{random}`.
#[cfg(test)]
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simulacra-{name}-{}", random_hex()));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// 16 random hex characters for temp file names (no `rand` dependency needed).
pub fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsync a directory so the names created, renamed or removed in it are durable.
///
/// Windows cannot: a directory opens only for its metadata and `FlushFileBuffers` refuses
/// it (NTFS journals its own metadata), so this does nothing there, as Python cannot either.
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn create_exclusive(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o666);
    }
    options.open(path)
}

/// Write `data` to a temp file beside `path`, fsync it, rename it over `path`, fsync the
/// directory. `fsync = false` skips both fsyncs but keeps the atomic rename. Errors name
/// `path`; the temp file never survives.
pub fn atomic_write(path: &Path, data: &[u8], fsync: bool) -> Result<(), CoreError> {
    let fail = |source| CoreError::io(source, path);
    let name = path
        .file_name()
        .ok_or_else(|| fail(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    let dir = parent_dir(path);
    let temp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), random_hex()));
    let mut file = create_exclusive(&temp).map_err(fail)?;
    let written = file
        .write_all(data)
        .and_then(|()| if fsync { file.sync_all() } else { Ok(()) });
    drop(file);
    if let Err(source) = written.and_then(|()| fs::rename(&temp, path)) {
        let _ = fs::remove_file(&temp);
        return Err(fail(source));
    }
    if fsync {
        fsync_dir(&dir).map_err(|source| CoreError::io(source, &dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{atomic_write, CoreError};
    use std::fs;

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = super::scratch_dir("replace");
        let target = dir.join("s.json");
        atomic_write(&target, b"one", true).unwrap();
        atomic_write(&target, b"two", false).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_directory_names_the_target() {
        let dir = super::scratch_dir("missing");
        let target = dir.join("nope").join("s.json");
        let error = atomic_write(&target, b"x", true).unwrap_err();
        match error {
            CoreError::Io { source, path } => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                assert_eq!(path, target);
            }
            other => panic!("unexpected error {other:?}"),
        }
        fs::remove_dir_all(dir).unwrap();
    }
}
