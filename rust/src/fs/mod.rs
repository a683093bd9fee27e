//! File-system jobs of the hot path: atomic replacement, the hard-link fork index, and the
//! stamps a listing cache compares.
//!
//! Platform choices, each documented where it is made:
//! - Directory fsync: Unix only. Windows cannot open a directory for it, and NTFS journals
//!   its own metadata ([`atomic::fsync_dir`]).
//! - Hard links: on Unix file systems and on NTFS/ReFS; where a file system has none
//!   (FAT, exFAT, some network and FUSE mounts) `link_fork` reports `false`
//!   ([`index::link_fork`]).
//! - File identity (`st_dev`, `st_ino`): `stat` on Unix; on Windows the volume serial and
//!   file index from `GetFileInformationByHandle`, as CPython's `os.stat` reads them.
//! - Stamps: one `fstatat` per name on the directory's descriptor on Unix; a metadata open
//!   per joined path on Windows, which has no `*at` calls ([`stamps::stamps`]).
//! - No `flock` here: locking belongs to the file store, in Python.

pub mod atomic;
pub mod index;
pub mod stamps;
#[cfg(windows)]
mod windows;
