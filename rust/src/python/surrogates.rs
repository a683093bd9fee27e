//! `loads` of the documents serde_json refuses for a lone surrogate escape in a string
//! (`"\ud83d"`: JavaScript's `JSON.stringify` writes one for a string cut inside an emoji).
//! The containers are walked here; each string is read by serde_json as bytes, where it
//! lets a surrogate stand alone (WTF-8), and becomes a `str` holding it; every other value
//! is read by serde_json as `de` reads it. The values and limits are those of `de`.

use std::cell::RefCell;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use serde::de::{self, Deserializer as _, Visitor};

use super::de::{scalar, KeyCache};
use crate::json::MAX_DEPTH;

/// Whether `data` may hold a surrogate escape (`\uD800` to `\uDFFF`, any case).
pub fn may_hold(data: &[u8]) -> bool {
    memchr::memmem::find_iter(data, b"\\u").any(|at| {
        matches!(data.get(at + 2), Some(b'd' | b'D'))
            && matches!(
                data.get(at + 3),
                Some(b'8' | b'9' | b'a'..=b'f' | b'A'..=b'F')
            )
    })
}

/// One JSON document whose outermost value nests `depth` deep, as `de::parse` reads it,
/// lone surrogate escapes included; the error message otherwise.
pub fn parse<'py>(
    py: Python<'py>,
    data: &[u8],
    depth: usize,
    cache: &RefCell<KeyCache<'py>>,
) -> Result<Bound<'py, PyAny>, String> {
    let mut walk = Walk {
        py,
        data,
        at: 0,
        cache,
    };
    let value = walk.value(depth)?;
    walk.skip_whitespace();
    if walk.at < data.len() {
        return Err(walk.error("trailing characters"));
    }
    Ok(value)
}

struct Walk<'a, 'c, 'py> {
    py: Python<'py>,
    data: &'a [u8],
    at: usize,
    cache: &'c RefCell<KeyCache<'py>>,
}

impl<'py> Walk<'_, '_, 'py> {
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.data.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Skip whitespace, then `byte` if it comes next; whether it did.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let found = self.data.get(self.at) == Some(&byte);
        self.at += usize::from(found);
        found
    }

    fn value(&mut self, depth: usize) -> Result<Bound<'py, PyAny>, String> {
        self.skip_whitespace();
        let open = self.data.get(self.at).copied();
        if matches!(open, Some(b'[' | b'{')) && depth > MAX_DEPTH {
            return Err(self.error(&format!("nesting deeper than {MAX_DEPTH}")));
        }
        match open {
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(self.error("expected `,` or `]`"));
                        }
                    }
                }
                Ok(PyList::new(self.py, items)
                    .map_err(|error| error.to_string())?
                    .into_any())
            }
            Some(b'{') => {
                self.at += 1;
                let dict = PyDict::new(self.py);
                if !self.eat(b'}') {
                    loop {
                        self.skip_whitespace();
                        if self.data.get(self.at) != Some(&b'"') {
                            return Err(self.error("expected a string key"));
                        }
                        let key = self.string()?;
                        if !self.eat(b':') {
                            return Err(self.error("expected `:`"));
                        }
                        let value = self.value(depth + 1)?;
                        dict.set_item(key, value)
                            .map_err(|error| error.to_string())?;
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(self.error("expected `,` or `}`"));
                        }
                    }
                }
                Ok(dict.into_any())
            }
            Some(b'"') => Ok(self.string()?.into_any()),
            _ => {
                let start = self.at;
                self.at += self.data[start..]
                    .iter()
                    .position(|byte| {
                        matches!(byte, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                    })
                    .unwrap_or(self.data.len() - start);
                scalar(self.py, &self.data[start..self.at], depth, self.cache)
                    .map_err(|error| format!("{error} (from byte {start})"))
            }
        }
    }

    /// The string starting at `self.at` (a `"`), lone surrogates and all.
    fn string(&mut self) -> Result<Bound<'py, PyString>, String> {
        let start = self.at;
        let mut end = start + 1; // just past the closing quote, once found
        loop {
            match self.data.get(end) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => break end += 1,
                Some(b'\\') => end += 2,
                Some(byte) if *byte < 0x20 => {
                    // serde_json reading bytes lets raw control characters through
                    self.at = end;
                    return Err(self.error("control character while parsing a string"));
                }
                Some(_) => end += 1,
            }
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&self.data[start..end]);
        let text = deserializer
            .deserialize_bytes(Wtf8 { py: self.py })
            .map_err(|error| self.error(&error.to_string()))?;
        self.at = end;
        Ok(text)
    }
}

/// A string's bytes (WTF-8) to a `str`, its surrogates kept.
struct Wtf8<'py> {
    py: Python<'py>,
}

impl<'py> Visitor<'_> for Wtf8<'py> {
    type Value = Bound<'py, PyString>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
        let size = ffi::Py_ssize_t::try_from(bytes.len()).map_err(E::custom)?;
        // SAFETY: `size` bytes, alive for the call, which copies them; a C string literal.
        let text = unsafe {
            ffi::PyUnicode_DecodeUTF8(bytes.as_ptr().cast(), size, c"surrogatepass".as_ptr())
        };
        // SAFETY: a new reference, or null with an exception set.
        unsafe { Bound::from_owned_ptr_or_err(self.py, text) }
            .map(|text| unsafe { text.cast_into_unchecked() })
            .map_err(|error| E::custom(error.to_string()))
    }
}
