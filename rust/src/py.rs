//! `#[pyfunction]` wrappers: extract arguments, run the core (detached for file I/O),
//! convert errors. The behaviour is documented on `simulacra_session._native` (`.pyi`).

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyByteArray, PyBytes, PyList, PyString};

use crate::errors::{CoreError, InvalidSessionIdError, SerializationError};
use crate::{cached, copy, de, fsio, index, mailbox, ser, slug, syncer};

thread_local! {
    /// The output buffer of `dumps`, kept between calls so large documents do not regrow it.
    static DUMPS_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Buffers above this are released after use rather than kept per thread.
const KEEP_BUFFER: usize = 8 << 20;

#[pyfunction]
pub fn dumps<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    DUMPS_BUFFER.with(|cell| {
        // A re-entrant call (a str subclass calling dumps, say) gets a fresh buffer.
        let mut fresh = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let out = borrowed.as_deref_mut().unwrap_or(&mut fresh);
        let result = match ser::dumps_into(out, obj) {
            Ok(()) => Ok(PyBytes::new(py, out)),
            Err(fault) => Err(SerializationError::new_err(fault.message())),
        };
        if out.capacity() > KEEP_BUFFER {
            *out = Vec::new();
        }
        result
    })
}

/// Runs `parse` with the cyclic garbage collector paused: parsing creates no cycles, and
/// a collection triggered by its thousands of new containers would only walk them in vain.
fn without_gc<T>(parse: impl FnOnce() -> T) -> T {
    // SAFETY: we hold the interpreter; these toggle and restore a global flag.
    let was_enabled = unsafe { pyo3::ffi::PyGC_Disable() };
    let result = parse();
    if was_enabled != 0 {
        unsafe { pyo3::ffi::PyGC_Enable() };
    }
    result
}

#[pyfunction]
pub fn loads<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    without_gc(|| loads_any(py, data))
}

fn loads_any<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return de::loads(py, bytes.as_bytes());
    }
    if let Ok(array) = data.cast::<PyByteArray>() {
        return de::loads(py, &array.to_vec());
    }
    if let Ok(text) = data.cast::<PyString>() {
        let text = text
            .to_str()
            .map_err(|_| PyValueError::new_err("lone surrogate in input text"))?;
        return de::loads(py, text.as_bytes());
    }
    let name = data.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "loads() takes bytes, bytearray or str, not {name}"
    )))
}

#[pyfunction]
#[pyo3(signature = (data, start = 0, end = None, skip = None))]
pub fn loads_lines<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    start: isize,
    end: Option<isize>,
    skip: Option<&[u8]>,
) -> PyResult<(Bound<'py, PyList>, usize)> {
    let skip = skip.unwrap_or_default();
    if let Ok(bytes) = data.cast::<PyBytes>() {
        let region = slice(bytes.as_bytes(), start, end);
        return without_gc(|| de::loads_lines(py, region, skip));
    }
    if let Ok(array) = data.cast::<PyByteArray>() {
        let owned = array.to_vec();
        return without_gc(|| de::loads_lines(py, slice(&owned, start, end), skip));
    }
    let name = data.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "loads_lines() takes bytes or bytearray, not {name}"
    )))
}

/// `data[start:end]`, with Python's rules for negative and out-of-range indices.
fn slice(data: &[u8], start: isize, end: Option<isize>) -> &[u8] {
    let index = |at: isize| {
        let len = data.len();
        match usize::try_from(at) {
            Ok(at) => at.min(len),
            Err(_) => len.saturating_sub(at.unsigned_abs()),
        }
    };
    let (start, end) = (index(start), end.map_or(data.len(), index));
    &data[start..end.max(start)]
}

#[pyfunction]
pub fn copy_json<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: a live object, with the collector paused: no Python code runs meanwhile.
    let copied = without_gc(|| unsafe { copy::copy_exact(obj.as_ptr(), 1) });
    if !copied.is_null() {
        // SAFETY: `copy_exact` returns a new reference.
        return Ok(unsafe { Bound::from_owned_ptr(py, copied) });
    }
    let data = dumps(py, obj)?;
    loads(py, data.as_any())
}

#[pyfunction]
#[pyo3(signature = (text, limit = 50))]
pub fn derive_slug(text: &Bound<'_, PyString>, limit: i64) -> PyResult<Option<String>> {
    if limit < 1 {
        return Err(PyValueError::new_err(format!(
            "limit must be at least 1, got {limit}"
        )));
    }
    let text = text.to_str().map_err(|_| {
        SerializationError::new_err("cannot derive a slug from str with a lone surrogate")
    })?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(slug::derive_slug(text, limit))
}

#[pyfunction]
#[pyo3(signature = (path, data, fsync = true))]
#[allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts owned arguments"
)]
pub fn atomic_write(
    py: Python<'_>,
    path: PathBuf,
    data: &Bound<'_, PyBytes>,
    fsync: bool,
) -> PyResult<()> {
    let bytes = data.as_bytes();
    py.detach(|| fsio::atomic_write(&path, bytes, fsync))?;
    Ok(())
}

