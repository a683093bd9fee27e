//! Group commit: one thread makes the descriptors handed to it durable, many at a time,
//! and tells each waiter through its channel.
//!
//! A [`Committer`] owns the thread, started on the first [`Committer::submit`]. The thread
//! sleeps on a condition variable until there is work, takes every descriptor handed over
//! meanwhile, makes them durable together ([`super::sync_files`]), and puts each outcome in
//! the [`Channel`] its submitter named, waking that channel's reader with one write to its
//! signal descriptor (an eventfd on Linux, a pipe elsewhere) when the channel had nothing
//! waiting. An event loop watches the signal descriptor as it watches a socket and calls
//! [`Channel::drain`], so the way back costs the loop one wake-up and no thread of the
//! interpreter. A descriptor made durable has its `flock` released at once, so the next
//! writer of its file never waits for the reader. Nothing spins or polls: the thread sleeps in the kernel while there is no
//! work and while the disk works.
//!
//! The thread never closes a descriptor: whoever drains the outcome does (so a forked child
//! knows which descriptors are its parent's jobs: those handed over and not yet drained). A
//! closed channel's outcomes are closed by the thread, since nobody will drain them.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::sync_files;

/// A descriptor made durable and the errno of doing so (0: durable).
pub type Outcome = (i32, i32);

#[cfg(unix)]
use std::os::fd::{AsRawFd, OwnedFd};

/// How a batch of descriptors is made durable: [`sync_files`], or a stand-in in tests.
type Sync = fn(&[i32]) -> Vec<i32>;

/// The thread and what is handed to it.
pub struct Committer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    sync: Sync,
}

impl Default for Committer {
    fn default() -> Self {
        Self::with_sync(sync_files)
    }
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<(i32, Arc<Channel>)>,
    started: bool,
    waiting: bool,
    stopping: bool,
}

/// Lock a mutex whose holder may have panicked: the data stays consistent between
/// statements, so a panic elsewhere does not make it unusable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Committer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A committer whose thread makes batches durable with `sync`.
    pub(crate) fn with_sync(sync: Sync) -> Self {
        Self {
            shared: Arc::default(),
            thread: Mutex::default(),
            sync,
        }
    }

    /// Hand `fd` over to be made durable; its outcome goes to `channel`. `Ok(false)` once
    /// [`Committer::stop`] was called (`fd` not taken); an error when the thread cannot be
    /// started.
    pub fn submit(&self, fd: i32, channel: &Arc<Channel>) -> std::io::Result<bool> {
        let mut queue = lock(&self.shared.queue);
        if queue.stopping {
            return Ok(false);
        }
        if !queue.started {
            let (shared, sync) = (Arc::clone(&self.shared), self.sync);
            let thread = std::thread::Builder::new()
                .name("simulacra-session sync".into())
                .spawn(move || run(&shared, sync))?;
            *lock(&self.thread) = Some(thread);
            queue.started = true;
        }
        queue.jobs.push((fd, Arc::clone(channel)));
        let wake = std::mem::take(&mut queue.waiting);
        drop(queue); // so the thread, woken, does not wait for the lock
        if wake {
            self.shared.work.notify_one();
        }
        Ok(true)
    }

    /// Refuse further work, let the thread make durable what it was handed, and wait for
    /// it to end.
    pub fn stop(&self) {
        lock(&self.shared.queue).stopping = true;
        self.shared.work.notify_one();
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            // A panic in the thread was already reported on stderr; nothing is left to do.
            let _ = thread.join();
        }
    }
}

impl Drop for Committer {
    /// A committer nobody holds any more: its thread ends once its work is done.
    fn drop(&mut self) {
        lock(&self.shared.queue).stopping = true;
        self.shared.work.notify_one();
    }
}

