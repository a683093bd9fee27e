//! Windows: what `os.lstat` reports of a file, from `GetFileInformationByHandle` as CPython
//! and the standard library's `metadata` call it: the volume serial (`st_dev`), the file
//! index (`st_ino`), the size and the last write time. Stable Rust exposes no file index.

use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

/// Opens directories too (a handle for metadata only, with no access asked).
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
/// Opens a symlink (a reparse point) itself rather than what it points to.
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
/// 100-nanosecond ticks from 1601-01-01 (a `FILETIME`'s epoch) to 1970-01-01.
const UNIX_EPOCH_TICKS: i64 = 116_444_736_000_000_000;

#[repr(C)]
struct FileTime {
    low: u32,
    high: u32,
}

#[repr(C)]
struct ByHandleFileInformation {
    attributes: u32,
    creation: FileTime,
    last_access: FileTime,
    last_write: FileTime,
    volume_serial: u32,
    size_high: u32,
    size_low: u32,
    links: u32,
    index_high: u32,
    index_low: u32,
}

#[link(name = "kernel32")]
extern "system" {
    fn GetFileInformationByHandle(file: *mut c_void, info: *mut ByHandleFileInformation) -> i32;
}

/// A file's identity, size and modification time, a symlink not followed (`os.lstat`).
pub struct Info {
    pub volume: u64,
    pub index: u64,
    pub size: u64,
    pub mtime_ns: i64,
}

fn join(high: u32, low: u32) -> u64 {
    u64::from(high) << 32 | u64::from(low)
}

/// What `os.lstat(path)` reports of `path`'s identity, size and mtime.
pub fn info(path: &Path) -> io::Result<Info> {
    let file: File = OpenOptions::new()
        .access_mode(0)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    // SAFETY: all-zero integers are a valid value of the struct the call fills.
    let mut info: ByHandleFileInformation = unsafe { std::mem::zeroed() };
    // SAFETY: a live handle, owned by `file`, and a struct of the documented layout.
    if unsafe { GetFileInformationByHandle(file.as_raw_handle(), &raw mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let ticks = i64::try_from(join(info.last_write.high, info.last_write.low)).unwrap_or(i64::MAX);
    Ok(Info {
        volume: u64::from(info.volume_serial),
        index: join(info.index_high, info.index_low),
        size: join(info.size_high, info.size_low),
        mtime_ns: (ticks - UNIX_EPOCH_TICKS).saturating_mul(100),
    })
}
