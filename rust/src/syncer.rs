//! Group commit: one background thread makes written files durable, many at a time.
//!
//! Descriptors queue up while the thread is busy; it takes them all at once, makes them
//! durable together (one `syncfs` for a batch on Linux, else an `fdatasync` each), closes
//! them and hands every outcome to a delivery function in one call. Waiting, syncing and
//! closing need nothing from the caller's runtime (the Python wrapper takes the GIL only
//! to deliver). The thread leaves after a few idle seconds; the next submission starts one.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Below this many descriptors, syncing each stays cheaper than syncing the whole file system.
pub const BATCH_FOR_SYNCFS: usize = 4;
/// How long the thread waits for work before it leaves.
const IDLE: Duration = Duration::from_secs(5);

/// Receives `(token, errno)` for each descriptor of a batch; errno 0 means durable.
pub type Deliver<T> = dyn Fn(Vec<(T, i32)>) + Send + Sync;

struct Queue<T> {
    items: Vec<(i32, T)>,
    worker: Option<JoinHandle<()>>,
    stopped: bool,
}

struct Shared<T> {
    queue: Mutex<Queue<T>>,
    ready: Condvar,
    deliver: Box<Deliver<T>>,
}

/// The queue and its thread; `T` is whatever the caller needs back with each outcome.
pub struct Syncer<T> {
    shared: Arc<Shared<T>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + 'static> Syncer<T> {
    pub fn new(deliver: impl Fn(Vec<(T, i32)>) + Send + Sync + 'static) -> Self {
        let queue = Queue {
            items: Vec::new(),
            worker: None,
            stopped: false,
        };
        Syncer {
            shared: Arc::new(Shared {
                queue: Mutex::new(queue),
                ready: Condvar::new(),
                deliver: Box::new(deliver),
            }),
        }
    }

    /// Queue `fd` to be made durable and closed; its outcome is delivered with `token`.
    ///
    /// After [`Syncer::stop`] the work is done at once in the calling thread. Fails only
    /// when no thread can be started (nothing is queued then).
    pub fn submit(&self, fd: i32, token: T) -> std::io::Result<()> {
        let mut queue = lock(&self.shared.queue);
        if queue.stopped {
            drop(queue);
            let errno = sync_all(&[fd])[0];
            close(fd);
            (self.shared.deliver)(vec![(token, errno)]);
            return Ok(());
        }
        if queue.worker.as_ref().is_none_or(JoinHandle::is_finished) {
            let shared = Arc::clone(&self.shared);
            let worker = thread::Builder::new()
                .name("simulacra-session-sync".to_owned())
                .spawn(move || run(&shared))?;
            queue.worker = Some(worker);
        }
        queue.items.push((fd, token));
        drop(queue);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Let the thread finish what is queued, wait for it, and do any later work inline.
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
    }
}

fn run<T>(shared: &Shared<T>) {
    loop {
        let batch = {
            let mut queue = lock(&shared.queue);
            loop {
                if !queue.items.is_empty() {
                    break std::mem::take(&mut queue.items);
                }
                if queue.stopped {
                    return;
                }
                let (guard, wait) = shared
                    .ready
                    .wait_timeout(queue, IDLE)
                    .unwrap_or_else(PoisonError::into_inner);
                queue = guard;
                if wait.timed_out() && queue.items.is_empty() {
                    // Leaving: the next submit sees a finished handle and starts a thread.
                    queue.worker = None;
                    return;
                }
            }
        };
        let fds: Vec<i32> = batch.iter().map(|(fd, _)| *fd).collect();
        let errnos = sync_all(&fds);
        for fd in &fds {
            close(*fd);
        }
        let done = batch
            .into_iter()
            .zip(errnos)
            .map(|((_, token), errno)| (token, errno));
        (shared.deliver)(done.collect());
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Make every descriptor's written data durable; the errno of each (0: durable).
pub fn sync_all(fds: &[i32]) -> Vec<i32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: syncfs only reads the descriptor number.
        if fds.len() >= BATCH_FOR_SYNCFS && unsafe { libc::syncfs(fds[0]) } == 0 {
            return vec![0; fds.len()];
        }
    }
    fds.iter()
        .map(|&fd| if sync_one(fd) == 0 { 0 } else { last_errno() })
        .collect()
}

/// `os.fdatasync` where Python has it, else `os.fsync` (which is `_commit` on Windows).
fn sync_one(fd: i32) -> i32 {
    // SAFETY: these only read the descriptor number; a bad one fails with EBADF.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let result = unsafe { libc::fdatasync(fd) };
    #[cfg(all(
        unix,
        not(any(target_os = "linux", target_os = "android", target_os = "freebsd"))
    ))]
    let result = unsafe { libc::fsync(fd) };
    #[cfg(windows)]
    let result = unsafe { libc::commit(fd) };
    result
}

fn close(fd: i32) {
    // SAFETY: the descriptor was handed over to be closed here, exactly once.
    unsafe {
        libc::close(fd);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::{sync_all, Syncer};
    use std::io::Write;
    use std::os::fd::IntoRawFd;
    use std::sync::mpsc;

    fn scratch_fd(name: &str) -> i32 {
        let path = std::env::temp_dir().join(format!(
            "simulacra-syncer-{name}-{}",
            crate::fsio::random_hex()
        ));
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"data\n").unwrap();
        std::fs::remove_file(&path).unwrap();
        file.into_raw_fd()
    }

    #[test]
    fn delivers_every_outcome_and_closes() {
        let (sender, received) = mpsc::channel();
        let syncer = Syncer::new(move |done: Vec<(usize, i32)>| {
            for item in done {
                sender.send(item).unwrap();
            }
        });
        let fds: Vec<i32> = (0..10).map(|i| scratch_fd(&i.to_string())).collect();
        for (token, fd) in fds.iter().enumerate() {
            syncer.submit(*fd, token).unwrap();
        }
        let mut outcomes: Vec<(usize, i32)> = (0..10).map(|_| received.recv().unwrap()).collect();
        outcomes.sort_unstable();
        assert_eq!(
            outcomes,
            (0..10).map(|token| (token, 0)).collect::<Vec<_>>()
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
    fn after_stop_work_is_done_inline() {
        let (sender, received) = mpsc::channel();
        let syncer = Syncer::new(move |done: Vec<(&'static str, i32)>| sender.send(done).unwrap());
        syncer.stop();
        syncer.submit(scratch_fd("inline"), "inline").unwrap();
        assert_eq!(received.try_recv().unwrap(), vec![("inline", 0)]);
    }

    #[test]
    fn bad_descriptors_report_ebadf() {
        assert_eq!(sync_all(&[-1]), vec![libc::EBADF]);
        assert_eq!(sync_all(&[-1, -1]), vec![libc::EBADF, libc::EBADF]);
    }
}