fn session_id(value: &Bound<'_, PyAny>) -> PyResult<String> {
    value
        .extract::<String>()
        .map_err(|_| InvalidSessionIdError::new_err((value.clone().unbind(),)))
}

#[pyfunction]
#[pyo3(signature = (root, parent_id, child_id, fsync = true, suffix = ".json"))]
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
) -> PyResult<bool> {
    let parent_id = session_id(parent_id)?;
    let child_id = session_id(child_id)?;
    Ok(py.detach(|| index::link_fork(&root, &parent_id, &child_id, fsync, suffix))?)
}

#[pyfunction]
#[allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts owned arguments"
)]
pub fn read_cached(
    py: Python<'_>,
    path: PathBuf,
) -> PyResult<Option<(Bound<'_, PyBytes>, u64, i64)>> {
    let file = match cached::open(&path) {
        cached::Opened::File(file) => file,
        cached::Opened::Absent => {
            let error = std::io::Error::from_raw_os_error(libc::ENOENT);
            return Err(CoreError::io(error, path).into());
        }
        cached::Opened::NotInMemory => return Ok(None),
    };
    let data =
        uninit_bytes(py, file.size).map(|(data, buffer)| (cached::read(file.fd, buffer), data));
    cached::close(file.fd);
    match data? {
        (true, data) => Ok(Some((data, file.inode, file.mtime_ns))),
        (false, _) => Ok(None),
    }
}

/// `(st_ino, st_size, st_mtime_ns)` of each of `names` in `directory`, `None` where absent.
#[pyfunction]
pub fn stamps(
    py: Python<'_>,
    directory: PathBuf,
    names: Vec<String>,
) -> PyResult<Vec<Option<(u64, u64, i64)>>> {
    #[cfg(unix)]
    {
        py.detach(move || crate::stamps::stamps(&directory, &names))
            .map_err(|failure| match failure {
                crate::stamps::Failure::Os(path, error) => CoreError::io(error, path).into(),
                crate::stamps::Failure::Nul => PyValueError::new_err("embedded null byte"),
            })
    }
    #[cfg(not(unix))]
    {
        py.import("simulacra_session._fallback_stamps")?
            .getattr("stamps")?
            .call1((directory, names))?
            .extract()
    }
}

/// Make each descriptor's written data durable; the errno of each (0: durable).
#[pyfunction]
#[allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts owned arguments"
)]
pub fn sync_files(py: Python<'_>, fds: Vec<i32>) -> Vec<i32> {
    py.detach(|| crate::sync::sync_files(&fds))
}

/// A new bytes object of `size` bytes, and its contents to fill (uninitialised: spared
/// the zeroing `PyBytes::new_with` does, as the read overwrites every byte or the object
/// is dropped unseen).
fn uninit_bytes(py: Python<'_>, size: usize) -> PyResult<(Bound<'_, PyBytes>, &mut [u8])> {
    let length = pyo3::ffi::Py_ssize_t::try_from(size)?;
    // SAFETY: a NULL source asks CPython for an uninitialised object of `length` bytes;
    // the object is new, so nothing else sees its buffer while we fill it.
    unsafe {
        let object = Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), length),
        )?
        .cast_into_unchecked::<PyBytes>();
        let start = pyo3::ffi::PyBytes_AsString(object.as_ptr()).cast::<u8>();
        Ok((object, std::slice::from_raw_parts_mut(start, size)))
    }
}

/// A finished job as the event loop receives it: its token, errno and whether it was written.
type Landed = (Py<PyAny>, i32, bool);
/// A job's token and the mailbox its outcome goes to (`None`: through `deliver`).
type Token = (Py<PyAny>, Option<Arc<mailbox::Mailbox<Landed>>>);

/// Where the sync thread leaves outcomes for one event loop; documented on
/// `simulacra_session._native.Mailbox`.
#[pyclass(frozen, module = "simulacra_session._native", name = "Mailbox")]
pub struct PyMailbox {
    core: Arc<mailbox::Mailbox<Landed>>,
}

