//! `loads`: strict JSON (parsed by serde_json) straight into Python objects.

use std::cell::RefCell;
use std::fmt;

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{surrogates, text};
use crate::json::lines::Lines;
use crate::json::MAX_DEPTH;

/// With `arbitrary_precision`, serde_json hands numbers over as a one-entry map under this key.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";
/// Longest integer literal converted in one `int()` call (CPython stops at 4300 digits).
const INT_CHUNK: usize = 4000;
const CACHE_SLOTS: usize = 256;

/// Parse one JSON document; `ValueError` (with the position) for anything not strict JSON.
pub fn loads<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let cache = RefCell::new(KeyCache::new());
    parse(py, data, 1, &cache).map_err(PyValueError::new_err)
}

/// Parse each line of `data` (lines end with `\n`, the last one may not) as one JSON
/// document, leaving out the lines that start with `skip` (unless it is empty); the values
/// are the items of one list, for the nesting limit too. Returns the list and the bytes the
/// lines left out take, newlines included. `ValueError` naming the line.
pub fn loads_lines<'py>(
    py: Python<'py>,
    data: &[u8],
    skip: &[u8],
) -> PyResult<(Bound<'py, PyList>, usize)> {
    let cache = RefCell::new(KeyCache::new());
    let mut lines = Lines::new(data, skip);
    let mut values = Vec::new();
    for (number, line) in lines.by_ref() {
        let value = parse(py, line, 2, &cache);
        values
            .push(value.map_err(|error| PyValueError::new_err(format!("line {number}: {error}")))?);
    }
    let skipped = lines.skipped();
    Ok((PyList::new(py, values)?, skipped))
}

/// One JSON document whose outermost value nests `depth` deep; the error message otherwise.
fn parse<'py>(
    py: Python<'py>,
    data: &[u8],
    depth: usize,
    cache: &RefCell<KeyCache<'py>>,
) -> Result<Bound<'py, PyAny>, String> {
    // Validate UTF-8 once, up front, with SIMD (serde_json then skips it per string).
    let text = simdutf8::basic::from_utf8(data).map_err(|_| {
        let at = std::str::from_utf8(data).map_or_else(|error| error.valid_up_to(), |_| 0);
        format!("invalid UTF-8 at byte {at}")
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    deserializer.disable_recursion_limit(); // our own limit below, checked before recursing
    let seed = Seed { py, depth, cache };
    let parsed = seed
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    match parsed {
        Ok(value) => Ok(value),
        // serde_json refuses a lone surrogate in a str: read such a document apart
        Err(_) if surrogates::may_hold(data) => surrogates::parse(py, data, depth, cache),
        Err(error) => Err(error.to_string()),
    }
}

/// `data`, one value that is neither a container nor a string: for `surrogates`, which
/// reads all else itself.
pub(super) fn scalar<'py>(
    py: Python<'py>,
    data: &[u8],
    depth: usize,
    cache: &RefCell<KeyCache<'py>>,
) -> Result<Bound<'py, PyAny>, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(data);
    Seed { py, depth, cache }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|error| error.to_string())
}

fn custom<E: de::Error>(error: &PyErr) -> E {
    E::custom(error.to_string())
}

