//! File-system jobs of the hot path: atomic replacement, the hard-link fork index, and the
//! stamps a listing cache compares. Every name beneath a store's root is reached from the
//! root's descriptor without following a symlink ([`beneath`]).
//!
//! Platform choices, each documented where it is made:
//! - Directory fsync: Unix only. Windows cannot open a directory for it, and NTFS journals
//!   its own metadata ([`atomic::fsync_dir`]).
//! - Hard links: on Unix file systems and on NTFS/ReFS; where a file system has none
//!   (FAT, exFAT, some network and FUSE mounts) `link_fork` reports `false`
//!   ([`index::link_fork`]).
//! - File identity (`st_dev`, `st_ino`): `lstat` on Unix; on Windows the volume serial and
//!   file index from `GetFileInformationByHandle` on the entry itself (a symlink not
//!   followed), as CPython's `os.lstat` reads them.
//! - Stamps: one `fstatat` per name on the directory's descriptor on Unix; a metadata open
//!   per joined path on Windows, which has no `*at` calls ([`stamps::stamps`]).
//! - Symlinks: `openat` with `O_NOFOLLOW` and the other `*at` calls on Unix; on Windows a
//!   `symlink_metadata` check before each open ([`beneath`]).
//! - `flock`: a writer's temp file and a linker's index directory are locked while they
//!   are in use, so a sweep can tell residue from work in progress; Windows has no
//!   `flock`, and one process writes a root there. The session files' own locks belong to
//!   the file store, in Python.
//! - Permission bits: set exactly (`fchmod`, whatever the umask) on Unix; on Windows a new
//!   file's ACL inherits from its directory.

pub mod atomic;
pub mod beneath;
pub mod index;
pub mod stamps;
#[cfg(windows)]
mod windows;
