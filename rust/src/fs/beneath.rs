//! Names beneath a directory, reached from the directory's descriptor, never through a symlink.
//!
//! The directory itself is opened by its path as given (a store's root may be a symlink:
//! whoever configured the root chose it). Every name beneath it is opened, created, linked,
//! renamed or removed relative to that descriptor (`openat`, `mkdirat`, `linkat`,
//! `renameat`, `unlinkat`), with `O_NOFOLLOW` where a call would follow a symlink; `linkat`
//! and `renameat` never follow one. A symlink found where a name is opened is refused with
//! [`CoreError::Symlink`] and left as it is.
//!
//! Windows has no `*at` calls and no `O_NOFOLLOW`: there a name is joined to the
//! directory's path and checked with `symlink_metadata` before it is opened, so a symlink
//! swapped in between the two is followed. That is the deliberate fallback: creating a
//! symlink takes a privilege on Windows, and one process writes a store's root there.
//! `flock` has no Windows counterpart: [`Dir::lock`] and [`lock_file`] do nothing there.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::errors::CoreError;

/// How [`Dir::open_file`] opens a name.
#[derive(Debug, Clone, Copy)]
pub enum Open {
    /// A new file, for writing (`O_CREAT | O_EXCL`), with these permission bits.
    New(u32),
    /// An existing file (or directory), read-only and without blocking on a FIFO.
    Existing,
}

/// An open directory: names beneath it are reached from its descriptor (on Windows, from
/// its path: see the module's notes).
pub struct Dir {
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl Dir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }
}

/// What kind of entry a name is, and its identity (device, inode) when it is not a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub symlink: bool,
    pub regular: bool,
    pub id: (u64, u64),
}

/// Whether an open or `mkdir` failure may come from a symlink in the way (`O_NOFOLLOW` gives
/// `ELOOP`, or `ENOTDIR` with `O_DIRECTORY`, `EMLINK` on FreeBSD; `mkdir` gives `EEXIST`).
#[cfg(unix)]
fn maybe_symlink(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ELOOP | libc::ENOTDIR | libc::EMLINK | libc::EEXIST)
    )
}

#[cfg(unix)]
mod imp {
    use std::ffi::{CString, OsStr};
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use super::{Dir, Entry, Open};
    use crate::errors::CoreError;

    fn c_string(bytes: &[u8]) -> Result<CString, CoreError> {
        CString::new(bytes).map_err(|_| CoreError::Nul)
    }

    /// The `-1`-means-errno convention, `EINTR` retried.
    fn check(mut call: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
        loop {
            let result = call();
            if result >= 0 {
                return Ok(result);
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }

    impl Dir {
        /// Open the directory at `path` (its own path resolved as given).
        pub fn open(path: &Path) -> Result<Dir, CoreError> {
            let c_path = c_string(path.as_os_str().as_bytes())?;
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
            // SAFETY: a NUL-terminated path.
            let fd = check(|| unsafe { libc::open(c_path.as_ptr(), flags) })
                .map_err(|e| CoreError::io(e, path))?;
            // SAFETY: a descriptor just opened and owned nowhere else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            Ok(Dir {
                fd,
                path: path.to_path_buf(),
            })
        }

        /// `name`'s kind and identity, not following a symlink; `None` when it is absent.
        pub fn entry(&self, name: &OsStr) -> Result<Option<Entry>, CoreError> {
            let c_name = c_string(name.as_bytes())?;
            // SAFETY: plain integers, filled by fstatat for a live descriptor.
            let mut stat: libc::stat = unsafe { std::mem::zeroed() };
            let flag = libc::AT_SYMLINK_NOFOLLOW;
            let at = self.fd.as_raw_fd();
            // SAFETY: a live descriptor, a NUL-terminated name and a stat buffer.
            match check(|| unsafe { libc::fstatat(at, c_name.as_ptr(), &raw mut stat, flag) }) {
                Ok(_) => Ok(Some(entry_of(&stat))),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
                Err(e) => Err(CoreError::io(e, self.join(name))),
            }
        }

        /// `name` opened as `how` says, with `O_NOFOLLOW`: a symlink there fails (`ELOOP`).
        pub fn open_file(&self, name: &OsStr, how: Open) -> io::Result<File> {
            let (flags, mode) = match how {
                Open::New(mode) => (libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode),
                Open::Existing => (libc::O_RDONLY | libc::O_NONBLOCK, 0),
            };
            self.open_raw(name, flags, mode)
        }

        fn open_raw(&self, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<File> {
            let c_name = c_name(name)?;
            let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            let at = self.fd.as_raw_fd();
            // SAFETY: a live descriptor and a NUL-terminated name; the mode as C promotes it.
            let fd = check(|| unsafe {
                libc::openat(at, c_name.as_ptr(), flags, libc::c_uint::from(mode))
            })?;
            // SAFETY: a descriptor just opened and owned nowhere else.
            Ok(unsafe { File::from_raw_fd(fd) })
        }

        /// The subdirectory `name`, opened with `O_DIRECTORY | O_NOFOLLOW`.
        pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
            let file = self.open_raw(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
            Ok(Dir {
                fd: file.into(),
                path: self.join(name),
            })
        }

        /// Create the subdirectory `name` (mode `mode`, then exactly `mode` whatever the umask).
        pub fn make_dir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
            let c_name = c_name(name)?;
            #[allow(clippy::cast_possible_truncation)] // permission bits fit every mode_t
            let mode = mode as libc::mode_t;
            let at = self.fd.as_raw_fd();
            // SAFETY: a live descriptor and a NUL-terminated name.
            check(|| unsafe { libc::mkdirat(at, c_name.as_ptr(), mode) })?;
            let created = self.open_dir(name)?;
            // SAFETY: a live descriptor.
            check(|| unsafe { libc::fchmod(created.fd.as_raw_fd(), mode) })?;
            Ok(())
        }

        /// Rename `from` to `to`, both in this directory (a symlink at `to` is replaced, not followed).
        pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
            let (c_from, c_to) = (c_name(from)?, c_name(to)?);
            let at = self.fd.as_raw_fd();
            // SAFETY: live descriptors and NUL-terminated names.
            check(|| unsafe { libc::renameat(at, c_from.as_ptr(), at, c_to.as_ptr()) })?;
            Ok(())
        }

