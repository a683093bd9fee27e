//! The binding: every use of pyo3 is here (and in `lib.rs`'s module declaration).
//!
//! One module of `#[pyfunction]`s per job, named as the core modules and as the pure
//! twin's modules (`_pure/json.py`, `_pure/fs.py`, `_pure/sync.py`, `_pure/slug.py`), and
//! the converters between Python objects and JSON that `json` uses: `ser` (`dumps`), `de`
//! (`loads`, with `surrogates` for documents holding lone surrogate escapes), `copy`
//! (`copy_json`) and `text` (strs from UTF-8). `errors` turns the core's errors into Python
//! exceptions.

mod copy;
mod de;
pub mod errors;
pub mod fs;
pub mod json;
mod ser;
pub mod slug;
mod surrogates;
pub mod sync;
mod text;
