//! Reading a whole file from memory alone: its path from the dentry cache
//! (`openat2(RESOLVE_CACHED)`, Linux 5.12+) and its bytes from the page cache
//! (`preadv2(RWF_NOWAIT)`). An event loop can then read a warm file itself, without a
//! thread hop, and never wait on the disk: whatever is not in memory is left to a
//! blocking read on another thread. The 64-bit Linux machines it serves are those its pure
//! twin can call `openat2` on by number, named once in `build.rs` (`cfg(read_cached)`).

/// An open regular file, found from memory alone.
pub struct Cached {
    pub fd: i32,
    pub inode: u64,
    pub mtime_ns: i64,
    pub size: usize,
}

/// What opening a path from memory found.
pub enum Opened {
    File(Cached),
    /// The dentry cache knows the path is absent.
    Absent,
    /// Not decidable without the disk (or no such facility here): read it the blocking way.
    NotInMemory,
}

#[cfg(read_cached)]
mod imp {
    use super::{Cached, Opened};
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// Open `path` read-only if every component of it is in the dentry cache.
    pub fn open(path: &Path) -> Opened {
        let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
            return Opened::NotInMemory; // a NUL in the path: the blocking read refuses it
        };
        // SAFETY: open_how is plain integers; zeroed is its "no options" value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = u64::try_from(libc::O_RDONLY | libc::O_CLOEXEC).unwrap_or(0);
        how.resolve = libc::RESOLVE_CACHED;
        // SAFETY: a NUL-terminated path and a live open_how of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                libc::c_long::from(libc::AT_FDCWD),
                path.as_ptr(),
                &raw const how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        let Ok(fd) = i32::try_from(fd) else {
            return Opened::NotInMemory;
        };
        if fd < 0 {
            return if errno() == libc::ENOENT {
                Opened::Absent
            } else {
                Opened::NotInMemory // EAGAIN, or a kernel without openat2 or RESOLVE_CACHED
            };
        }
        // SAFETY: fstat fills the zeroed struct for the descriptor we own.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        let regular = unsafe { libc::fstat(fd, &raw mut stat) } == 0
            && stat.st_mode & libc::S_IFMT == libc::S_IFREG;
        if let (true, Ok(size)) = (regular, usize::try_from(stat.st_size)) {
            Opened::File(Cached {
                fd,
                inode: stat.st_ino,
                mtime_ns: stat.st_mtime * 1_000_000_000 + stat.st_mtime_nsec,
                size,
            })
        } else {
            close(fd);
            Opened::NotInMemory
        }
    }

    /// Fill `buffer` from the start of the file from the page cache only; `false` when a
    /// page is not there (or the file ended early).
    pub fn read(fd: i32, buffer: &mut [u8]) -> bool {
        let mut done = 0;
        while done < buffer.len() {
            let rest = &mut buffer[done..];
            let iov = libc::iovec {
                iov_base: rest.as_mut_ptr().cast(),
                iov_len: rest.len(),
            };
            let Ok(offset) = libc::c_long::try_from(done) else {
                return false;
            };
            // SAFETY: one iovec over memory we own; offset low word, high word 0 on 64-bit.
            let read = unsafe {
                libc::syscall(
                    libc::SYS_preadv2,
                    libc::c_long::from(fd),
                    &raw const iov,
                    1 as libc::c_long,
                    offset,
                    0 as libc::c_long,
                    libc::c_long::from(libc::RWF_NOWAIT),
                )
            };
            match usize::try_from(read) {
                Ok(0) | Err(_) => return false,
                Ok(read) => done += read,
            }
        }
        true
    }

    pub fn close(fd: i32) {
        // SAFETY: closing a descriptor we own, once.
        unsafe { libc::close(fd) };
    }
}

#[cfg(not(read_cached))]
mod imp {
    use super::Opened;

    pub fn open(_path: &std::path::Path) -> Opened {
        Opened::NotInMemory
    }

    pub fn read(_fd: i32, _buffer: &mut [u8]) -> bool {
        false
    }

    pub fn close(_fd: i32) {}
}

pub use imp::{close, open, read};

#[cfg(test)]
mod tests {
    use super::{close, open, read, Opened};
    use std::io::Write;

    #[test]
    fn a_warm_file_reads_whole_and_an_absent_one_is_known_absent() {
        let dir = crate::fsio::scratch_dir("cached");
        let path = dir.join("warm");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"hello, page cache")
            .unwrap();
        let _ = std::fs::metadata(dir.join("absent")); // a negative dentry
        if let Opened::File(file) = open(&path) {
            let mut buffer = vec![0; file.size];
            assert!(read(file.fd, &mut buffer));
            assert_eq!(buffer, b"hello, page cache");
            close(file.fd);
            assert!(matches!(open(&dir.join("absent")), Opened::Absent));
        } // else: a kernel without RESOLVE_CACHED; the Python tests check the fallback
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
