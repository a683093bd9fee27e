//! The fork index: `{root}/{parent_id}-forks/{child_id}.json`, a hard link to the fork's file.

use std::fs;
use std::path::Path;

use crate::errors::CoreError;
use crate::fsio::{fsync_dir, random_hex};

/// Whether `id` matches `^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`.
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    !bytes.is_empty() && bytes.len() <= 128 && bytes[0] != b'.' && bytes.iter().all(allowed)
}

/// errnos meaning "this file system has no hard links" rather than a real failure.
fn no_hard_links(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS | libc::EXDEV | libc::EMLINK)
    ) || error.raw_os_error() == Some(libc::ENOTSUP)
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
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
    let source_meta = fs::metadata(&source).map_err(|e| CoreError::io(e, &source))?;
    let index = root.join(format!("{parent_id}-forks"));
    let created = match fs::create_dir(&index) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(CoreError::io(e, &index)),
    };
    let entry = index.join(format!("{child_id}{suffix}"));
    if let Ok(entry_meta) = fs::metadata(&entry) {
        if same_file(&entry_meta, &source_meta) {
            return Ok(true);
        }
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

#[cfg(test)]
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
        let root = crate::fsio::scratch_dir("index");
        let child = root.join("c.json");
        crate::fsio::atomic_write(&child, b"v1", false).unwrap();
        assert!(link_fork(&root, "p", "c", true, ".json").unwrap());
        let entry = root.join("p-forks").join("c.json");
        assert_eq!(
            fs::metadata(&entry).unwrap().ino(),
            fs::metadata(&child).unwrap().ino()
        );
        assert!(link_fork(&root, "p", "c", true, ".json").unwrap()); // no-op
        crate::fsio::atomic_write(&child, b"v2", false).unwrap();
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