/// Recently seen dict keys, so repeated keys share one Python string. Keys of up to 16
/// bytes (nearly all) are held packed in two words, found and compared without a call.
pub(super) struct KeyCache<'py> {
    short: Vec<Option<(Packed, Bound<'py, PyString>)>>,
    long: Vec<Option<(Box<str>, Bound<'py, PyString>)>>,
}

/// A key of at most 16 bytes, exactly: its length and the words covering all its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Packed(u64, u64, usize);

impl Packed {
    fn new(key: &[u8]) -> Option<Self> {
        let len = key.len();
        let word = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().expect("eight bytes"));
        let half = |at: usize| {
            u64::from(u32::from_le_bytes(
                key[at..at + 4].try_into().expect("four bytes"),
            ))
        };
        Some(match len {
            0 => Packed(0, 0, 0),
            1..=3 => Packed(
                u64::from(key[0]) | u64::from(key[len / 2]) << 8 | u64::from(key[len - 1]) << 16,
                0,
                len,
            ),
            4..=7 => Packed(half(0), half(len - 4), len),
            8..=16 => Packed(word(0), word(len - 8), len),
            _ => return None,
        })
    }

    fn slot(self) -> usize {
        let mixed =
            (self.0 ^ self.1.rotate_left(31) ^ self.2 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        usize::try_from(mixed >> 56).expect("a byte fits usize") % CACHE_SLOTS
    }
}

impl<'py> KeyCache<'py> {
    fn new() -> Self {
        KeyCache {
            short: (0..CACHE_SLOTS).map(|_| None).collect(),
            long: (0..CACHE_SLOTS).map(|_| None).collect(),
        }
    }

    fn get(&mut self, py: Python<'py>, key: &str) -> Bound<'py, PyString> {
        if let Some(packed) = Packed::new(key.as_bytes()) {
            let slot = &mut self.short[packed.slot()];
            if let Some((cached, string)) = slot {
                if *cached == packed {
                    return string.clone();
                }
            }
            let string = PyString::new(py, key);
            *slot = Some((packed, string.clone()));
            return string;
        }
        if key.len() > 64 {
            return PyString::new(py, key);
        }
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let slot =
            &mut self.long[usize::try_from(hash % CACHE_SLOTS as u64).expect("slot fits usize")];
        if let Some((cached, string)) = slot {
            if **cached == *key {
                return string.clone();
            }
        }
        let string = PyString::new(py, key);
        *slot = Some((key.into(), string.clone()));
        string
    }
}

#[derive(Clone, Copy)]
struct Seed<'a, 'py> {
    py: Python<'py>,
    depth: usize,
    cache: &'a RefCell<KeyCache<'py>>,
}

impl<'py> Seed<'_, 'py> {
    fn child(self) -> Self {
        Seed {
            depth: self.depth + 1,
            ..self
        }
    }

    fn check_depth<E: de::Error>(self) -> Result<(), E> {
        if self.depth > MAX_DEPTH {
            return Err(E::custom(format!("nesting deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn number<E: de::Error>(self, text: &str) -> Result<Bound<'py, PyAny>, E> {
        if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            let value: f64 = text.parse().map_err(E::custom)?;
            if !value.is_finite() {
                return Err(E::custom(format!("number out of range: {text}")));
            }
            return Ok(PyFloat::new(self.py, value).into_any());
        }
        if let Ok(small) = text.parse::<i64>() {
            return self.visit_i64(small);
        }
        big_int(self.py, text).map_err(|e| custom(&e))
    }
}

/// An integer literal beyond i64, built chunk by chunk past CPython's digit limit.
fn big_int<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let int_type = py.get_type::<PyInt>();
    if text.len() <= INT_CHUNK {
        return int_type.call1((text,));
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut value = int_type.call1(("0",))?;
    for chunk in digits.as_bytes().chunks(INT_CHUNK) {
        let chunk = std::str::from_utf8(chunk).expect("digits are ASCII");
        let scale = int_type.call1((format!("1{}", "0".repeat(chunk.len())),))?;
        value = value.mul(scale)?.add(int_type.call1((chunk,))?)?;
    }
    if negative {
        value = value.neg()?;
    }
    Ok(value)
}

impl<'de, 'py> DeserializeSeed<'de> for Seed<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for Seed<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.py, value).to_owned().into_any())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        let Ok(int) = value.into_pyobject(self.py);
        Ok(int.into_any())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        let Ok(int) = value.into_pyobject(self.py);
        Ok(int.into_any())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.py.None().into_bound(self.py))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(text::new_str(self.py, value)
            .map_err(|e| custom(&e))?
            .into_any())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.check_depth()?;
        let child = self.child();
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(PyList::new(self.py, items)
            .map_err(|e| custom(&e))?
            .into_any())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let key_seed = KeySeed {
            py: self.py,
            cache: self.cache,
        };
        let first = map.next_key_seed(key_seed)?;
        if let Some(Key::Number) = first {
            let text: String = map.next_value()?;
            return self.number(&text);
        }
        self.check_depth()?;
        let dict = PyDict::new(self.py);
        let child = self.child();
        let mut key = first;
        while let Some(Key::Text(name)) = key {
            let value = map.next_value_seed(child)?;
            // SAFETY: a fresh dict, a str key and a live value; SetItem does not steal.
            if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), name.as_ptr(), value.as_ptr()) } != 0 {
                return Err(custom(&PyErr::fetch(self.py)));
            }
            key = map.next_key_seed(key_seed)?;
        }
        Ok(dict.into_any())
    }
}

enum Key<'py> {
    Number,
    Text(Bound<'py, PyString>),
}

#[derive(Clone, Copy)]
struct KeySeed<'a, 'py> {
    py: Python<'py>,
    cache: &'a RefCell<KeyCache<'py>>,
}

impl<'de, 'py> DeserializeSeed<'de> for KeySeed<'_, 'py> {
    type Value = Key<'py>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'py> Visitor<'_> for KeySeed<'_, 'py> {
    type Value = Key<'py>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        if value == NUMBER_TOKEN {
            return Ok(Key::Number);
        }
        Ok(Key::Text(self.cache.borrow_mut().get(self.py, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::Packed;

    #[test]
    fn packed_keys_are_equal_exactly_when_the_keys_are() {
        let keys: Vec<Vec<u8>> = [
            "", "a", "ab", "ba", "abc", "acc", "a\0", "a\0\0", "role", "type", "text", "roles",
        ]
        .iter()
        .map(|key| key.as_bytes().to_vec())
        .chain((0..=17).map(|len| {
            (0..len)
                .map(|at| b'a' + u8::try_from(at % 26).expect("small"))
                .collect()
        }))
        .chain((0..=17).map(|len| vec![0; len]))
        .collect();
        for left in &keys {
            for right in &keys {
                let (a, b) = (Packed::new(left), Packed::new(right));
                assert_eq!(a.is_some(), left.len() <= 16);
                if let (Some(a), Some(b)) = (a, b) {
                    assert_eq!(a == b, left == right, "{left:?} {right:?}");
                    assert!(a.slot() < super::CACHE_SLOTS);
                }
            }
        }
    }
}
