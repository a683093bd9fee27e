//! What the pure-Rust core can fail with; `python::errors` turns it into Python exceptions.

use std::io;
use std::path::PathBuf;

/// A failure of the core, naming the value or path at fault.
#[derive(Debug)]
pub enum CoreError {
    /// A session id outside `^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`.
    InvalidId(String),
    /// A file suffix that is not a dot and lowercase letters.
    InvalidSuffix(String),
    /// A path or name holding a NUL byte, which no system call takes.
    Nul,
    /// Permission bits beyond `0o777`.
    InvalidMode(u32),
    /// A symlink where the store keeps its own file or directory: refused, left as it is.
    Symlink(PathBuf),
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
