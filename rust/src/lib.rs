//! Hot path of simulacra-session: JSON with serde_json, copies of JSON values, atomic
//! writes, the hard-link fork index, file stamps, label derivation and making files durable.
//! Core modules are plain Rust (tested by `cargo test`); the Python bindings live in `py`,
//! `ser`, `de` and `copy`.

pub mod bigint;
mod copy;
mod de;
pub mod errors;
pub mod escape;
pub mod floatfmt;
pub mod fsio;
pub mod index;
mod py;
mod ser;
pub mod slug;
#[cfg(unix)]
pub mod stamps;
pub mod sync;
mod text;

use pyo3::prelude::*;

/// The compiled twin of `simulacra_session._fallback`.
#[pymodule(gil_used = false)]
mod _native {
    #[pymodule_export]
    use crate::py::{
        atomic_write, copy_json, derive_slug, dumps, link_fork, loads, loads_lines, stamps,
        sync_files,
    };
}
