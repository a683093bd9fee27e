//! `atomic_write`, `link_fork` and `stamps`: the file-system cores of `crate::fs`, run
//! detached from the interpreter; the pure twin is `_pure/fs.py`.

use std::ffi::OsString;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::invalid_session_id;
use crate::fs::{atomic, index};

#[pyfunction]
#[pyo3(signature = (path, data, fsync = true, mode = 0o600))]
#[allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts owned arguments"
)]
pub fn atomic_write(
    py: Python<'_>,
    path: PathBuf,
    data: &Bound<'_, PyBytes>,
    fsync: bool,
    mode: u32,
) -> PyResult<()> {
    let bytes = data.as_bytes();
    py.detach(|| atomic::atomic_write(&path, bytes, fsync, mode))?;
    Ok(())
}

fn session_id(value: &Bound<'_, PyAny>) -> PyResult<String> {
    value
        .extract::<String>()
        .map_err(|_| invalid_session_id(value.clone().unbind()))
}

#[pyfunction]
#[pyo3(signature = (root, parent_id, child_id, fsync = true, suffix = ".json", dir_mode = 0o700))]
#[allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts owned arguments"
)]
pub fn link_fork(
    py: Python<'_>,
    root: PathBuf,
    parent_id: &Bound<'_, PyAny>,
    child_id: &Bound<'_, PyAny>,
    fsync: bool,
    suffix: &str,
    dir_mode: u32,
) -> PyResult<bool> {
    let parent_id = session_id(parent_id)?;
    let child_id = session_id(child_id)?;
    Ok(py.detach(|| index::link_fork(&root, &parent_id, &child_id, fsync, suffix, dir_mode))?)
}

/// `(st_ino, st_size, st_mtime_ns)` of each of `names` in `directory`, `None` where absent.
/// Names are OS strings, as `directory` is: a name `os.listdir` gives (undecodable bytes as
/// lone surrogates) is stat'ed as the pure twin stats it.
#[pyfunction]
pub fn stamps(
    py: Python<'_>,
    directory: PathBuf,
    names: Vec<OsString>,
) -> PyResult<Vec<Option<(u64, u64, i64)>>> {
    Ok(py.detach(move || crate::fs::stamps::stamps(&directory, &names))?)
}
