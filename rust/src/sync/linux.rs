//! Linux: one `syncfs` per file system for a large enough batch, on kernels that report
//! writeback errors through it (5.8 and later).

use super::{retrying, sync_grouped, sync_one};

/// `sync_grouped` with the descriptors' devices from `fstat` and the real `syncfs`.
pub fn sync_by_file_system(fds: &[i32]) -> Vec<i32> {
    let devices: Vec<Option<u64>> = fds.iter().map(|&fd| device_of(fd)).collect();
    // SAFETY: syncfs only reads the descriptor number.
    sync_grouped(
        fds,
        &devices,
        |fd| retrying(|| unsafe { libc::syncfs(fd) }) == 0,
        sync_one,
    )
}

/// The device (file system) a descriptor's file is on; `None` when `fstat` fails.
fn device_of(fd: i32) -> Option<u64> {
    // SAFETY: fstat fills the struct it is given; a bad descriptor fails with EBADF.
    unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        #[allow(clippy::useless_conversion, reason = "dev_t is u32 on some targets")]
        (libc::fstat(fd, &raw mut stat) == 0).then(|| u64::from(stat.st_dev))
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
