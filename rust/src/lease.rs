//! Leases: journals kept open and `flock`ed between appends, so that an append to a journal
//! appended to a moment ago is one `pwrite`, not an open, a lock, three checks and a close.
//!
//! A lease is taken by an append that opened, locked and checked its journal as every
//! append did before (inode, size, last record, still named by its path); later appends
//! that expect the very state the lease's last append left (inode, end, last record) write
//! through it. Holding the lock is what makes the in-memory check enough: every writer of
//! a journal, in any process, takes its `flock` before changing or replacing it. A lease is
//! released by closing its descriptor (never `LOCK_UN`, which a forked child sharing the
//! descriptor would release for its parent too): when idle for [`IDLE_LEASE`], when evicted
//! by a newer one beyond the table's capacity, when a write through it fails, or at once by
//! [`Leases::release`], which this process's blocking writers call before they lock.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::syncer::{last_errno, Outcome};

/// How long a lease outlives its last append: long enough for a burst of appends (a tool
/// call's result after the model's message), short enough that a writer of that journal in
/// another process waits little: this long once the holder's appends stop.
pub const IDLE_LEASE: Duration = Duration::from_millis(250);
/// The most leases held at once, at most a quarter of the process's descriptor limit.
const MOST_LEASES: usize = 256;

/// A leased descriptor, closed when the last holder (the table, a write under way) lets go.
pub struct Leased {
    fd: i32,
    slot: usize,
    slots: Arc<[AtomicI32]>,
}

impl Leased {
    pub fn fd(&self) -> i32 {
        self.fd
    }
}

impl Drop for Leased {
    fn drop(&mut self) {
        // A forked child has closed it already (see `Leases::abandon`): the number may be
        // another file's by now.
        if self.slots[self.slot]
            .compare_exchange(self.fd, -1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // SAFETY: the descriptor is ours, and this is its only close.
            unsafe {
                libc::close(self.fd);
            }
        }
    }
}

struct Lease {
    file: Arc<Leased>,
    inode: u64,
    end: u64,
    last: Vec<u8>,
    used: Instant,
}

/// The leases of one process (of one sync thread's owner).
pub struct Leases {
    table: Mutex<HashMap<PathBuf, Lease>>,
    /// Every leased descriptor, by slot: what a forked child closes without the table's lock.
    slots: Arc<[AtomicI32]>,
    capacity: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The record `payload` ends with: its last line, newline included.
fn last_record(payload: &[u8]) -> &[u8] {
    let body = payload.strip_suffix(b"\n").unwrap_or(payload);
    let start = memchr::memrchr(b'\n', body).map_or(0, |at| at + 1);
    &payload[start..]
}

impl Default for Leases {
    fn default() -> Self {
        Self::new()
    }
}

impl Leases {
    pub fn new() -> Self {
        let capacity = descriptor_limit()
            .map_or(MOST_LEASES, |limit| (limit / 4).min(MOST_LEASES))
            .max(1);
        Leases {
            table: Mutex::new(HashMap::new()),
            // room for the writes under way on leases evicted meanwhile too
            slots: (0..2 * capacity).map(|_| AtomicI32::new(-1)).collect(),
            capacity,
        }
    }

