//! Linux: one `syncfs` per file system for a large enough batch, on kernels that report
//! writeback errors through it (5.8 and later).

use super::{retrying, sync_grouped, sync_one};

/// `sync_grouped` with the descriptors' devices from [`batchable_device`] and the real
/// `syncfs`.
pub fn sync_by_file_system(fds: &[i32]) -> Vec<i32> {
    let devices: Vec<Option<u64>> = fds.iter().map(|&fd| batchable_device(fd)).collect();
    // SAFETY: syncfs only reads the descriptor number.
    sync_grouped(
        fds,
        &devices,
        |fd| retrying(|| unsafe { libc::syncfs(fd) }) == 0,
        sync_one,
    )
}

/// File systems (`statfs.f_type`) whose every regular file `fdatasync` makes durable, so that
/// one `syncfs` gives each the outcome its own `fdatasync` would: ext2/3/4, XFS, Btrfs, F2FS,
/// ZFS, bcachefs, tmpfs, overlayfs. Others (procfs, whose files refuse `fdatasync` with
/// `EINVAL`; network and FUSE mounts) are synced one file at a time.
const SYNCFS_FILE_SYSTEMS: [u32; 8] = [
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0xF2F5_2010,
    0x2FC1_2FC1,
    0xCA45_1A4E,
    0x0102_1994,
    0x794C_7630,
];

/// The device (file system) of `fd` when a `syncfs` may stand in for its `fdatasync`: a
/// regular file, opened for I/O (not `O_PATH`, which `fdatasync` refuses with `EBADF`), on
/// one of [`SYNCFS_FILE_SYSTEMS`]. `None` otherwise (a pipe, socket, device or /proc file,
/// which `syncfs` would pass and `fdatasync` refuses; a failed `fstat`): synced alone.
fn batchable_device(fd: i32) -> Option<u64> {
    // SAFETY: fstat and fstatfs fill the structs they are given, fcntl(F_GETFL) only reads
    // the descriptor number; a bad descriptor fails with EBADF.
    unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        let mut fs: libc::statfs = std::mem::zeroed();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "f_type is a 32-bit magic number, held signed and wider on some targets"
        )]
        let batchable = libc::fstat(fd, &raw mut stat) == 0
            && stat.st_mode & libc::S_IFMT == libc::S_IFREG
            && libc::fcntl(fd, libc::F_GETFL) & libc::O_PATH == 0
            && libc::fstatfs(fd, &raw mut fs) == 0
            && SYNCFS_FILE_SYSTEMS.contains(&(fs.f_type as u32));
        #[allow(clippy::useless_conversion, reason = "dev_t is u32 on some targets")]
        batchable.then(|| u64::from(stat.st_dev))
    }
}

/// Whether this kernel's `syncfs` reports writeback errors (asked once).
pub fn syncfs_reports_errors() -> bool {
    static REPORTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REPORTS.get_or_init(|| {
        // SAFETY: uname fills the struct it is given; `release` is a NUL-terminated string.
        unsafe {
            let mut name: libc::utsname = std::mem::zeroed();
            libc::uname(&raw mut name) == 0
                && release_reports_syncfs_errors(
                    &std::ffi::CStr::from_ptr(name.release.as_ptr()).to_string_lossy(),
                )
        }
    })
}

/// Whether a Linux release string (`6.1.0-13-amd64`) is 5.8 or later.
pub fn release_reports_syncfs_errors(release: &str) -> bool {
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    matches!(
        (numbers.next(), numbers.next()),
        (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= (5, 8)
    )
}
