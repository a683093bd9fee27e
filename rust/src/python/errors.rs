//! The single conversion of core errors into Python exceptions.
//!
//! Errors the library defines are raised as the classes of `simulacra_session.errors`, so
//! both twins raise identical types. `OSError` is built as `OSError(errno, strerror,
//! filename)`, which Python maps to `FileNotFoundError` and friends. On Windows the
//! standard library reports Win32 error codes, so there it is `OSError(0, strerror,
//! filename, winerror)`: Python then derives `errno` (and the subclass) from `winerror`,
//! exactly as for its own `os` functions.

use std::io;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::PyErr;

use crate::errors::CoreError;

pyo3::import_exception!(simulacra_session.errors, SerializationError);
pyo3::import_exception!(simulacra_session.errors, InvalidSessionIdError);
pyo3::import_exception!(simulacra_session.errors, UnsafePathError);

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
            CoreError::InvalidId(id) => InvalidSessionIdError::new_err((id,)),
            CoreError::InvalidSuffix(suffix) => PyValueError::new_err(format!(
                "invalid file suffix {suffix:?}: expected a dot and lowercase letters"
            )),
            CoreError::Nul => PyValueError::new_err("embedded null byte"),
            CoreError::InvalidMode(mode) => PyValueError::new_err(format!(
                "invalid mode 0o{mode:o}: expected permission bits, 0o0 to 0o777"
            )),
            CoreError::Symlink(path) => UnsafePathError::new_err((path.into_os_string(),)),
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