    /// Write `payload` at `end` of the journal at `path` if it is the file the caller knows
    /// (inode `inode`, `end` bytes long, ending with `last`), through its lease or by opening,
    /// locking and checking it (then leasing it). Returns the descriptor written to, to be
    /// made durable while held, the outcome, and whether the journal was leased anew.
    pub fn write(
        &self,
        path: &Path,
        inode: u64,
        end: u64,
        last: &[u8],
        payload: &[u8],
    ) -> (Option<Arc<Leased>>, Outcome, bool) {
        let now = Instant::now();
        let leased = {
            let mut table = lock(&self.table);
            match table.get_mut(path) {
                // The lease's next append, reserved before the write: a second writer
                // expecting the same state finds it gone.
                Some(lease) if lease.inode == inode && lease.end == end && lease.last == last => {
                    lease.end += payload.len() as u64;
                    lease.last = last_record(payload).to_vec();
                    lease.used = now;
                    Some(Arc::clone(&lease.file))
                }
                Some(_) => return (None, STALE, false), // not the state the lock keeps
                None => None,
            }
        };
        if let Some(file) = leased {
            let outcome = written(pwrite_all(file.fd, payload, end));
            if outcome.errno != 0 {
                self.drop_lease(path, &file); // the file is no longer what the lease says
            }
            return (Some(file), outcome, false);
        }
        let Some((file, name)) = self.open(path) else {
            return (None, STALE, false);
        };
        let outcome = checked_write(file.fd, &name, inode, end, last, payload);
        if !outcome.written {
            return (None, outcome, false);
        }
        let lease = Lease {
            file: Arc::clone(&file),
            inode,
            end: end + payload.len() as u64,
            last: last_record(payload).to_vec(),
            used: now,
        };
        let evicted = {
            let mut table = lock(&self.table);
            let evicted = if table.len() >= self.capacity {
                let oldest = table
                    .iter()
                    .min_by_key(|(_, lease)| lease.used)
                    .map(|(key, _)| key.clone());
                oldest.and_then(|key| table.remove(&key))
            } else {
                None
            };
            table.insert(path.to_path_buf(), lease);
            evicted
        };
        drop(evicted); // closed outside the lock
        (Some(file), outcome, true)
    }

    /// Let go of the lease on `path`, if any: its descriptor closes (and its lock goes) once
    /// no write under way holds it.
    pub fn release(&self, path: &Path) {
        let released = lock(&self.table).remove(path);
        drop(released);
    }

    /// Let go of the leases idle for [`IDLE_LEASE`] by `now`; when the next one expires.
    pub fn expire(&self, now: Instant) -> Option<Instant> {
        let mut table = lock(&self.table);
        let mut expired = Vec::new();
        table.retain(|_, lease| {
            let keep = now < lease.used + IDLE_LEASE;
            if !keep {
                expired.push(Arc::clone(&lease.file));
            }
            keep
        });
        let next = table.values().map(|lease| lease.used + IDLE_LEASE).min();
        drop(table);
        drop(expired);
        next
    }

    /// Let go of every lease.
    pub fn clear(&self) {
        let all = std::mem::take(&mut *lock(&self.table));
        drop(all);
    }

    /// In a forked child: close every leased descriptor without the table's lock (a thread
    /// of the parent may have held it), so the child never keeps its parent's journals
    /// locked; the table, never used again, closes nothing when dropped.
    pub fn abandon(&self) {
        for slot in self.slots.iter() {
            let fd = slot.swap(-1, Ordering::AcqRel);
            if fd >= 0 {
                // SAFETY: a descriptor this process leased and nobody closed yet.
                unsafe {
                    libc::close(fd);
                }
            }
        }
    }

    fn drop_lease(&self, path: &Path, file: &Arc<Leased>) {
        let mut table = lock(&self.table);
        if table
            .get(path)
            .is_some_and(|lease| Arc::ptr_eq(&lease.file, file))
        {
            let dropped = table.remove(path);
            drop(table);
            drop(dropped);
        }
    }

