//! Python `str`s from UTF-8 without CPython's per-character decoder.
//!
//! `PyUnicode_FromStringAndSize` decodes a non-ASCII string one character at a time, and
//! widens what it has built each time a wider character turns up (Latin-1, then UCS-2,
//! then UCS-4), reallocating and copying it: for text with an accent and an emoji in it, a
//! third of a load's instructions and more of its memory traffic. Here the widest byte
//! tells the width at once, the characters are decoded into this thread's scratch buffer of
//! that width (still in the cache from the last string), and `PyUnicode_FromKindAndData`
//! copies it into the new string. That function is public C API, but outside the stable
//! ABI an abi3 module links against, so it is looked up in the running interpreter
//! instead; without it, or for ASCII (which CPython copies with `memcpy` already), strings
//! are made as before.

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;
use std::thread::LocalKey;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// `PyUnicode_FromKindAndData(kind, buffer, size)`.
type FromKindAndData =
    unsafe extern "C" fn(c_int, *const c_void, ffi::Py_ssize_t) -> *mut ffi::PyObject;

/// `PyUnicode_FromKindAndData`, when the interpreter this module runs in exports it.
fn from_kind_and_data() -> Option<FromKindAndData> {
    static FOUND: OnceLock<Option<FromKindAndData>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: a NUL-terminated name looked up among the process's global symbols.
            let symbol =
                unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"PyUnicode_FromKindAndData".as_ptr()) };
            // SAFETY: the interpreter's function of that name has this signature (C API since 3.3).
            (!symbol.is_null())
                .then(|| unsafe { std::mem::transmute::<*mut c_void, FromKindAndData>(symbol) })
        }
        #[cfg(not(unix))]
        {
            None
        }
    })
}

/// The width CPython stores the characters of `text` in: 1, 2 or 4 bytes, or 0 for ASCII.
/// Its widest lead byte tells (`text` is valid UTF-8).
pub fn kind(text: &str) -> usize {
    match text.as_bytes().iter().copied().fold(0, u8::max) {
        0..=0x7f => 0,
        // Two-byte characters led by 0xc2 or 0xc3 are U+0080..U+00FF: Latin-1.
        0x80..=0xc3 => 1,
        0xc4..=0xef => 2,
        _ => 4,
    }
}

/// Scratch buffers above this many bytes are not kept for the next string.
const KEPT_SCRATCH: usize = 1 << 16;

/// A character as CPython stores it in a `str` of one width.
trait Unit: Copy + From<u8> + 'static {
    /// `code`, known to fit.
    fn narrow(code: u32) -> Self;

    /// This thread's scratch buffer of units: a string's characters are decoded into memory
    /// still in the cache from the last one.
    fn scratch() -> &'static LocalKey<RefCell<Vec<Self>>>;
}

macro_rules! unit {
    ($unit:ty) => {
        impl Unit for $unit {
            #[allow(clippy::cast_possible_truncation, reason = "only codes that fit come here")]
            fn narrow(code: u32) -> Self {
                code as $unit
            }

            fn scratch() -> &'static LocalKey<RefCell<Vec<Self>>> {
                thread_local!(static SCRATCH: RefCell<Vec<$unit>> = const { RefCell::new(Vec::new()) });
                &SCRATCH
            }
        }
    };
}

unit!(u8);
unit!(u16);
unit!(u32);