        /// Hard-link `source` (in this directory) as `name` in `into`; a symlink is linked
        /// itself, never followed.
        pub fn link(&self, source: &OsStr, into: &Dir, name: &OsStr) -> io::Result<()> {
            let (c_source, c_target) = (c_name(source)?, c_name(name)?);
            let (from, to) = (self.fd.as_raw_fd(), into.fd.as_raw_fd());
            // SAFETY: live descriptors and NUL-terminated names.
            check(|| unsafe { libc::linkat(from, c_source.as_ptr(), to, c_target.as_ptr(), 0) })?;
            Ok(())
        }

        /// Remove the name `name` (a file, or a directory with `directory`).
        pub fn remove(&self, name: &OsStr, directory: bool) -> io::Result<()> {
            let c_name = c_name(name)?;
            let flag = if directory { libc::AT_REMOVEDIR } else { 0 };
            let at = self.fd.as_raw_fd();
            // SAFETY: a live descriptor and a NUL-terminated name.
            check(|| unsafe { libc::unlinkat(at, c_name.as_ptr(), flag) })?;
            Ok(())
        }

        /// Make the names created, renamed or removed in this directory durable.
        pub fn sync(&self) -> io::Result<()> {
            // SAFETY: a live descriptor.
            check(|| unsafe { libc::fsync(self.fd.as_raw_fd()) })?;
            Ok(())
        }

        /// `flock` this directory (shared or exclusive); the lock lasts while it is open.
        pub fn lock(&self, exclusive: bool) -> io::Result<()> {
            lock_fd(self.fd.as_raw_fd(), exclusive)
        }
    }

    fn c_name(name: &OsStr) -> io::Result<CString> {
        CString::new(name.as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
    }

    pub fn lock_fd(fd: libc::c_int, exclusive: bool) -> io::Result<()> {
        let operation = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: a live descriptor.
        check(|| unsafe { libc::flock(fd, operation) })?;
        Ok(())
    }

    #[allow(
        clippy::useless_conversion,
        clippy::unnecessary_cast,
        clippy::cast_sign_loss,
        reason = "the field types differ by target"
    )]
    fn entry_of(stat: &libc::stat) -> Entry {
        let kind = stat.st_mode & libc::S_IFMT;
        Entry {
            symlink: kind == libc::S_IFLNK,
            regular: kind == libc::S_IFREG,
            id: (stat.st_dev as u64, u64::from(stat.st_ino)),
        }
    }

    /// An open file's identity (device, inode), as [`Dir::entry`] reports it.
    pub fn file_id(file: &File) -> io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        Ok((meta.dev(), meta.ino()))
    }
}

#[cfg(windows)]
mod imp {
    use std::ffi::OsStr;
    use std::fs::{self, File, OpenOptions};
    use std::io;
    use std::path::Path;

    use super::{Dir, Entry, Open};
    use crate::errors::CoreError;

