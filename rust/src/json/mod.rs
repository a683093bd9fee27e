//! The JSON format the hot path writes, without Python: how strings, floats and big
//! integers are written, where a fault is, how a journal splits into lines and how far its
//! records' checksums verify.
//!
//! `python::ser` and `python::de` convert Python objects with these; `cargo test` checks
//! them against the golden fixtures in `tests/fixtures/` that pytest checks both backends
//! against.

pub mod bigint;
pub mod escape;
pub mod fault;
pub mod floatfmt;
pub mod lines;
pub mod records;

/// How deep containers may nest, in `dumps`, `loads` and `copy_json` alike.
pub const MAX_DEPTH: usize = 128;

#[cfg(test)]
mod golden;
