//! Atomic file replacement: readers see the old bytes or the new ones, never a mix.
//!
//! A temp file `.{name}.tmp` beside the target is written, made durable
//! (`File::sync_all`: `fsync`; `F_FULLFSYNC` on macOS; `FlushFileBuffers` on Windows) and
//! renamed over the target (`renameat`; `MoveFileExW` with `MOVEFILE_REPLACE_EXISTING` on
//! Windows), then the directory is made durable so the new name survives a crash (Unix
//! only: see [`fsync_dir`]). Every name is reached from the directory's descriptor without
//! following a symlink ([`super::beneath`]); a symlink at the target or at the temp name is
//! refused and left alone. The file gets exactly the permission bits asked for, whatever
//! the umask (Unix; on Windows its ACL inherits from the directory).
//!
//! No temp file outlives its writer for long. The writer holds `flock` on its temp file
//! from its creation until after the rename, so a temp file nobody holds locked is the
//! residue of a writer that was killed: the next writer of the same name, or a sweep,
//! takes the lock and removes it (see [`create_temp`]). Windows has no `flock`: there an
//! existing temp file is taken for residue (one process writes a store's root there).

use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::beneath::{no_symlink, refused_or, split, Dir, Open};
use crate::errors::CoreError;

/// A new empty directory under the temp directory, for a test: `simulacra-{name}-{random}`.
#[cfg(test)]
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("simulacra-{name}-{}", random_hex()));
    std::fs::create_dir_all(&dir).unwrap();
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

/// fsync a directory so the names created, renamed or removed in it are durable.
///
/// Windows cannot: a directory opens only for its metadata and `FlushFileBuffers` refuses
/// it (NTFS journals its own metadata), so this does nothing there, as Python cannot either.
pub fn fsync_dir(dir: &Path) -> Result<(), CoreError> {
    Dir::open(dir)?
        .sync()
        .map_err(|source| CoreError::io(source, dir))
}

/// The temp file name of `name`: `.{name}.tmp`.
pub fn temp_name(name: &OsStr) -> OsString {
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(".tmp");
    temp
}

/// Whether `mode` is permission bits only (`0o777` at most).
pub fn check_mode(mode: u32) -> Result<(), CoreError> {
    if mode > 0o777 {
        return Err(CoreError::InvalidMode(mode));
    }
    Ok(())
}

/// Create the temp file `temp` in `dir` and hold `flock` on it.
///
/// A temp file already there belongs to a live writer of the same name (it holds the
/// lock: this waits for it to finish, then tries again) or is residue (nobody holds it:
/// it is removed). After taking the lock on a file it created, the writer checks that the
/// name still leads to it: a sweep that took the lock first, between the creation and the
/// lock, removed it, and the writer starts over.
#[cfg(unix)]
fn create_temp(dir: &Dir, temp: &OsStr, mode: u32) -> Result<File, CoreError> {
    use super::beneath::{file_id, lock_fd};
    use std::os::fd::AsRawFd;

    let fail = |source| CoreError::io(source, dir.join(temp));
    loop {
        let (file, created) = match dir.open_file(temp, Open::New(mode)) {
            Ok(file) => (file, true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                match dir.open_file(temp, Open::Existing) {
                    Ok(file) => (file, false),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                    Err(e) => return Err(refused_or(dir, temp, e)),
                }
            }
            Err(e) => return Err(refused_or(dir, temp, e)),
        };
        lock_fd(file.as_raw_fd(), true).map_err(fail)?;
        let held = file_id(&file).map_err(fail)?;
        let named = dir.entry(temp)?;
        if named.is_some_and(|entry| entry.id == held) {
            if created {
                return Ok(file);
            }
            if !named.is_some_and(|entry| entry.regular) {
                return Err(fail(std::io::Error::from_raw_os_error(libc::EEXIST)));
            }
            dir.remove(temp, false).map_err(fail)?; // residue: nobody holds it
        }
    }
}

/// Create the temp file `temp` in `dir`. Windows has no `flock`: a temp file already there
/// is residue (one process writes a store's root there), removed before trying again once.
#[cfg(windows)]
fn create_temp(dir: &Dir, temp: &OsStr, mode: u32) -> Result<File, CoreError> {
    match dir.open_file(temp, Open::New(mode)) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            no_symlink(dir, temp)?;
            dir.remove(temp, false)
                .map_err(|source| CoreError::io(source, dir.join(temp)))?;
            dir.open_file(temp, Open::New(mode))
        }
        opened => opened,
    }
    .map_err(|e| refused_or(dir, temp, e))
}