    /// Open `path` for an append, its descriptor recorded in a free slot (with the path as
    /// the system calls take it); `None` when it cannot be opened or every slot is taken
    /// (writes under way hold them all: the caller's append is then left to the blocking
    /// path, as for a journal locked elsewhere).
    #[cfg(unix)]
    fn open(&self, path: &Path) -> Option<(Arc<Leased>, CString)> {
        use std::os::unix::ffi::OsStrExt;
        let name = CString::new(path.as_os_str().as_bytes()).ok()?; // a NUL: refused
        let slot = self.slots.iter().position(|slot| {
            slot.compare_exchange(-1, -2, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })?;
        // SAFETY: a NUL-terminated path; the descriptor is ours until closed.
        let fd = unsafe { libc::open(name.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            self.slots[slot].store(-1, Ordering::Release);
            return None;
        }
        self.slots[slot].store(fd, Ordering::Release);
        let file = Leased {
            fd,
            slot,
            slots: Arc::clone(&self.slots),
        };
        Some((Arc::new(file), name))
    }

    #[cfg(not(unix))]
    fn open(&self, _path: &Path) -> Option<(Arc<Leased>, CString)> {
        None
    }
}

/// The soft limit on open descriptors, where there is one.
#[cfg(unix)]
fn descriptor_limit() -> Option<usize> {
    // SAFETY: getrlimit fills the struct it is given.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) != 0 {
            return None;
        }
        usize::try_from(limit.rlim_cur).ok()
    }
}

#[cfg(not(unix))]
fn descriptor_limit() -> Option<usize> {
    None
}

const STALE: Outcome = Outcome::STALE;

fn written(result: Result<(), i32>) -> Outcome {
    match result {
        Ok(()) => Outcome::DONE,
        Err(errno) => Outcome {
            errno,
            written: false,
        },
    }
}

/// Lock the open journal without waiting, check it is the file expected, write at `end`.
#[cfg(unix)]
fn checked_write(
    fd: i32,
    name: &CStr,
    inode: u64,
    end: u64,
    last: &[u8],
    payload: &[u8],
) -> Outcome {
    // SAFETY: plain syscalls on a descriptor we own and a NUL-terminated path.
    unsafe {
        if libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) != 0 {
            let errno = last_errno();
            return if errno == libc::EWOULDBLOCK {
                STALE // locked by another process (or another lease of this one)
            } else {
                written(Err(errno))
            };
        }
        let mut opened: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &raw mut opened) != 0 {
            return written(Err(last_errno()));
        }
        #[allow(
            clippy::useless_conversion,
            reason = "st_ino is narrower on some targets"
        )]
        let opened_inode = u64::from(opened.st_ino);
        if opened_inode != inode || u64::try_from(opened.st_size).ok() != Some(end) {
            return STALE;
        }
        let mut named: libc::stat = std::mem::zeroed();
        if libc::stat(name.as_ptr(), &raw mut named) != 0 {
            return written(Err(last_errno()));
        }
        if named.st_ino != opened.st_ino {
            return STALE; // replaced by a rewrite in another process
        }
    }
    match ends_with(fd, end, last) {
        Ok(true) => written(pwrite_all(fd, payload, end)),
        Ok(false) => STALE, // another file, with a reused inode number, the same size
        Err(errno) => written(Err(errno)),
    }
}

#[cfg(not(unix))]
fn checked_write(_: i32, _: &CStr, _: u64, _: u64, _: &[u8], _: &[u8]) -> Outcome {
    STALE
}

/// Whether the `end` bytes of the file at `fd` end with `last`.
#[cfg(unix)]
fn ends_with(fd: i32, end: u64, last: &[u8]) -> Result<bool, i32> {
    let Some(start) = end.checked_sub(last.len() as u64) else {
        return Ok(false);
    };
    let mut found = vec![0u8; last.len()];
    let mut read = 0;
    while read < found.len() {
        let at = libc::off_t::try_from(start + read as u64).map_err(|_| libc::EFBIG)?;
        // SAFETY: `found[read..]` is valid for writing `found.len() - read` bytes.
        let got = unsafe {
            libc::pread(
                fd,
                found[read..].as_mut_ptr().cast(),
                found.len() - read,
                at,
            )
        };
        match usize::try_from(got) {
            Ok(0) => return Ok(false),
            Ok(got) => read += got,
            Err(_) if last_errno() == libc::EINTR => {}
            Err(_) => return Err(last_errno()),
        }
    }
    Ok(found == last)
}