fn landed_list(py: Python<'_>, landed: Vec<Landed>) -> PyResult<Bound<'_, PyList>> {
    PyList::new(py, landed)
}

#[pymethods]
impl PyMailbox {
    #[new]
    fn new(wake_fd: i32) -> Self {
        PyMailbox {
            core: Arc::new(mailbox::Mailbox::new(wake_fd)),
        }
    }

    // The lock is only ever held briefly, never by a thread waiting for the interpreter:
    // taking it attached is cheaper than detaching around it.
    fn take(&self, py: Python<'_>, polling: bool) -> PyResult<Py<PyList>> {
        Ok(landed_list(py, self.core.take(polling))?.unbind())
    }

    fn close(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        Ok(landed_list(py, self.core.close())?.unbind())
    }
}

/// Writes journal appends and makes files durable on a background thread; documented on
/// `simulacra_session._native.FileSyncer`. The thread waits, writes, syncs, closes and
/// posts to mailboxes detached from the interpreter; it attaches only to call `deliver`,
/// for jobs without an open mailbox.
#[pyclass(frozen, module = "simulacra_session._native")]
pub struct FileSyncer {
    core: syncer::Syncer<Token>,
}

/// Logs an error `deliver` raised, as the pure twin does: `simulacra_session`'s logger.
fn log_delivery_error(py: Python<'_>, deliver: &Py<PyAny>, error: &PyErr) {
    let logged = py
        .import("logging")
        .and_then(|logging| logging.call_method1("getLogger", ("simulacra_session",)))
        .and_then(|logger| {
            let kwargs = [("exc_info", error.value(py))].into_py_dict(py)?;
            logger.call_method(
                "error",
                ("FileSyncer delivery %r raised", deliver),
                Some(&kwargs),
            )
        });
    if let Err(failure) = logged {
        failure.write_unraisable(py, None);
    }
}

/// Posts each outcome of a batch to its mailbox, one post per mailbox; returns those that
/// have none, or whose mailbox is closed, for `deliver`.
fn post_all(done: Vec<(Token, syncer::Outcome)>) -> Vec<Landed> {
    let mut direct = Vec::new();
    let mut posts: Vec<(Arc<mailbox::Mailbox<Landed>>, Vec<Landed>)> = Vec::new();
    for ((token, mailbox), outcome) in done {
        let landed = (token, outcome.errno, outcome.written);
        match mailbox {
            None => direct.push(landed),
            Some(mailbox) => match posts.iter_mut().find(|(to, _)| Arc::ptr_eq(to, &mailbox)) {
                Some((_, items)) => items.push(landed),
                None => posts.push((mailbox, vec![landed])),
            },
        }
    }
    for (mailbox, items) in posts {
        if let Err(refused) = mailbox.post(items) {
            direct.extend(refused);
        }
    }
    direct
}

fn no_thread(_: std::io::Error) -> PyErr {
    PyRuntimeError::new_err("can't start new thread")
}

#[pymethods]
impl FileSyncer {
    #[new]
    fn new(deliver: Py<PyAny>) -> Self {
        let core = syncer::Syncer::new(
            move |done: Vec<(Token, syncer::Outcome)>| {
                let direct = post_all(done);
                if direct.is_empty() {
                    return;
                }
                Python::attach(|py| {
                    let delivered =
                        landed_list(py, direct).and_then(|list| deliver.call1(py, (list,)));
                    if let Err(error) = delivered {
                        log_delivery_error(py, &deliver, &error);
                    }
                });
            },
            |(_, mailbox): &Token| mailbox.as_ref().is_some_and(|to| to.watched()),
        );
        FileSyncer { core }
    }

    #[pyo3(signature = (fd, token, mailbox = None))]
    fn submit(&self, fd: i32, token: Py<PyAny>, mailbox: Option<&PyMailbox>) -> PyResult<()> {
        let token = (token, mailbox.map(|to| Arc::clone(&to.core)));
        self.core
            .submit(syncer::Job::Sync(fd), token)
            .map_err(no_thread)
    }

    #[pyo3(signature = (path, inode, end, last, payload, token, mailbox = None))]
    #[allow(
        clippy::needless_pass_by_value,
        reason = "pyo3 extracts owned arguments"
    )]
    #[allow(
        clippy::too_many_arguments,
        reason = "the Python signature, the pure twin's"
    )]
    fn append(
        &self,
        path: PathBuf,
        inode: u64,
        end: u64,
        last: &Bound<'_, PyBytes>,
        payload: &Bound<'_, PyBytes>,
        token: Py<PyAny>,
        mailbox: Option<&PyMailbox>,
    ) -> PyResult<()> {
        let job = syncer::Append {
            path,
            inode,
            end,
            last: last.as_bytes().to_vec(),
            payload: payload.as_bytes().to_vec(),
        };
        let token = (token, mailbox.map(|to| Arc::clone(&to.core)));
        self.core
            .submit(syncer::Job::Append(job), token)
            .map_err(no_thread)
    }

    #[allow(
        clippy::needless_pass_by_value,
        reason = "pyo3 extracts owned arguments"
    )]
    fn append_now(
        &self,
        py: Python<'_>,
        path: PathBuf,
        inode: u64,
        end: u64,
        last: &Bound<'_, PyBytes>,
        payload: &Bound<'_, PyBytes>,
    ) -> (i32, bool) {
        let (last, payload) = (last.as_bytes(), payload.as_bytes());
        let outcome = py.detach(|| self.core.append_now(&path, inode, end, last, payload));
        (outcome.errno, outcome.written)
    }

    fn expedite(&self, mailbox: &PyMailbox) {
        mailbox.core.watch();
        self.core.hurry();
    }

    #[allow(
        clippy::needless_pass_by_value,
        reason = "pyo3 extracts owned arguments"
    )]
    fn release(&self, py: Python<'_>, path: PathBuf) {
        py.detach(|| self.core.release(&path));
    }

    fn abandon_leases(&self) {
        self.core.abandon_leases();
    }

    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.core.stop());
    }
}
