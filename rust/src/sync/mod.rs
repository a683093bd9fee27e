//! Make the data written through open descriptors durable, many at a time.
//!
//! [`sync_files`] is what the file store's group-commit thread calls with every journal
//! descriptor handed to it while it slept. It never closes a descriptor and never touches
//! Python: the binding calls it detached from the interpreter.
//!
//! Per platform:
//! - Linux: `fdatasync` each descriptor; a batch holding [`BATCH_FOR_SYNCFS`] or more
//!   regular files of one disk file system gets one `syncfs` for them all instead, on
//!   kernels from 5.8 (before, `syncfs` returned 0 even when writing a file back had
//!   failed). Pipes, sockets, devices, /proc files and `O_PATH` descriptors, which `syncfs`
//!   would pass and `fdatasync` refuses, are synced alone: the outcome per descriptor does
//!   not depend on the batch.
//! - macOS and iOS: `fcntl(F_FULLFSYNC)`, which asks the drive to flush its own cache as
//!   SQLite's `fullfsync` does (`fsync` there stops at the drive); when the file system
//!   refuses it (`ENOTSUP`, `EINVAL`, `ENOTTY`: network and FUSE mounts), `fsync`.
//! - FreeBSD and Android: `fdatasync`; other Unix: `fsync`.
//! - Windows: `_commit`, the C runtime's `FlushFileBuffers` on the descriptor's handle, as
//!   Python's `os.fsync` does; the runtime reports any failure as `EBADF`.
//!
//! An interrupted call (`EINTR`) is retried, as Python's `os.fsync` retries it.
//!
//! [`commit`] runs `sync_files` on one thread for every writer of the process (group
//! commit), handing each outcome back through a descriptor an event loop can watch.

pub mod commit;
#[cfg(target_os = "linux")]
mod linux;

/// Below this many descriptors of one file system, syncing each stays cheaper than syncing
/// the whole file system.
pub const BATCH_FOR_SYNCFS: usize = 4;

/// Make every descriptor's written data durable; the errno of each, in order (0: durable).
/// The descriptors stay open.
pub fn sync_files(fds: &[i32]) -> Vec<i32> {
    #[cfg(target_os = "linux")]
    if fds.len() >= BATCH_FOR_SYNCFS && linux::syncfs_reports_errors() {
        return linux::sync_by_file_system(fds);
    }
    fds.iter().map(|&fd| sync_one(fd)).collect()
}

/// One `syncfs` for the descriptors of each file system holding [`BATCH_FOR_SYNCFS`] or
/// more of them (the stores of one process may live on several disks), `sync` for each of
/// the rest; `devices[i]` is the file system of `fds[i]` (`None`: unknown or not to be
/// synced by `syncfs`, synced alone).
/// `syncfs(fd)` says whether it succeeded (a failure falls back to `sync` for each file
/// of that file system, so each reports its own error); `sync(fd)` returns the errno.
pub fn sync_grouped(
    fds: &[i32],
    devices: &[Option<u64>],
    mut syncfs: impl FnMut(i32) -> bool,
    mut sync: impl FnMut(i32) -> i32,
) -> Vec<i32> {
    let mut order: Vec<usize> = (0..fds.len()).collect();
    order.sort_by_key(|&index| devices[index]);
    let mut errnos = vec![0; fds.len()];
    for group in order.chunk_by(|&a, &b| devices[a] == devices[b]) {
        let synced =
            devices[group[0]].is_some() && group.len() >= BATCH_FOR_SYNCFS && syncfs(fds[group[0]]);
        if !synced {
            for &index in group {
                errnos[index] = sync(fds[index]);
            }
        }
    }
    errnos
}

/// The errno of the last failed call (`EIO` when the system gives none).
#[cfg(unix)]
fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Retry `call` while it fails with `EINTR`; 0 once it succeeds, else its errno.
#[cfg(unix)]
fn retrying(mut call: impl FnMut() -> i32) -> i32 {
    loop {
        if call() == 0 {
            return 0;
        }
        let errno = last_errno();
        if errno != libc::EINTR {
            return errno;
        }
    }
}

/// Make one descriptor durable: 0, or the errno.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
pub fn sync_one(fd: i32) -> i32 {
    // SAFETY: fdatasync only reads the descriptor number; a bad one fails with EBADF.
    retrying(|| unsafe { libc::fdatasync(fd) })
}

/// Make one descriptor durable: 0, or the errno.
#[cfg(any(target_os = "macos", target_os = "ios"))]
pub fn sync_one(fd: i32) -> i32 {
    // SAFETY: fcntl(F_FULLFSYNC) and fsync only read the descriptor number.
    match retrying(|| unsafe { libc::fcntl(fd, libc::F_FULLFSYNC) }) {
        libc::ENOTSUP | libc::EINVAL | libc::ENOTTY => retrying(|| unsafe { libc::fsync(fd) }),
        errno => errno,
    }
}

/// Make one descriptor durable: 0, or the errno.
#[cfg(all(
    unix,
    not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "macos",
        target_os = "ios"
    ))
))]
pub fn sync_one(fd: i32) -> i32 {
    // SAFETY: fsync only reads the descriptor number; a bad one fails with EBADF.
    retrying(|| unsafe { libc::fsync(fd) })
}

/// Make one descriptor durable: 0, or the errno.
#[cfg(windows)]
pub fn sync_one(fd: i32) -> i32 {
    extern "C" {
        /// The C runtime's thread-local `errno`.
        fn _errno() -> *mut libc::c_int;
    }
    // SAFETY: _commit looks the descriptor up in the C runtime's table (shared with
    // Python's) and fails with EBADF when it is not open; _errno points at this thread's.
    unsafe {
        if libc::commit(fd) == 0 {
            0
        } else {
            *_errno()
        }
    }
}

#[cfg(test)]
mod tests;