#[cfg(unix)]
fn pwrite_all(fd: i32, mut data: &[u8], mut offset: u64) -> Result<(), i32> {
    while !data.is_empty() {
        let at = libc::off_t::try_from(offset).map_err(|_| libc::EFBIG)?;
        // SAFETY: `data` is valid for `data.len()` bytes.
        let written = unsafe { libc::pwrite(fd, data.as_ptr().cast(), data.len(), at) };
        let Ok(written) = usize::try_from(written) else {
            let errno = last_errno();
            if errno == libc::EINTR {
                continue;
            }
            return Err(errno);
        };
        data = &data[written..];
        offset += written as u64;
    }
    Ok(())
}

#[cfg(not(unix))]
fn pwrite_all(_: i32, _: &[u8], _: u64) -> Result<(), i32> {
    Err(libc::ENOSYS)
}

#[cfg(all(test, unix))]
mod tests {
    use super::{Leases, IDLE_LEASE};
    use crate::syncer::Outcome;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    use std::time::Instant;

    const DONE: Outcome = Outcome::DONE;
    const STALE: Outcome = Outcome::STALE;

    fn journal(name: &str) -> (std::path::PathBuf, u64) {
        let path = std::env::temp_dir().join(format!(
            "simulacra-lease-{name}-{}",
            crate::fsio::random_hex()
        ));
        std::fs::write(&path, b"head\n").unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        (path, inode)
    }

    /// Whether another open file description could lock the file now.
    fn lockable(path: &std::path::Path) -> bool {
        let file = std::fs::File::open(path).unwrap();
        // SAFETY: flock on a descriptor the file owns; closing it releases the lock.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
    }

    #[test]
    fn a_lease_keeps_the_journal_locked_and_writes_what_follows_it() {
        let (path, inode) = journal("keeps");
        let leases = Leases::new();
        let (_, outcome, new) = leases.write(&path, inode, 5, b"head\n", b"m1\n[1]\n");
        assert_eq!((outcome, new), (DONE, true));
        assert!(!lockable(&path), "the lease holds the flock");
        // through the lease: the state its last append left, its last record being "[1]\n"
        let (_, outcome, new) = leases.write(&path, inode, 12, b"[1]\n", b"[2]\n");
        assert_eq!((outcome, new), (DONE, false));
        // another state than the lease's (a stale end, a stale record, another inode)
        for (end, last, ino) in [
            (12, &b"[1]\n"[..], inode),
            (16, b"[1]\n", inode),
            (16, b"[2]\n", inode + 1),
        ] {
            assert_eq!(leases.write(&path, ino, end, last, b"no\n").1, STALE);
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"head\nm1\n[1]\n[2]\n");
        leases.release(&path);
        assert!(lockable(&path), "released");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn idle_leases_expire_and_held_ones_are_abandoned_in_a_child() {
        let (path, inode) = journal("expire");
        let leases = Leases::new();
        assert!(leases.write(&path, inode, 5, b"head\n", b"[1]\n").2);
        let now = Instant::now();
        let next = leases.expire(now).expect("one lease, expiring later");
        assert!(next > now && next <= now + IDLE_LEASE);
        assert!(!lockable(&path));
        assert_eq!(leases.expire(next), None);
        assert!(lockable(&path), "expired");
        assert!(
            leases.write(&path, inode, 9, b"[1]\n", b"[2]\n").2,
            "leased anew"
        );
        leases.abandon();
        assert!(lockable(&path), "abandoned: the descriptor is closed");
        drop(leases); // closes nothing twice
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_journal_locked_elsewhere_is_not_written() {
        let (path, inode) = journal("elsewhere");
        let other = std::fs::File::open(&path).unwrap();
        // SAFETY: flock on a descriptor the file owns.
        assert_eq!(unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX) }, 0);
        let leases = Leases::new();
        let (file, outcome, new) = leases.write(&path, inode, 5, b"head\n", b"[1]\n");
        assert!(file.is_none() && !new);
        assert_eq!(outcome, STALE);
        assert_eq!(std::fs::read(&path).unwrap(), b"head\n");
        drop(other);
        std::fs::remove_file(&path).unwrap();
    }
}
