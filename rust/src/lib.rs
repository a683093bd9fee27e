//! Hot path of simulacra-session: JSON with serde_json, copies of JSON values, atomic
//! writes, reads served from memory alone, the hard-link fork index, label derivation, the
//! group-commit sync thread, the journal leases it keeps, the idle-priority spinner that keeps
//! its CPU awake through an awaited sync, and the mailboxes it hands results to event loops
//! through.
//! Core modules are plain Rust (tested by `cargo test`); the Python bindings live in `py`,
//! `ser`, `de` and `copy`.

pub mod awake;
pub mod bigint;
pub mod cached;
mod copy;
mod de;
pub mod errors;
pub mod escape;
pub mod floatfmt;
pub mod fsio;
pub mod index;
pub mod lease;
pub mod mailbox;
mod py;
mod ser;
pub mod slug;
#[cfg(unix)]
pub mod stamps;
pub mod sync;
pub mod syncer;
mod text;

use pyo3::prelude::*;

/// The compiled twin of `simulacra_session._fallback`.
#[pymodule(gil_used = false)]
mod _native {
    #[pymodule_export]
    use crate::py::{
        atomic_write, copy_json, derive_slug, dumps, link_fork, loads, loads_lines, read_cached,
        stamps, sync_files, FileSyncer, PyMailbox,
    };
}
