//! `dumps`, `loads`, `loads_lines` and `copy_json`: arguments taken apart, the converters
//! of `ser`, `de` and `copy` run, errors raised. `record_checksum`, `commit_checksum` and
//! `verify_records`: a journal's checksums, checked by `json::records`. The behaviour is documented on
//! `simulacra_session._native` (`.pyi`); the pure twin is `_pure/json.py`.

use std::cell::RefCell;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString};

use super::errors::serialization_error;
use super::{copy, de, ser};
use crate::json::records;

thread_local! {
    /// The output buffer of `dumps`, kept between calls so large documents do not regrow it.
    static DUMPS_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Journals above this many bytes are checked with the interpreter released.
const CHECK_DETACHED: usize = 64 * 1024;

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
            Err(fault) => Err(serialization_error(fault.message())),
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
pub fn record_checksum(line: &[u8]) -> Option<u32> {
    records::checksum(line)
}

#[pyfunction]
pub fn commit_checksum(line: &[u8], batch: &[u8], seed: u32) -> Option<u32> {
    records::commit_checksum(line, batch, seed)
}

#[pyfunction]
pub fn verify_records(py: Python<'_>, data: &[u8], first: usize, seed: u32) -> (usize, usize) {
    if data.len() > CHECK_DETACHED {
        py.detach(|| records::verified(data, first, seed))
    } else {
        records::verified(data, first, seed)
    }
}
