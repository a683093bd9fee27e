//! The single conversion of core errors into Python exceptions.
//!
//! Errors the library defines are raised as the classes of `simulacra_session.errors`, so
//! both twins raise identical types. This module imports no Python module of the package:
//! `simulacra_session._backend` hands it those classes when it imports it (`_bind_errors`,
//! which any import of this module goes through, the package being imported first).
//! `OSError` is built as `OSError(errno, strerror, filename)`, which Python maps to
//! `FileNotFoundError` and friends. On Windows the standard library reports Win32 error
//! codes, so there it is `OSError(0, strerror, filename, winerror)`: Python then derives
//! `errno` (and the subclass) from `winerror`, exactly as for its own `os` functions.

use std::ffi::OsString;
use std::io;

use pyo3::exceptions::{PyException, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use pyo3::PyErrArguments;

use crate::errors::CoreError;

/// The classes of `simulacra_session.errors` raised here.
struct Classes {
    serialization: Py<PyType>,
    invalid_session_id: Py<PyType>,
    unsafe_path: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// Take the exception classes to raise (`SerializationError`, `InvalidSessionIdError`,
/// `UnsafePathError`); the first binding holds.
#[pyfunction]
#[pyo3(name = "_bind_errors")]
pub fn bind_errors(
    serialization: Bound<'_, PyType>,
    invalid_session_id: Bound<'_, PyType>,
    unsafe_path: Bound<'_, PyType>,
) -> PyResult<()> {
    for class in [&serialization, &invalid_session_id, &unsafe_path] {
        if !class.is_subclass_of::<PyException>()? {
            let name = class.name()?;
            return Err(PyTypeError::new_err(format!(
                "{name} is not an exception class"
            )));
        }
    }
    let py = serialization.py();
    let _ = CLASSES.set(
        py,
        Classes {
            serialization: serialization.unbind(),
            invalid_session_id: invalid_session_id.unbind(),
            unsafe_path: unsafe_path.unbind(),
        },
    );
    Ok(())
}

/// What a raise says when `_bind_errors` was never called (the package imports the
/// extension only through `_backend`, which calls it).
const UNBOUND: &str =
    "simulacra_session._native raised before simulacra_session._backend bound its error classes";

/// An exception of the class `pick` finds, raised with `args`.
fn raise<A: PyErrArguments + Send + Sync + 'static>(
    pick: fn(&Classes) -> &Py<PyType>,
    args: A,
) -> PyErr {
    Python::attach(|py| match CLASSES.get(py) {
        Some(classes) => PyErr::from_type(pick(classes).bind(py).clone(), args),
        None => PyRuntimeError::new_err(UNBOUND),
    })
}

/// `SerializationError(message)`.
pub fn serialization_error(message: String) -> PyErr {
    raise(|classes| &classes.serialization, (message,))
}

/// `InvalidSessionIdError(session_id)`.
pub fn invalid_session_id<T>(session_id: T) -> PyErr
where
    (T,): PyErrArguments + Send + Sync + 'static,
{
    raise(|classes| &classes.invalid_session_id, (session_id,))
}

/// `UnsafePathError(path)`.
fn unsafe_path(path: OsString) -> PyErr {
    raise(|classes| &classes.unsafe_path, (path,))
}

/// The system's message for an error, without Rust's " (os error N)" suffix.
fn strerror(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

impl From<CoreError> for PyErr {
    fn from(error: CoreError) -> PyErr {
        match error {
            CoreError::InvalidId(id) => invalid_session_id(id),
            CoreError::InvalidSuffix(suffix) => PyValueError::new_err(format!(
                "invalid file suffix {suffix:?}: expected a dot and lowercase letters"
            )),
            CoreError::Nul => PyValueError::new_err("embedded null byte"),
            CoreError::InvalidMode(mode) => PyValueError::new_err(format!(
                "invalid mode 0o{mode:o}: expected permission bits, 0o0 to 0o777"
            )),
            CoreError::Symlink(path) => unsafe_path(path.into_os_string()),
            CoreError::Io { source, path } => match source.raw_os_error() {
                #[cfg(not(windows))]
                Some(errno) => {
                    PyOSError::new_err((errno, strerror(&source), path.into_os_string()))
                }
                #[cfg(windows)]
                Some(winerror) => {
                    PyOSError::new_err((0, strerror(&source), path.into_os_string(), winerror))
                }
                None => PyOSError::new_err(format!("{}: {}", strerror(&source), path.display())),
            },
        }
    }
}
