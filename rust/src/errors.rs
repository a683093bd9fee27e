//! One error type for the core, and its single conversion into Python exceptions.
//!
//! Errors the library defines are raised as the classes of `simulacra_session.errors`,
//! so both twins raise identical types; `OSError` is built as `OSError(errno, strerror,
//! filename)`, which Python maps to `FileNotFoundError` and friends.

use std::io;
use std::path::PathBuf;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::PyErr;

pyo3::import_exception!(simulacra_session.errors, SerializationError);
pyo3::import_exception!(simulacra_session.errors, InvalidSessionIdError);

/// What the pure-Rust core can fail with.
#[derive(Debug)]
pub enum CoreError {
    /// A session id outside `^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`.
    InvalidId(String),
    /// A file suffix that is not a dot and lowercase letters.
    InvalidSuffix(String),
    /// An I/O failure on `path`.
    Io { source: io::Error, path: PathBuf },
}

impl CoreError {
    pub fn io(source: io::Error, path: impl Into<PathBuf>) -> Self {
        CoreError::Io {
            source,
            path: path.into(),
        }
    }
}

/// The C library's message for an errno, without Rust's " (os error N)" suffix.
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
            CoreError::InvalidId(id) => InvalidSessionIdError::new_err((id,)),
            CoreError::InvalidSuffix(suffix) => PyValueError::new_err(format!(
                "invalid file suffix {suffix:?}: expected a dot and lowercase letters"
            )),
            CoreError::Io { source, path } => match source.raw_os_error() {
                Some(errno) => {
                    PyOSError::new_err((errno, strerror(&source), path.into_os_string()))
                }
                None => PyOSError::new_err(format!("{}: {}", strerror(&source), path.display())),
            },
        }
    }
}
