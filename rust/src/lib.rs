//! Hot path of simulacra-session: JSON with serde_json, atomic writes, the hard-link fork
//! index and label derivation. Core modules are plain Rust (tested by `cargo test`); the
//! Python bindings live in `py`, `ser` and `de`.

pub mod bigint;
mod de;
pub mod errors;
pub mod escape;
pub mod floatfmt;
pub mod fsio;
pub mod index;
mod py;
mod ser;
pub mod slug;

use pyo3::prelude::*;

/// The compiled twin of `simulacra_session._fallback`.
#[pymodule(gil_used = false)]
mod _native {
    #[pymodule_export]
    use crate::py::{atomic_write, derive_slug, dumps, link_fork, loads, loads_lines};
}
