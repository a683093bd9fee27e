//! Group commit: one background thread writes and makes files durable, many at a time.
//!
//! Jobs queue up while the thread is busy; it takes them all at once: it writes each
//! append (after checking that the file is still the one the caller knows, through the
//! journal's lease when it has one: see [`crate::lease`]), makes every descriptor durable
//! together (one `syncfs` for a batch on Linux 5.8+, else an `fdatasync` each), closes
//! those it does not lease and hands every outcome to a delivery function in one call.
//! Nothing here needs the caller's runtime (the Python wrapper takes the GIL only to
//! deliver). The thread also lets go of idle leases; it leaves after a few idle seconds
//! with none held, and the next submission (or lease) starts one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::awake::KeepAwake;
use crate::lease::{Leased, Leases};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long the thread waits for work before it leaves.
const IDLE: Duration = Duration::from_secs(5);
/// How long the thread watches for new work after a batch before it sleeps. Waking a
/// sleeping thread costs tens of microseconds on virtual machines (a halted vCPU), as much
/// as a fifth of a durable append; a conversation's next save, or a fleet's, often comes
/// sooner than this.
const SPIN: Duration = Duration::from_micros(200);

/// Bytes to append to a journal at `end`, if it is still the file the caller knows (inode
/// `inode`, `end` bytes long, ending with `last`: its last record, so a file that reused
/// the inode number at the same size is told apart), holding its `flock` until durable.
pub struct Append {
    pub path: PathBuf,
    pub inode: u64,
    pub end: u64,
    pub last: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Work for the thread: make a written descriptor durable, or append and make it durable.
pub enum Job {
    Sync(i32),
    Append(Append),
}

/// How a job ended: `written` (the bytes are in the file) and the errno of the failure
/// (0: none). A `Sync` job is always written. Not written with errno 0: the file was not
/// the one expected (missing, replaced, another size, locked by another process), so
/// nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub errno: i32,
    pub written: bool,
}

impl Outcome {
    /// Written, nothing failed.
    pub const DONE: Outcome = Outcome {
        errno: 0,
        written: true,
    };
    /// Not the file expected: nothing written, nothing failed.
    pub const STALE: Outcome = Outcome {
        errno: 0,
        written: false,
    };
}

/// Receives `(token, outcome)` for each job of a batch.
pub type Deliver<T> = dyn Fn(Vec<(T, Outcome)>) + Send + Sync;
/// Whether someone waits for the job of this token now (see [`crate::awake`]).
pub type Awaited<T> = dyn Fn(&T) -> bool + Send + Sync;

struct Queue<T> {
    items: Vec<(Job, T)>,
    worker: Option<JoinHandle<()>>,
    stopped: bool,
    /// The thread waits on the condition variable (set and read under the lock): only then
    /// does a submission pay for a wake-up, a system call even with nobody waiting.
    sleeping: bool,
}

struct Shared<T> {
    queue: Mutex<Queue<T>>,
    /// Set with each job queued, cleared when the thread takes the queue: what it spins on.
    queued: AtomicBool,
    ready: Condvar,
    deliver: Box<Deliver<T>>,
    awaited: Box<Awaited<T>>,
    leases: Leases,
    /// Keeps the thread's CPU awake while it syncs for a job someone waits for.
    awake: KeepAwake,
}

/// The queue and its thread; `T` is whatever the caller needs back with each outcome.
pub struct Syncer<T> {
    shared: Arc<Shared<T>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + 'static> Syncer<T> {
    /// `deliver` receives each batch's outcomes; `awaited` tells the jobs someone waits for,
    /// whose syncs keep the thread's CPU awake (see [`crate::awake`]).
    pub fn new(
        deliver: impl Fn(Vec<(T, Outcome)>) + Send + Sync + 'static,
        awaited: impl Fn(&T) -> bool + Send + Sync + 'static,
    ) -> Self {
        let queue = Queue {
            items: Vec::new(),
            worker: None,
            stopped: false,
            sleeping: false,
        };
        Syncer {
            shared: Arc::new(Shared {
                queue: Mutex::new(queue),
                queued: AtomicBool::new(false),
                ready: Condvar::new(),
                deliver: Box::new(deliver),
                awaited: Box::new(awaited),
                leases: Leases::new(),
                awake: KeepAwake::new(),
            }),
        }
    }

