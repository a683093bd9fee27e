//! Hot path of simulacra-session, by job:
//! - `json`: the JSON format written and read, without Python (strings, floats, big
//!   integers, fault paths, journal lines);
//! - `fs`: atomic file replacement, the hard-link fork index, file stamps;
//! - `sync`: making written files durable, many at a time;
//! - `slug`: session labels;
//! - `errors`: what those can fail with;
//! - `python`: the binding, the only module that uses pyo3.
//!
//! The cores are plain Rust, tested by `cargo test`; none imports `python`, and `python`
//! imports no Python module of the package (`simulacra_session._backend` hands it the
//! exception classes it raises). Only the stable ABI (abi3) is used.

#[cfg(not(any(unix, windows)))]
compile_error!("simulacra-session's native module supports Unix and Windows");

pub mod errors;
pub mod fs;
pub mod json;
mod python;
pub mod slug;
pub mod sync;

use pyo3::prelude::*;

/// The compiled twin of `simulacra_session._pure`.
#[pymodule(gil_used = false)]
mod _native {
    #[pymodule_export]
    use crate::python::errors::bind_errors;
    #[pymodule_export]
    use crate::python::fs::{atomic_write, link_fork, stamps};
    #[pymodule_export]
    use crate::python::json::{
        commit_checksum, copy_json, dumps, loads, loads_lines, record_checksum, verify_records,
    };
    #[pymodule_export]
    use crate::python::slug::derive_slug;
    #[pymodule_export]
    use crate::python::sync::{sync_files, CommitChannel, Committer};
}
