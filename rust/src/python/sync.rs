//! `sync_files`: `crate::sync` detached from the interpreter; the pure twin is
//! `_pure/sync.py`.

use pyo3::prelude::*;

/// Make each descriptor's written data durable; the errno of each (0: durable).
#[pyfunction]
#[allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts owned arguments"
)]
pub fn sync_files(py: Python<'_>, fds: Vec<i32>) -> Vec<i32> {
    py.detach(|| crate::sync::sync_files(&fds))
}
