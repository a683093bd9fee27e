//! The stamps (inode, size, mtime) of many files in one directory, for a listing cache that
//! rereads a file only when its stamp changed.
//!
//! A warm `list()` is a `stat` per session. On Unix each is one `fstatat` on the directory's
//! descriptor, of the name itself (a symlink is not followed: the store never reads through
//! one): no walk of the whole path per file, and no Python `stat_result` (nineteen
//! fields, the float times among them) built for three numbers. Windows has no `*at`
//! calls: each name is joined to the directory and opened for its metadata, as `os.lstat`
//! does there (an absent directory then gives `None` for each name, as in the pure twin).

use std::ffi::OsStr;
use std::path::Path;

use crate::errors::CoreError;

/// A file's inode, size and modification time in nanoseconds (`st_mtime_ns`).
pub type Stamp = (u64, u64, i64);

/// The stamp of each of `names` in `directory` (of a symlink itself, never what it points
/// to, as `os.lstat`); `None` for a name that is absent. Errors name the whole path at fault.
#[cfg(unix)]
pub fn stamps(
    directory: &Path,
    names: &[impl AsRef<OsStr>],
) -> Result<Vec<Option<Stamp>>, CoreError> {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;

    let c_directory = CString::new(directory.as_os_str().as_bytes()).map_err(|_| CoreError::Nul)?;
    // SAFETY: a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c_directory.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(CoreError::io(std::io::Error::last_os_error(), directory));
    }
    // SAFETY: a descriptor just opened and owned nowhere else: closed when this drops.
    let directory_fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut found = Vec::with_capacity(names.len());
    for name in names.iter().map(AsRef::as_ref) {
        let c_name = CString::new(name.as_bytes()).map_err(|_| CoreError::Nul)?;
        // SAFETY: stat is plain integers, filled by fstatat for a live descriptor.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe {
            libc::fstatat(
                directory_fd.as_raw_fd(),
                c_name.as_ptr(),
                &raw mut stat,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        } != 0
        {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::ENOENT) {
                found.push(None);
                continue;
            }
            return Err(CoreError::io(error, directory.join(name)));
        }
        #[allow(clippy::cast_sign_loss)] // a file's size is not negative
        let size = stat.st_size as u64;
        #[allow(clippy::useless_conversion)] // the field types differ between targets
        let (inode, mtime_ns) = (
            u64::from(stat.st_ino),
            i64::from(stat.st_mtime) * 1_000_000_000 + i64::from(stat.st_mtime_nsec),
        );
        found.push(Some((inode, size, mtime_ns)));
    }
    Ok(found)
}

/// The stamp of each of `names` in `directory` (of a symlink itself, as `os.lstat`);
/// `None` for a name that is absent. Errors name the whole path at fault.
#[cfg(windows)]
pub fn stamps(
    directory: &Path,
    names: &[impl AsRef<OsStr>],
) -> Result<Vec<Option<Stamp>>, CoreError> {
    let nul = |path: &OsStr| path.to_string_lossy().contains('\0');
    if nul(directory.as_os_str()) || names.iter().any(|name| nul(name.as_ref())) {
        return Err(CoreError::Nul);
    }
    names
        .iter()
        .map(|name| {
            let path = directory.join(name.as_ref());
            match super::windows::info(&path) {
                Ok(info) => Ok(Some((info.index, info.size, info.mtime_ns))),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(CoreError::io(error, path)),
            }
        })
        .collect()
}

#[cfg(all(test, unix))]
mod tests {
    use super::stamps;
    use crate::errors::CoreError;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn stamps_of_present_files_and_none_for_absent_ones() {
        let dir = crate::fs::atomic::scratch_dir("stamps");
        std::fs::write(dir.join("a"), b"12345").unwrap();
        let names = vec!["a".to_owned(), "absent".to_owned()];
        let found = stamps(&dir, &names).unwrap();
        let meta = std::fs::metadata(dir.join("a")).unwrap();
        let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        assert_eq!(found, vec![Some((meta.ino(), 5, mtime_ns)), None]);
        assert!(matches!(
            stamps(&dir, &["a\0b".to_owned()]),
            Err(CoreError::Nul)
        ));
        assert!(matches!(
            stamps(&dir.join("absent"), &names),
            Err(CoreError::Io { path, .. }) if path == dir.join("absent")
        ));
        assert!(matches!(
            stamps(&dir, &["a/x".to_owned()]),
            Err(CoreError::Io { path, source }) if path == dir.join("a/x")
                && source.raw_os_error() == Some(libc::ENOTDIR)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