    /// Queue `job`; its outcome is delivered with `token`.
    ///
    /// After [`Syncer::stop`] the job is done at once in the calling thread. Fails only
    /// when no thread can be started (nothing is queued then).
    pub fn submit(&self, job: Job, token: T) -> std::io::Result<()> {
        let mut queue = lock(&self.shared.queue);
        if queue.stopped {
            drop(queue);
            (self.shared.deliver)(finish(&self.shared, vec![(job, token)]));
            return Ok(());
        }
        self.start_worker(&mut queue)?;
        queue.items.push((job, token));
        self.shared.queued.store(true, Ordering::Release);
        self.wake(queue);
        Ok(())
    }

    /// Append `payload` to the journal at `path` now, in the calling thread, as the thread
    /// does for an [`Append`] but without making it durable; the journal stays leased.
    pub fn append_now(
        &self,
        path: &Path,
        inode: u64,
        end: u64,
        last: &[u8],
        payload: &[u8],
    ) -> Outcome {
        let (_, outcome, leased) = self.shared.leases.write(path, inode, end, last, payload);
        if leased {
            // the thread lets the lease go once idle (after `stop`, nobody does: exit is near)
            let mut queue = lock(&self.shared.queue);
            if !queue.stopped && self.start_worker(&mut queue).is_err() {
                drop(queue);
                self.shared.leases.release(path);
                return outcome;
            }
            self.wake(queue); // it may wait with no lease to let go
        }
        outcome
    }

    /// Someone waits for a job already submitted: the thread's CPU is kept awake for the rest
    /// of a sync in flight (see [`crate::awake`]); later ones ask `awaited` themselves.
    pub fn hurry(&self) {
        self.shared.awake.hurry();
    }

    /// Let go of the lease on `path` at once (see [`Leases::release`]).
    pub fn release(&self, path: &Path) {
        self.shared.leases.release(path);
    }

    /// In a forked child: close the leased descriptors (see [`Leases::abandon`]).
    pub fn abandon_leases(&self) {
        self.shared.leases.abandon();
    }

    /// Let the thread finish what is queued, wait for it, and do any later work inline;
    /// every lease is let go.
    pub fn stop(&self) {
        let worker = {
            let mut queue = lock(&self.shared.queue);
            queue.stopped = true;
            queue.worker.take()
        };
        self.shared.ready.notify_all();
        if let Some(worker) = worker {
            let _ = worker.join();
        }
        self.shared.leases.clear();
        self.shared.awake.stop();
    }

    /// Let go of the queue's lock, then wake the thread if it waits (only then: a notify is
    /// a system call even with nobody waiting).
    fn wake(&self, queue: MutexGuard<'_, Queue<T>>) {
        let sleeping = queue.sleeping;
        drop(queue);
        if sleeping {
            self.shared.ready.notify_one();
        }
    }

    /// Start the thread unless it runs.
    fn start_worker(&self, queue: &mut Queue<T>) -> std::io::Result<()> {
        if queue.worker.as_ref().is_none_or(JoinHandle::is_finished) {
            let shared = Arc::clone(&self.shared);
            let worker = thread::Builder::new()
                .name("simulacra-session-sync".to_owned())
                .spawn(move || run(&shared))?;
            queue.worker = Some(worker);
        }
        Ok(())
    }
}

