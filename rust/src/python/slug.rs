//! `derive_slug`: the label of a session from its first user message (`crate::slug`); the
//! pure twin is `_pure/slug.py`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::errors::serialization_error;

#[pyfunction]
#[pyo3(signature = (text, limit = 50))]
pub fn derive_slug(text: &Bound<'_, PyString>, limit: i64) -> PyResult<Option<String>> {
    if limit < 1 {
        return Err(PyValueError::new_err(format!(
            "limit must be at least 1, got {limit}"
        )));
    }
    let text = text.to_str().map_err(|_| {
        serialization_error("cannot derive a slug from str with a lone surrogate".into())
    })?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(crate::slug::derive_slug(text, limit))
}
