//! The fork index: `{root}/{parent_id}-forks/{child_id}.json`, a hard link to the fork's file.

use std::fs;
use std::path::Path;

use super::atomic::{fsync_dir, random_hex};
use crate::errors::CoreError;

/// Whether `id` matches `^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`.
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    !bytes.is_empty() && bytes.len() <= 128 && bytes[0] != b'.' && bytes.iter().all(allowed)
}

/// Whether `error` means "this file system has no hard links" rather than a real failure.
///
/// Unix: `EPERM` (links refused, as by `fs.protected_hardlinks` or some FUSE mounts),
/// `EOPNOTSUPP`/`ENOTSUP`/`ENOSYS` (none at all), `EXDEV` (another device), `EMLINK`
/// (the file's link count is full).
#[cfg(unix)]
fn no_hard_links(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS | libc::EXDEV | libc::EMLINK)
    ) || error.raw_os_error() == Some(libc::ENOTSUP)
}

/// Whether `error` means "this file system has no hard links" rather than a real failure.
///
/// Windows: NTFS and ReFS have hard links; FAT and exFAT refuse them with
/// `ERROR_INVALID_FUNCTION` (1) or `ERROR_NOT_SUPPORTED` (50), another volume gives
/// `ERROR_NOT_SAME_DEVICE` (17), a full link count `ERROR_TOO_MANY_LINKS` (1142).
#[cfg(windows)]
fn no_hard_links(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(1 | 17 | 50 | 1142))
}

/// Whether two paths name one file: `(st_dev, st_ino)` as `os.stat` reports them.
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (fs::metadata(a)?, fs::metadata(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// Whether two paths name one file: the volume serial and file index, as `os.stat`
/// reports them in `st_dev` and `st_ino`.
#[cfg(windows)]
fn same_file(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (a, b) = (super::windows::info(a)?, super::windows::info(b)?);
    Ok(a.volume == b.volume && a.index == b.index)
}

/// Whether `suffix` is a file extension like `.json` (a dot, then lowercase letters).
pub fn is_valid_suffix(suffix: &str) -> bool {
    suffix.len() > 1
        && suffix.starts_with('.')
        && suffix[1..].bytes().all(|b| b.is_ascii_lowercase())
}

/// (Re)point the index entry of `child_id` under `parent_id` at the child's current file
/// `{root}/{child_id}{suffix}`. Returns `false` where hard links are not supported
/// (nothing is left behind).
pub fn link_fork(
    root: &Path,
    parent_id: &str,
    child_id: &str,
    fsync: bool,
    suffix: &str,
) -> Result<bool, CoreError> {
    for id in [parent_id, child_id] {
        if !is_valid_id(id) {
            return Err(CoreError::InvalidId(id.to_owned()));
        }
    }
    if !is_valid_suffix(suffix) {
        return Err(CoreError::InvalidSuffix(suffix.to_owned()));
    }
    let source = root.join(format!("{child_id}{suffix}"));
    fs::metadata(&source).map_err(|e| CoreError::io(e, &source))?;
    let index = root.join(format!("{parent_id}-forks"));
    let created = match fs::create_dir(&index) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(CoreError::io(e, &index)),
    };
    let entry = index.join(format!("{child_id}{suffix}"));
    if same_file(&entry, &source).unwrap_or(false) {
        return Ok(true);
    }
    let temp = index.join(format!(".{child_id}{suffix}.{}.tmp", random_hex()));
    if let Err(e) = fs::hard_link(&source, &temp) {
        if no_hard_links(&e) {
            if created {
                let _ = fs::remove_dir(&index);
            }
            return Ok(false);
        }
        return Err(CoreError::io(e, &source));
    }
    let renamed = fs::rename(&temp, &entry);
    let _ = fs::remove_file(&temp); // rename is a no-op when both names share the inode
    renamed.map_err(|e| CoreError::io(e, &entry))?;
    if fsync {
        fsync_dir(&index).map_err(|e| CoreError::io(e, &index))?;
        if created {
            fsync_dir(root).map_err(|e| CoreError::io(e, root))?;
        }
    }
    Ok(true)
}

#[cfg(all(test, unix))]
mod tests {
    use super::{is_valid_id, link_fork};
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn ids() {
        for good in ["a", "A-b_c.d", "0", "-x", "_", &"x".repeat(128)] {
            assert!(is_valid_id(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "a\n",
            "é",
            &"x".repeat(129),
        ] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn links_relinks_and_rejects_bad_ids() {
        let root = crate::fs::atomic::scratch_dir("index");
        let child = root.join("c.json");
        crate::fs::atomic::atomic_write(&child, b"v1", false).unwrap();
        assert!(link_fork(&root, "p", "c", true, ".json").unwrap());
        let entry = root.join("p-forks").join("c.json");
        assert_eq!(
            fs::metadata(&entry).unwrap().ino(),
            fs::metadata(&child).unwrap().ino()
        );
        assert!(link_fork(&root, "p", "c", true, ".json").unwrap()); // no-op
        crate::fs::atomic::atomic_write(&child, b"v2", false).unwrap();
        assert!(link_fork(&root, "p", "c", false, ".json").unwrap());
        assert_eq!(
            fs::metadata(&entry).unwrap().ino(),
            fs::metadata(&child).unwrap().ino()
        );
        assert_eq!(fs::read(&entry).unwrap(), b"v2");
        assert_eq!(fs::read_dir(root.join("p-forks")).unwrap().count(), 1);
        assert!(matches!(
            link_fork(&root, "../x", "c", true, ".json"),
            Err(crate::errors::CoreError::InvalidId(_))
        ));
        assert!(matches!(
            link_fork(&root, "p", "c", true, "/../x"),
            Err(crate::errors::CoreError::InvalidSuffix(_))
        ));
        fs::remove_dir_all(root).unwrap();
    }
}
