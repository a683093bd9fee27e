//! Where the sync thread leaves finished jobs for one event loop, without the interpreter.
//!
//! Handing a result to an event loop through the interpreter means taking its lock on the
//! sync thread just as the loop wakes up to run the result, so the loop often wakes, finds
//! the lock taken and sleeps again: two wake-ups, each tens of microseconds on a virtual
//! machine. A mailbox is a queue under a plain mutex and a file descriptor (an eventfd or
//! a pipe the loop watches): posting takes no interpreter lock, and writes the descriptor
//! only when the owner is neither watching the queue already nor signalled since it last
//! looked.

use std::sync::{Mutex, MutexGuard, PoisonError};

struct Mail<T> {
    items: Vec<T>,
    /// The owner looks at the queue again soon by itself: no wake-up is needed.
    polling: bool,
    /// The descriptor was written since the owner last took the queue.
    signalled: bool,
    /// The owner is gone: posts are refused.
    closed: bool,
}

/// A queue of `T` for one owner, woken through `wake_fd` (not owned: never closed here, and
/// never written once `close` has returned).
pub struct Mailbox<T> {
    mail: Mutex<Mail<T>>,
    wake_fd: i32,
}

impl<T> Mailbox<T> {
    pub fn new(wake_fd: i32) -> Self {
        Mailbox {
            mail: Mutex::new(Mail {
                items: Vec::new(),
                polling: false,
                signalled: false,
                closed: false,
            }),
            wake_fd,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Mail<T>> {
        self.mail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leave `items` for the owner, waking it if it needs waking; `Err(items)` once closed.
    pub fn post(&self, items: Vec<T>) -> Result<(), Vec<T>> {
        let mut mail = self.lock();
        if mail.closed {
            return Err(items);
        }
        mail.items.extend(items);
        if !mail.polling && !mail.signalled {
            mail.signalled = true;
            // Under the lock: once `close` returns, the owner may close the descriptor and
            // its number be reused; a late write would land in someone else's file.
            signal(self.wake_fd);
        }
        Ok(())
    }

    /// Everything posted so far; `polling` tells whether the owner will look again by itself
    /// (no wake-up until a later `take` says otherwise).
    pub fn take(&self, polling: bool) -> Vec<T> {
        let mut mail = self.lock();
        mail.polling = polling;
        mail.signalled = false;
        std::mem::take(&mut mail.items)
    }

    /// The owner will take again by itself (as after `take(true)`), without taking now.
    pub fn watch(&self) {
        self.lock().polling = true;
    }

    /// Whether the owner takes again by itself: someone on its side waits for what comes.
    pub fn watched(&self) -> bool {
        self.lock().polling
    }

    /// Refuse later posts; returns what was left unread.
    pub fn close(&self) -> Vec<T> {
        let mut mail = self.lock();
        mail.closed = true;
        std::mem::take(&mut mail.items)
    }
}

/// Make `fd` readable: 8 bytes, as an eventfd needs (a pipe takes any). A full pipe or
/// counter means the owner is woken already, and a closed descriptor that it is gone, so
/// failures are ignored.
fn signal(fd: i32) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live buffer; a bad descriptor fails with EBADF.
    #[cfg(unix)]
    unsafe {
        libc::write(fd, one.as_ptr().cast(), one.len());
    }
    #[cfg(windows)]
    unsafe {
        libc::write(fd, one.as_ptr().cast(), 8);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::Mailbox;

    /// A non-blocking pipe: (read end, write end).
    fn pipe() -> (i32, i32) {
        let mut fds = [0; 2];
        // SAFETY: fills two descriptors we then own.
        assert_eq!(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) },
            0
        );
        (fds[0], fds[1])
    }

    /// Bytes waiting in the pipe, read out.
    fn drain(fd: i32) -> usize {
        let mut buffer = [0u8; 256];
        // SAFETY: reads into a live buffer of its length.
        let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
        usize::try_from(read).unwrap_or(0)
    }

    fn close(fds: (i32, i32)) {
        // SAFETY: closing descriptors we own, once.
        unsafe {
            libc::close(fds.0);
            libc::close(fds.1);
        }
    }

    #[test]
    fn wakes_once_until_taken() {
        let fds = pipe();
        let mailbox = Mailbox::new(fds.1);
        mailbox.post(vec![1]).unwrap();
        mailbox.post(vec![2, 3]).unwrap();
        assert_eq!(drain(fds.0), 8, "one wake-up for both posts");
        assert_eq!(mailbox.take(false), vec![1, 2, 3]);
        mailbox.post(vec![4]).unwrap();
        assert_eq!(drain(fds.0), 8, "taken: the next post wakes again");
        assert_eq!(mailbox.take(false), vec![4]);
        close(fds);
    }

    #[test]
    fn a_polling_owner_is_not_woken() {
        let fds = pipe();
        let mailbox = Mailbox::new(fds.1);
        assert!(mailbox.take(true).is_empty());
        mailbox.post(vec!["a"]).unwrap();
        assert_eq!(drain(fds.0), 0);
        assert_eq!(mailbox.take(false), vec!["a"]);
        mailbox.post(vec!["b"]).unwrap();
        assert_eq!(drain(fds.0), 8, "no longer polling: woken");
        close(fds);
    }

    #[test]
    fn a_watched_owner_is_not_woken_until_it_takes_without_polling() {
        let fds = pipe();
        let mailbox = Mailbox::new(fds.1);
        assert!(!mailbox.watched());
        mailbox.watch();
        assert!(mailbox.watched());
        mailbox.post(vec![1]).unwrap();
        assert_eq!(drain(fds.0), 0);
        assert_eq!(mailbox.take(false), vec![1]);
        assert!(!mailbox.watched());
        mailbox.post(vec![2]).unwrap();
        assert_eq!(drain(fds.0), 8);
        close(fds);
    }

    #[test]
    fn closing_returns_the_rest_and_refuses_posts() {
        let fds = pipe();
        let mailbox = Mailbox::new(fds.1);
        mailbox.post(vec![1]).unwrap();
        assert_eq!(mailbox.close(), vec![1]);
        assert_eq!(mailbox.post(vec![2]), Err(vec![2]));
        assert!(mailbox.take(false).is_empty());
        close(fds);
    }
}