fn run<T>(shared: &Shared<T>) {
    loop {
        let batch = {
            let mut queue = lock(&shared.queue);
            let idle_since = Instant::now();
            loop {
                if !queue.items.is_empty() {
                    shared.queued.store(false, Ordering::Relaxed);
                    break std::mem::take(&mut queue.items);
                }
                if queue.stopped {
                    return;
                }
                let now = Instant::now();
                let leave_at = idle_since + IDLE;
                let next_expiry = shared.leases.expire(now);
                if next_expiry.is_none() && now >= leave_at {
                    // Leaving: the next submit sees a finished handle and starts a thread.
                    queue.worker = None;
                    return;
                }
                let until = next_expiry.map_or(leave_at, |at| at.min(leave_at));
                queue.sleeping = true;
                let (guard, _) = shared
                    .ready
                    .wait_timeout(queue, until.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner);
                queue = guard;
                queue.sleeping = false;
            }
        };
        (shared.deliver)(finish(shared, batch));
        spin_for_work(shared);
    }
}

/// Watch for a new job for up to [`SPIN`], then let `run` sleep on the condition variable.
/// Each look first yields the CPU: the thread is often woken onto the CPU of the event
/// loop that submitted the job, and a plain spin there would keep that loop from seeing
/// the outcome just posted for the whole [`SPIN`].
fn spin_for_work<T>(shared: &Shared<T>) {
    let start = Instant::now();
    while !shared.queued.load(Ordering::Acquire) && start.elapsed() < SPIN {
        thread::yield_now();
    }
}

/// A descriptor of a batch: handed over to be synced and closed, or a lease held until synced.
enum Written {
    Handed(i32),
    Leased(Arc<Leased>),
}

impl Written {
    fn fd(&self) -> i32 {
        match self {
            Written::Handed(fd) => *fd,
            Written::Leased(file) => file.fd(),
        }
    }
}

/// Write the appends, make every written descriptor durable together (with the CPU kept
/// awake when someone waits for one of them: never after `stop`, which stops the spinner),
/// close those handed over (the leased ones stay open).
fn finish<T>(shared: &Shared<T>, batch: Vec<(Job, T)>) -> Vec<(T, Outcome)> {
    let leases = &shared.leases;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut open = Vec::with_capacity(batch.len()); // (descriptor, index in outcomes)
    for (job, token) in batch {
        let (fd, outcome) = match job {
            Job::Sync(fd) => (Some(Written::Handed(fd)), Outcome::DONE),
            Job::Append(append) => {
                let (held, outcome, _) = leases.write(
                    &append.path,
                    append.inode,
                    append.end,
                    &append.last,
                    &append.payload,
                );
                (held.map(Written::Leased), outcome)
            }
        };
        if let Some(fd) = fd {
            open.push((fd, outcomes.len()));
        }
        outcomes.push((token, outcome));
    }
    let durable: Vec<(i32, usize)> = open
        .iter()
        .map(|(fd, index)| (fd.fd(), *index))
        .filter(|(_, index)| outcomes[*index].1.written && outcomes[*index].1.errno == 0)
        .collect();
    let fds: Vec<i32> = durable.iter().map(|(fd, _)| *fd).collect();
    let syncing = (!fds.is_empty()).then(|| {
        let awaited = durable
            .iter()
            .any(|(_, index)| (shared.awaited)(&outcomes[*index].0));
        shared.awake.syncing(awaited)
    });
    let errnos = sync_all(&fds);
    drop(syncing);
    for ((_, index), errno) in durable.iter().zip(errnos) {
        outcomes[*index].1.errno = errno;
    }
    for (fd, _) in open {
        if let Written::Handed(fd) = fd {
            close(fd);
        }
    }
    outcomes
}

pub(crate) fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

use crate::sync::sync_files as sync_all;

