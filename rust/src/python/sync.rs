//! `sync_files`, `Committer` and `CommitChannel`: `crate::sync` detached from the
//! interpreter; the pure twin is `_pure/sync.py`.

use std::sync::Arc;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use crate::sync::commit;

/// Make each descriptor's written data durable; the errno of each (0: durable).
#[pyfunction]
#[allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts owned arguments"
)]
pub fn sync_files(py: Python<'_>, fds: Vec<i32>) -> Vec<i32> {
    py.detach(|| crate::sync::sync_files(&fds))
}

/// The group-commit thread: makes the descriptors handed to it durable, many at a time.
#[pyclass(frozen, module = "simulacra_session._native")]
pub struct Committer(commit::Committer);

#[pymethods]
impl Committer {
    #[new]
    fn new() -> Self {
        Self(commit::Committer::new())
    }

    /// Hand `fd` over; its outcome arrives in `channel`. False once stopped.
    fn submit(&self, fd: i32, channel: &CommitChannel) -> PyResult<bool> {
        Ok(self.0.submit(fd, &channel.0)?)
    }

    /// Make durable what was handed over, then end the thread.
    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.0.stop());
    }
}

/// Where one event loop receives the outcomes of the descriptors it handed over.
#[pyclass(frozen, module = "simulacra_session._native")]
pub struct CommitChannel(Arc<commit::Channel>);

#[pymethods]
impl CommitChannel {
    #[new]
    fn new() -> PyResult<Self> {
        match commit::Channel::new() {
            Ok(channel) => Ok(Self(Arc::new(channel))),
            Err(error) if error.kind() == std::io::ErrorKind::Unsupported => Err(
                PyOSError::new_err("no descriptor an event loop can watch on this platform"),
            ),
            Err(error) => Err(error.into()),
        }
    }

    /// The descriptor that turns readable when outcomes arrive.
    fn fileno(&self) -> i32 {
        self.0.fileno()
    }

    /// The `(fd, errno)` outcomes delivered since the last drain.
    fn drain(&self) -> Vec<(i32, i32)> {
        self.0.drain()
    }

    /// Nobody will drain any more: undrained descriptors are closed, now or when done.
    fn close(&self) {
        self.0.close();
    }
}