/// The characters of `bytes` (valid UTF-8) in `units`, each as a `T` wide enough for it.
fn decode<T: Unit>(bytes: &[u8], units: &mut Vec<T>) {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let continued = |at: usize| u32::from(bytes[at] & 0x3f);
    units.clear();
    units.reserve(bytes.len()); // no more characters than bytes
    let out = units.spare_capacity_mut();
    let (mut at, mut written) = (0, 0);
    while at < bytes.len() {
        if let (Some(word), Some(slots)) =
            (bytes.get(at..at + 8), out.get_mut(written..written + 8))
        {
            // The ASCII characters this word begins with: all eight are written (those
            // after them are written again, or left out of the length).
            let word: [u8; 8] = word.try_into().expect("eight bytes");
            let wide = word.map(T::from);
            // SAFETY: eight slots, checked just above, and eight units.
            unsafe {
                slots
                    .as_mut_ptr()
                    .cast::<T>()
                    .copy_from_nonoverlapping(wide.as_ptr(), 8);
            };
            let ascii = (u64::from_le_bytes(word) & HIGH_BITS).trailing_zeros() as usize / 8;
            at += ascii;
            written += ascii;
            if ascii == 8 {
                continue;
            }
        }
        let lead = bytes[at];
        let (code, width) = match lead {
            0..=0x7f => (u32::from(lead), 1),
            0xc0..=0xdf => (u32::from(lead & 0x1f) << 6 | continued(at + 1), 2),
            0xe0..=0xef => (
                u32::from(lead & 0x0f) << 12 | continued(at + 1) << 6 | continued(at + 2),
                3,
            ),
            _ => (
                u32::from(lead & 0x07) << 18
                    | continued(at + 1) << 12
                    | continued(at + 2) << 6
                    | continued(at + 3),
                4,
            ),
        };
        out[written].write(T::narrow(code));
        written += 1;
        at += width;
    }
    // SAFETY: the first `written` units were written just now (each index checked).
    unsafe { units.set_len(written) };
}

/// `bytes` (valid UTF-8) as a new reference to a `str` of characters of type `T`, of width
/// `kind`, or null with an exception set.
fn made<T: Unit>(make: FromKindAndData, kind: c_int, bytes: &[u8]) -> *mut ffi::PyObject {
    T::scratch().with_borrow_mut(|units| {
        decode(bytes, units);
        let size = ffi::Py_ssize_t::try_from(units.len()).expect("a str's length fits Py_ssize_t");
        // SAFETY: `size` units of width `kind`, alive for the call, which copies them.
        let object = unsafe { make(kind, units.as_ptr().cast(), size) };
        if units.capacity() * size_of::<T>() > KEPT_SCRATCH {
            *units = Vec::new();
        }
        object
    })
}

/// A new Python `str` holding `text`.
pub fn new_str<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
    let make = match from_kind_and_data() {
        Some(make) if !text.is_ascii() => make,
        _ => return Ok(PyString::new(py, text)),
    };
    let bytes = text.as_bytes();
    let object = match kind(text) {
        1 => made::<u8>(make, 1, bytes),
        2 => made::<u16>(make, 2, bytes),
        _ => made::<u32>(make, 4, bytes),
    };
    // SAFETY: a new reference, or null with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, object).map(|string| string.cast_into_unchecked()) }
}

#[cfg(test)]
mod tests {
    use super::{decode, kind};

    #[test]
    fn the_kind_follows_the_widest_character_and_every_character_decodes() {
        for (text, expected) in [
            ("", 0),
            ("plain", 0),
            ("\u{7f}", 0),
            ("\u{80}", 1),
            ("café", 1),
            ("ÿ", 1),
            ("Ā", 2),
            ("naïve — “quoted”", 2),
            ("東京", 2),
            ("\u{ffff}", 2),
            ("\u{10000}", 4),
            ("a 🙂 é 東", 4),
            ("\u{10ffff}", 4),
        ] {
            assert_eq!(kind(text), expected, "{text:?}");
            let codes: Vec<u32> = text.chars().map(u32::from).collect();
            let mut units = Vec::new();
            decode::<u32>(text.as_bytes(), &mut units);
            assert_eq!(units, codes, "{text:?}");
            let long = text.repeat(9) + "ascii tail of some length";
            let codes: Vec<u32> = long.chars().map(u32::from).collect();
            decode::<u32>(long.as_bytes(), &mut units);
            assert_eq!(units, codes, "{long:?}");
        }
    }
}