fn close(fd: i32) {
    // SAFETY: the descriptor was handed over to be closed here, exactly once.
    unsafe {
        libc::close(fd);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::{Append, Job, Outcome, Syncer};
    use std::io::Write;
    use std::os::fd::IntoRawFd;
    use std::os::unix::fs::MetadataExt;
    use std::sync::mpsc;

    const DONE: Outcome = Outcome::DONE;
    const STALE: Outcome = Outcome::STALE;

    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "simulacra-syncer-{name}-{}",
            crate::fsio::random_hex()
        ))
    }

    fn scratch_fd(name: &str) -> i32 {
        let path = scratch(name);
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"data\n").unwrap();
        std::fs::remove_file(&path).unwrap();
        file.into_raw_fd()
    }

    fn collect<T: Send + 'static>() -> (Syncer<T>, mpsc::Receiver<(T, Outcome)>) {
        let (sender, received) = mpsc::channel();
        let syncer = Syncer::new(
            move |done: Vec<(T, Outcome)>| {
                for item in done {
                    sender.send(item).unwrap();
                }
            },
            |_: &T| false, // awake.rs tests the spinner; it would spin in every test here
        );
        (syncer, received)
    }

    #[test]
    fn delivers_every_outcome_and_closes() {
        let (syncer, received) = collect();
        let fds: Vec<i32> = (0..10).map(|i| scratch_fd(&i.to_string())).collect();
        for (token, fd) in fds.iter().enumerate() {
            syncer.submit(Job::Sync(*fd), token).unwrap();
        }
        let mut outcomes: Vec<(usize, Outcome)> =
            (0..10).map(|_| received.recv().unwrap()).collect();
        outcomes.sort_unstable_by_key(|(token, _)| *token);
        assert_eq!(
            outcomes,
            (0..10).map(|token| (token, DONE)).collect::<Vec<_>>()
        );
        syncer.stop();
        for fd in fds {
            // SAFETY: probing a closed descriptor number.
            assert_eq!(
                unsafe { libc::fcntl(fd, libc::F_GETFD) },
                -1,
                "fd {fd} left open"
            );
        }
    }

    #[test]
    fn appends_only_to_the_file_it_expects() {
        let path = scratch("append");
        std::fs::write(&path, b"head\n").unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let (syncer, received) = collect();
        let job = |end: u64, inode: u64, last: &[u8], payload: &[u8]| {
            Job::Append(Append {
                path: path.clone(),
                inode,
                end,
                last: last.to_vec(),
                payload: payload.to_vec(),
            })
        };
        syncer
            .submit(job(5, inode, b"head\n", b"one\n"), "fits")
            .unwrap();
        assert_eq!(received.recv().unwrap(), ("fits", DONE));
        syncer
            .submit(job(5, inode, b"one\n", b"two\n"), "wrong size")
            .unwrap();
        assert_eq!(received.recv().unwrap(), ("wrong size", STALE));
        syncer
            .submit(job(9, inode + 1, b"one\n", b"two\n"), "wrong inode")
            .unwrap();
        assert_eq!(received.recv().unwrap(), ("wrong inode", STALE));
        syncer
            .submit(job(9, inode, b"two\n", b"two\n"), "wrong last record")
            .unwrap();
        assert_eq!(received.recv().unwrap(), ("wrong last record", STALE));
        syncer
            .submit(
                job(9, inode, b"0123456789", b"two\n"),
                "last longer than the file",
            )
            .unwrap();
        assert_eq!(
            received.recv().unwrap(),
            ("last longer than the file", STALE)
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"head\none\n");
        syncer.release(&path); // as every writer in this process does before it deletes
        std::fs::remove_file(&path).unwrap();
        syncer
            .submit(job(9, inode, b"one\n", b"two\n"), "missing")
            .unwrap();
        assert_eq!(received.recv().unwrap(), ("missing", STALE));
        syncer.stop();
    }

    #[test]
    fn after_stop_work_is_done_inline() {
        let (syncer, received) = collect();
        syncer.stop();
        syncer
            .submit(Job::Sync(scratch_fd("inline")), "inline")
            .unwrap();
        assert_eq!(received.try_recv().unwrap(), ("inline", DONE));
    }
}
