//! The fork index: `{root}/{parent_id}-forks/{child_id}.json`, a hard link to the fork's file.
//!
//! A link is made under a temp name `.{child_id}.json.{random}.tmp` and renamed over the
//! entry. A temp link a killed linker left behind holds a former version of the fork's
//! file: linkers hold a shared `flock` on the index directory while theirs exists, so a
//! sweep holding it exclusively knows every temp link there is residue.

use std::ffi::OsStr;
use std::path::Path;

use super::atomic::{check_mode, random_hex};
use super::beneath::{no_symlink, not_found, refused_or, Dir};
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

/// Whether `suffix` is a file extension like `.json` (a dot, then lowercase letters).
pub fn is_valid_suffix(suffix: &str) -> bool {
    suffix.len() > 1
        && suffix.starts_with('.')
        && suffix[1..].bytes().all(|b| b.is_ascii_lowercase())
}

/// The index directory of `parent_id` in `root`, created (with exactly `dir_mode`) when
/// missing, opened without following a symlink; and whether it was created.
fn index_dir(root: &Dir, name: &OsStr, dir_mode: u32) -> Result<(Dir, bool), CoreError> {
    let created = match root.make_dir(name, dir_mode) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(refused_or(root, name, e)),
    };
    let index = root.open_dir(name).map_err(|e| refused_or(root, name, e))?;
    Ok((index, created))
}

/// (Re)point the index entry of `child_id` under `parent_id` at the child's current file
/// `{root}/{child_id}{suffix}`. Returns `false` where hard links are not supported
/// (nothing is left behind). Every name is reached from `root`'s descriptor without
/// following a symlink: one at the child's file, the index directory or its entry is
/// refused ([`CoreError::Symlink`]) and left alone. A new index directory gets exactly
/// `dir_mode` (Unix). The linker holds a shared `flock` on the index directory while its
/// temp link exists: a sweep of temp links takes it exclusively.
pub fn link_fork(
    root: &Path,
    parent_id: &str,
    child_id: &str,
    fsync: bool,
    suffix: &str,
    dir_mode: u32,
) -> Result<bool, CoreError> {
    for id in [parent_id, child_id] {
        if !is_valid_id(id) {
            return Err(CoreError::InvalidId(id.to_owned()));
        }
    }
    if !is_valid_suffix(suffix) {
        return Err(CoreError::InvalidSuffix(suffix.to_owned()));
    }
    check_mode(dir_mode)?;
    let root_dir = Dir::open(root)?;
    let file_name = format!("{child_id}{suffix}");
    let source = OsStr::new(&file_name);
    let Some(found) = no_symlink(&root_dir, source)? else {
        return Err(CoreError::io(not_found(), root_dir.join(source)));
    };
    let index_name = format!("{parent_id}-forks");
    let (index, created) = index_dir(&root_dir, OsStr::new(&index_name), dir_mode)?;
    index
        .lock(false)
        .map_err(|e| CoreError::io(e, index.path()))?;
    if no_symlink(&index, source)?.is_some_and(|entry| entry.id == found.id) {
        return Ok(true);
    }
    let temp = format!(".{file_name}.{}.tmp", random_hex());
    let temp = OsStr::new(&temp);
    if let Err(e) = root_dir.link(source, &index, temp) {
        if no_hard_links(&e) {
            if created {
                let _ = root_dir.remove(OsStr::new(&index_name), true);
            }
            return Ok(false);
        }
        return Err(CoreError::io(e, root_dir.join(source)));
    }
    let renamed = index.rename(temp, source);
    let _ = index.remove(temp, false); // rename is a no-op when both names share the inode
    renamed.map_err(|e| CoreError::io(e, index.join(source)))?;
    if fsync {
        index.sync().map_err(|e| CoreError::io(e, index.path()))?;
        if created {
            root_dir.sync().map_err(|e| CoreError::io(e, root))?;
        }
    }
    Ok(true)
}

#[cfg(all(test, unix))]
mod tests {
    use super::{is_valid_id, link_fork};
    use crate::errors::CoreError;
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
        crate::fs::atomic::atomic_write(&child, b"v1", false, 0o600).unwrap();
        assert!(link_fork(&root, "p", "c", true, ".json", 0o750).unwrap());
        let entry = root.join("p-forks").join("c.json");
        assert_eq!(
            fs::metadata(&entry).unwrap().ino(),
            fs::metadata(&child).unwrap().ino()
        );
        let mode = fs::metadata(root.join("p-forks")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o750); // exactly, whatever the umask
        assert!(link_fork(&root, "p", "c", true, ".json", 0o700).unwrap()); // no-op
        crate::fs::atomic::atomic_write(&child, b"v2", false, 0o600).unwrap();
        assert!(link_fork(&root, "p", "c", false, ".json", 0o700).unwrap());
        assert_eq!(
            fs::metadata(&entry).unwrap().ino(),
            fs::metadata(&child).unwrap().ino()
        );
        assert_eq!(fs::read(&entry).unwrap(), b"v2");
        assert_eq!(fs::read_dir(root.join("p-forks")).unwrap().count(), 1);
        assert!(matches!(
            link_fork(&root, "../x", "c", true, ".json", 0o700),
            Err(CoreError::InvalidId(_))
        ));
        assert!(matches!(
            link_fork(&root, "p", "c", true, "/../x", 0o700),
            Err(CoreError::InvalidSuffix(_))
        ));
        assert!(matches!(
            link_fork(&root, "p", "c", true, ".json", 0o1700),
            Err(CoreError::InvalidMode(0o1700))
        ));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn symlinks_are_refused_and_left_alone() {
        use std::os::unix::fs::symlink;
        let root = crate::fs::atomic::scratch_dir("index-links");
        let outside = crate::fs::atomic::scratch_dir("index-outside");
        fs::write(outside.join("c.jsonl"), b"theirs").unwrap();
        crate::fs::atomic::atomic_write(&root.join("c.jsonl"), b"ours", false, 0o600).unwrap();
        symlink(&outside, root.join("p-forks")).unwrap(); // the index directory
        symlink(outside.join("c.jsonl"), root.join("l.jsonl")).unwrap(); // the fork's file
        fs::create_dir(root.join("q-forks")).unwrap();
        symlink(
            outside.join("c.jsonl"),
            root.join("q-forks").join("c.jsonl"),
        )
        .unwrap(); // an entry
        for (parent, child, refused) in [
            ("p", "c", root.join("p-forks")),
            ("p2", "l", root.join("l.jsonl")),
            ("q", "c", root.join("q-forks").join("c.jsonl")),
        ] {
            match link_fork(&root, parent, child, true, ".jsonl", 0o700) {
                Err(CoreError::Symlink(path)) => assert_eq!(path, refused),
                other => panic!("{parent}/{child}: {other:?}"),
            }
            assert!(fs::symlink_metadata(&refused)
                .unwrap()
                .file_type()
                .is_symlink());
        }
        assert_eq!(fs::read(outside.join("c.jsonl")).unwrap(), b"theirs");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
        fs::remove_dir_all(root).unwrap();
        fs::remove_dir_all(outside).unwrap();
    }
}