/// The thread: sleep until there is work, make it durable, deliver the outcomes.
fn run(shared: &Shared, sync: Sync) {
    loop {
        let jobs = {
            let mut queue = lock(&shared.queue);
            while queue.jobs.is_empty() && !queue.stopping {
                queue.waiting = true;
                queue = shared
                    .work
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            queue.waiting = false;
            if queue.jobs.is_empty() {
                return; // stopping, with nothing left
            }
            std::mem::take(&mut queue.jobs)
        };
        let fds: Vec<i32> = jobs.iter().map(|(fd, _)| *fd).collect();
        // A panic of our own (a bug, not the disk) fails the batch, not the thread: its
        // waiters hear EIO (durable or not, nobody knows), and later batches are served.
        let errnos =
            std::panic::catch_unwind(|| sync(&fds)).unwrap_or_else(|_| vec![libc::EIO; fds.len()]);
        unlock(&fds);
        let mut signal: Vec<&Arc<Channel>> = Vec::new();
        for ((fd, channel), errno) in jobs.iter().zip(errnos) {
            if channel.deliver((*fd, errno))
                && !signal.iter().any(|seen| Arc::ptr_eq(seen, channel))
            {
                signal.push(channel);
            }
        }
        for channel in signal {
            channel.signal.set();
        }
    }
}

/// Where one reader (an event loop) receives the outcomes of the descriptors it handed over.
pub struct Channel {
    signal: Signal,
    done: Mutex<Done>,
}

#[derive(Default)]
struct Done {
    outcomes: Vec<Outcome>,
    closed: bool,
}

impl Channel {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            signal: Signal::new()?,
            done: Mutex::default(),
        })
    }

    /// The descriptor that turns readable when outcomes arrive.
    pub fn fileno(&self) -> i32 {
        self.signal.fileno()
    }

    /// The outcomes delivered since the last drain, in order; the signal is cleared.
    pub fn drain(&self) -> Vec<Outcome> {
        self.signal.clear();
        std::mem::take(&mut lock(&self.done).outcomes)
    }

    /// Nobody will drain this channel any more: outcomes delivered and undrained, and any
    /// delivered later, have their descriptors closed.
    pub fn close(&self) {
        let mut done = lock(&self.done);
        done.closed = true;
        for (fd, _) in std::mem::take(&mut done.outcomes) {
            close(fd);
        }
    }

    /// Add an outcome; whether the reader must be woken (it had nothing waiting).
    fn deliver(&self, outcome: Outcome) -> bool {
        let mut done = lock(&self.done);
        if done.closed {
            close(outcome.0);
            return false;
        }
        done.outcomes.push(outcome);
        done.outcomes.len() == 1
    }
}

/// Release the `flock` each descriptor may hold: once durable, its file is free for the
/// next writer, whenever the reader drains the outcome (a reader whose loop closed never does).
fn unlock(fds: &[i32]) {
    #[cfg(unix)]
    for &fd in fds {
        // SAFETY: flock only reads the descriptor number, which stays open (undrained).
        unsafe { libc::flock(fd, libc::LOCK_UN) };
    }
    #[cfg(windows)]
    let _ = fds; // no flock there
}

/// Close a descriptor nobody else will close.
fn close(fd: i32) {
    // SAFETY: the descriptor was handed over to be closed once made durable, and its
    // channel's reader is gone, so this is its only owner.
    unsafe { libc::close(fd) };
}

/// A descriptor pair: the reader's end turns readable once the other end is written to.
#[cfg(unix)]
struct Signal {
    read: OwnedFd,
    write: Option<OwnedFd>, // None: an eventfd, one descriptor for both ends
}

#[cfg(unix)]
impl Signal {
    #[cfg(target_os = "linux")]
    fn new() -> std::io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: eventfd returns a new descriptor (owned here) or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor nobody else owns.
        let read = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { read, write: None })
    }

    #[cfg(all(unix, not(target_os = "linux")))]
    fn new() -> std::io::Result<Self> {
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        // SAFETY: pipe fills the two descriptors it creates (owned here).
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both are new descriptors nobody else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in &fds {
            // SAFETY: fcntl on descriptors owned here.
            unsafe {
                libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC);
                libc::fcntl(*fd, libc::F_SETFL, libc::O_NONBLOCK);
            }
        }
        Ok(Self {
            read,
            write: Some(write),
        })
    }

    fn fileno(&self) -> i32 {
        self.read.as_raw_fd()
    }

    /// Wake the reader (a full pipe or a set eventfd already holds a wake-up).
    fn set(&self) {
        let fd = self.write.as_ref().unwrap_or(&self.read).as_raw_fd();
        let one = 1u64.to_ne_bytes();
        let size = if self.write.is_some() { 1 } else { one.len() };
        // SAFETY: writes from a live buffer to a descriptor owned here; EAGAIN is fine.
        unsafe { libc::write(fd, one.as_ptr().cast(), size) };
    }

    /// Consume every wake-up written so far.
    fn clear(&self) {
        const SIZE: isize = 512;
        let mut buffer = [0u8; SIZE as usize];
        // SAFETY: reads into a live buffer from a non-blocking descriptor owned here.
        while unsafe {
            libc::read(
                self.read.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        } == SIZE
        {}
    }
}

/// Windows has no descriptor an event loop can watch for a thread's wake-up (its
/// selector takes sockets only, its proactor no readers): a channel cannot be made, and
/// callers wait for the disk another way.
#[cfg(windows)]
struct Signal;

#[cfg(windows)]
#[allow(
    clippy::unused_self,
    reason = "the same methods as the Unix signal's, which a channel never reaches here"
)]
impl Signal {
    fn new() -> std::io::Result<Self> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    fn fileno(&self) -> i32 {
        -1
    }

    fn set(&self) {}

    fn clear(&self) {}
}