/// Write `data` to a temp file beside `path`, fsync it, rename it over `path`, fsync the
/// directory; the file's permission bits are `mode` (Unix). `fsync = false` skips both
/// fsyncs but keeps the atomic rename. A symlink at `path` is refused
/// ([`CoreError::Symlink`], naming the symlink, as for one at the temp name). Other errors
/// name `path`; the temp file never survives.
pub fn atomic_write(path: &Path, data: &[u8], fsync: bool, mode: u32) -> Result<(), CoreError> {
    check_mode(mode)?;
    names_a_file(path)?;
    let naming = |error| match error {
        CoreError::Io { source, .. } => CoreError::io(source, path),
        other => other,
    };
    let (dir_path, name) = split(path)?;
    let dir = Dir::open(&dir_path).map_err(naming)?;
    no_symlink(&dir, name).map_err(naming)?;
    let temp = temp_name(name);
    let mut file = create_temp(&dir, &temp, mode).map_err(naming)?;
    let written = set_mode(&file, mode)
        .and_then(|()| file.write_all(data))
        .and_then(|()| if fsync { file.sync_all() } else { Ok(()) });
    #[cfg(windows)]
    drop(file); // no lock to hold there, and a file is renamed more surely once closed
    let renamed = written.and_then(|()| dir.rename(&temp, name));
    if let Err(source) = renamed {
        let _ = dir.remove(&temp, false); // still locked by this writer: nobody else's
        return Err(CoreError::io(source, path));
    }
    #[cfg(unix)]
    drop(file); // releases the lock, once the temp name is gone
    if fsync {
        dir.sync()
            .map_err(|source| CoreError::io(source, &dir_path))?;
    }
    Ok(())
}

/// The errors `open` gives most paths that name no file: an empty one, one that names a
/// directory (ending in a separator, `.` or `..`). `ERROR_PATH_NOT_FOUND` and
/// `ERROR_ACCESS_DENIED` on Windows.
#[cfg(unix)]
const NO_FILE: (i32, i32) = (libc::ENOENT, libc::EISDIR);
#[cfg(windows)]
const NO_FILE: (i32, i32) = (3, 5);

/// Refuse a `path` that names no file, with the path: `Path::file_name` and `parent` would
/// take it apart as another name (`d/f/` as `f`, `d/f/.` as `f`) or not at all (`..`, ``).
fn names_a_file(path: &Path) -> Result<(), CoreError> {
    let bytes = path.as_os_str().as_encoded_bytes();
    let last = bytes
        .rsplit(|&byte| std::path::is_separator(char::from(byte)))
        .next()
        .unwrap_or_default();
    let code = if bytes.is_empty() {
        NO_FILE.0
    } else if matches!(last, b"" | b"." | b"..") {
        NO_FILE.1
    } else {
        return Ok(());
    };
    Err(CoreError::io(std::io::Error::from_raw_os_error(code), path))
}

/// Give `file` exactly the permission bits `mode`, whatever the umask (Unix only).
#[cfg_attr(
    windows,
    allow(clippy::unnecessary_wraps, reason = "fails on Unix only")
)]
fn set_mode(file: &File, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{atomic_write, CoreError};
    use std::fs;

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = super::scratch_dir("replace");
        let target = dir.join("s.json");
        atomic_write(&target, b"one", true, 0o600).unwrap();
        atomic_write(&target, b"two", false, 0o600).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_directory_names_the_target() {
        let dir = super::scratch_dir("missing");
        let target = dir.join("nope").join("s.json");
        let error = atomic_write(&target, b"x", true, 0o600).unwrap_err();
        match error {
            CoreError::Io { source, path } => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                assert_eq!(path, target);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(matches!(
            atomic_write(&dir.join("s.json"), b"x", true, 0o1000),
            Err(CoreError::InvalidMode(0o1000))
        ));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_path_naming_no_file_is_refused() {
        let dir = super::scratch_dir("no-file");
        let (not_found, directory) = super::NO_FILE;
        let named = |name: &str| dir.join(name).into_os_string().into_string().unwrap();
        for (path, code) in [
            (String::new(), not_found),
            (named("f/"), directory),
            (named("f/."), directory),
            (named("."), directory),
            (named(".."), directory),
        ] {
            match atomic_write(path.as_ref(), b"x", false, 0o600) {
                Err(CoreError::Io { source, path: at }) => {
                    assert_eq!(
                        (source.raw_os_error(), at.as_os_str()),
                        (Some(code), path.as_ref())
                    );
                }
                other => panic!("{path:?}: {other:?}"),
            }
        }
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn exact_mode_residue_removed_and_symlinks_refused() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = super::scratch_dir("unix");
        let target = dir.join("s.json");
        atomic_write(&target, b"one", false, 0o666).unwrap(); // beyond a usual umask
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o666
        );
        fs::write(dir.join(".s.json.tmp"), b"residue of a killed writer").unwrap();
        atomic_write(&target, b"two", false, 0o600).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

        let outside = super::scratch_dir("outside");
        fs::write(outside.join("victim"), b"keep").unwrap();
        symlink(outside.join("victim"), dir.join("l.json")).unwrap();
        symlink(outside.join("victim"), dir.join(".t.json.tmp")).unwrap();
        for (name, refused) in [("l.json", "l.json"), ("t.json", ".t.json.tmp")] {
            match atomic_write(&dir.join(name), b"x", true, 0o600) {
                Err(CoreError::Symlink(path)) => assert_eq!(path, dir.join(refused)),
                other => panic!("{name}: {other:?}"),
            }
            assert!(fs::symlink_metadata(dir.join(refused))
                .unwrap()
                .file_type()
                .is_symlink());
        }
        assert_eq!(fs::read(outside.join("victim")).unwrap(), b"keep");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 3);
        fs::remove_dir_all(dir).unwrap();
        fs::remove_dir_all(outside).unwrap();
    }
}