    /// `ERROR_CANT_RESOLVE_FILENAME`: what this fallback reports for a symlink in the way.
    pub const CANT_RESOLVE: i32 = 1921;

    impl Dir {
        pub fn open(path: &Path) -> Result<Dir, CoreError> {
            let meta = fs::metadata(path).map_err(|e| CoreError::io(e, path))?;
            if !meta.is_dir() {
                let error = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
                return Err(CoreError::io(error, path));
            }
            Ok(Dir {
                path: path.to_path_buf(),
            })
        }

        pub fn entry(&self, name: &OsStr) -> Result<Option<Entry>, CoreError> {
            let path = self.join(name);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => Ok(Some(Entry {
                    symlink: true,
                    regular: false,
                    id: (0, 0),
                })),
                Ok(meta) => {
                    let info =
                        crate::fs::windows::info(&path).map_err(|e| CoreError::io(e, &path))?;
                    Ok(Some(Entry {
                        symlink: false,
                        regular: meta.is_file(),
                        id: (info.volume, info.index),
                    }))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(CoreError::io(e, path)),
            }
        }

        /// Open `name` unless it is a symlink (checked first: see the module's notes). A new
        /// file's mode is not Windows' (its ACL inherits from the directory).
        pub fn open_file(&self, name: &OsStr, how: Open) -> io::Result<File> {
            let path = self.join(name);
            if fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink()) {
                return Err(io::Error::from_raw_os_error(CANT_RESOLVE));
            }
            let mut options = OpenOptions::new();
            match how {
                Open::New(_) => options.write(true).create_new(true),
                Open::Existing => options.read(true),
            };
            options.open(path)
        }

        pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
            let path = self.join(name);
            let meta = fs::symlink_metadata(&path)?;
            if meta.file_type().is_symlink() {
                return Err(io::Error::from_raw_os_error(CANT_RESOLVE));
            }
            if !meta.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "not a directory",
                ));
            }
            Ok(Dir { path })
        }

        /// Create the subdirectory `name`; its mode is not Windows' (ACLs inherit from the parent).
        pub fn make_dir(&self, name: &OsStr, _mode: u32) -> io::Result<()> {
            fs::create_dir(self.join(name))
        }

        pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
            fs::rename(self.join(from), self.join(to))
        }

        pub fn link(&self, source: &OsStr, into: &Dir, name: &OsStr) -> io::Result<()> {
            fs::hard_link(self.join(source), into.join(name))
        }

        pub fn remove(&self, name: &OsStr, directory: bool) -> io::Result<()> {
            if directory {
                fs::remove_dir(self.join(name))
            } else {
                fs::remove_file(self.join(name))
            }
        }

        /// Nothing: a directory cannot be synced on Windows (NTFS journals its metadata).
        #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
        pub fn sync(&self) -> io::Result<()> {
            Ok(())
        }

        /// Nothing: Windows has no `flock` (one process writes a root there).
        #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
        pub fn lock(&self, _exclusive: bool) -> io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(unix)]
pub use imp::{file_id, lock_fd};

/// The error for `name` under `dir` after `error`: [`CoreError::Symlink`] when a symlink is
/// in the way (left as it is), else the I/O error naming the path.
pub fn refused_or(dir: &Dir, name: &OsStr, error: io::Error) -> CoreError {
    #[cfg(unix)]
    let suspect = maybe_symlink(&error);
    #[cfg(windows)]
    let suspect = error.raw_os_error() == Some(imp::CANT_RESOLVE);
    if suspect && matches!(dir.entry(name), Ok(Some(entry)) if entry.symlink) {
        return CoreError::Symlink(dir.join(name));
    }
    CoreError::io(error, dir.join(name))
}

/// The system's own "no such file" error (an `errno`, as Python reports it).
pub fn not_found() -> io::Error {
    #[cfg(unix)]
    return io::Error::from_raw_os_error(libc::ENOENT);
    #[cfg(windows)]
    return io::Error::from_raw_os_error(2); // ERROR_FILE_NOT_FOUND
}

/// `CoreError::Symlink` when `name` under `dir` is a symlink; its entry otherwise.
pub fn no_symlink(dir: &Dir, name: &OsStr) -> Result<Option<Entry>, CoreError> {
    match dir.entry(name)? {
        Some(entry) if entry.symlink => Err(CoreError::Symlink(dir.join(name))),
        found => Ok(found),
    }
}

/// The directory holding `path` (`.` for a bare file name) and `path`'s last component.
pub fn split(path: &Path) -> Result<(PathBuf, &OsStr), CoreError> {
    let name = path
        .file_name()
        .ok_or_else(|| CoreError::io(io::Error::from(io::ErrorKind::InvalidInput), path))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}
