//! `dumps`: Python objects to compact JSON bytes, strings escaped by serde_json.

use std::ptr::addr_of_mut;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::json::bigint::decimal_from_le_bytes;
use crate::json::escape::{write_str as write_json_str, write_wtf8};
use crate::json::fault::Fault;
use crate::json::floatfmt::write_py_float;
use crate::json::MAX_DEPTH;

type Written = Result<(), Box<Fault>>;

/// Serialize `obj` into `out` (cleared first); see `_native.pyi` for the exact rules.
pub fn dumps_into(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> Written {
    out.clear();
    write_value(out, obj, 1)
}

/// The UTF-8 of an exact `str`, or `None` (error cleared) when it holds a lone surrogate.
/// Such a `str` is written by `write_surrogates`.
///
/// # Safety
/// `ptr` must be a live `str` that outlives the returned slice, with the thread attached.
unsafe fn utf8_of<'a>(ptr: *mut ffi::PyObject) -> Option<&'a str> {
    let mut size: ffi::Py_ssize_t = 0;
    let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(ptr, &raw mut size) };
    if data.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    let len = usize::try_from(size).expect("str size is not negative");
    // SAFETY: CPython returns `size` bytes of valid UTF-8, cached on the str object.
    Some(unsafe {
        std::str::from_utf8_unchecked(std::slice::from_raw_parts(data.cast::<u8>(), len))
    })
}

/// The fast path for exact built-in types, on borrowed pointers: no reference counting and
/// no calls into Python code, so the containers cannot change under us. Anything else
/// (subclasses, tuples, big ints, errors) takes the general path in `write_value`.
///
/// # Safety
/// `ptr` must be a valid object, and the thread attached to the interpreter (`py`).
unsafe fn write_fast(
    out: &mut Vec<u8>,
    py: Python<'_>,
    ptr: *mut ffi::PyObject,
    depth: usize,
) -> Written {
    let kind = unsafe { ffi::Py_TYPE(ptr) };
    if kind == addr_of_mut!(ffi::PyUnicode_Type) {
        match unsafe { utf8_of(ptr) } {
            Some(text) => write_json_str(out, text),
            None => write_surrogates(
                out,
                unsafe { Bound::from_borrowed_ptr(py, ptr) }
                    .cast::<PyString>()
                    .expect("exact str"),
            )?,
        }
        return Ok(());
    }
    if kind == addr_of_mut!(ffi::PyDict_Type) {
        too_deep(depth)?;
        out.push(b'{');
        let mut position: ffi::Py_ssize_t = 0;
        let mut key: *mut ffi::PyObject = std::ptr::null_mut();
        let mut value: *mut ffi::PyObject = std::ptr::null_mut();
        let mut written = 0;
        while unsafe { ffi::PyDict_Next(ptr, &raw mut position, &raw mut key, &raw mut value) } != 0
        {
            let exact = unsafe { ffi::Py_TYPE(key) } == addr_of_mut!(ffi::PyUnicode_Type);
            let Some(name) = (if exact { unsafe { utf8_of(key) } } else { None }) else {
                // a str subclass, a lone surrogate, or a fault: the general path decides, from
                // this item on
                let dict = unsafe { Bound::from_borrowed_ptr(py, ptr) };
                return write_dict_items(
                    out,
                    dict.cast::<PyDict>().expect("exact dict"),
                    depth,
                    written,
                );
            };
            if written > 0 {
                out.push(b',');
            }
            written += 1;
            write_json_str(out, name);
            out.push(b':');
            if let Err(mut fault) = unsafe { write_fast(out, py, value, depth + 1) } {
                fault.in_key(name);
                return Err(fault);
            }
        }
        out.push(b'}');
        return Ok(());
    }
    if kind == addr_of_mut!(ffi::PyList_Type) {
        too_deep(depth)?;
        out.push(b'[');
        let len = unsafe { ffi::PyList_Size(ptr) };
        for index in 0..len {
            if index > 0 {
                out.push(b',');
            }
            let item = unsafe { ffi::PyList_GetItem(ptr, index) };
            if let Err(mut fault) = unsafe { write_fast(out, py, item, depth + 1) } {
                fault.in_item(index);
                return Err(fault);
            }
        }
        out.push(b']');
        return Ok(());
    }
    if kind == addr_of_mut!(ffi::PyLong_Type) {
        let mut overflow: std::os::raw::c_int = 0;
        let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(ptr, &raw mut overflow) };
        if overflow == 0 && !(value == -1 && unsafe { !ffi::PyErr_Occurred().is_null() }) {
            serde_json::to_writer(&mut *out, &value).expect("writing an int to a Vec cannot fail");
            return Ok(());
        }
        unsafe { ffi::PyErr_Clear() };
    } else if kind == addr_of_mut!(ffi::PyFloat_Type) {
        let value = unsafe { ffi::PyFloat_AsDouble(ptr) };
        if value.is_finite() {
            write_py_float(out, value);
            return Ok(());
        }
    } else if ptr == unsafe { ffi::Py_None() } {
        out.extend_from_slice(b"null");
        return Ok(());
    } else if ptr == unsafe { ffi::Py_True() } {
        out.extend_from_slice(b"true");
        return Ok(());
    } else if ptr == unsafe { ffi::Py_False() } {
        out.extend_from_slice(b"false");
        return Ok(());
    }
    let obj = unsafe { Bound::from_borrowed_ptr(py, ptr) };
    write_value(out, &obj, depth)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |name| name.to_string())
}

fn write_value(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, depth: usize) -> Written {
    if obj.is_exact_instance_of::<PyDict>() || obj.is_exact_instance_of::<PyList>() {
        // SAFETY: a live object, and we hold the interpreter (`obj.py()`).
        return unsafe { write_fast(out, obj.py(), obj.as_ptr(), depth) };
    }
    if let Ok(text) = obj.cast::<PyString>() {
        match text.to_str() {
            Ok(text) => write_json_str(out, text),
            Err(_) => write_surrogates(out, text)?,
        }
        return Ok(());
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        return write_dict(out, dict, depth);
    }
    if let Ok(list) = obj.cast::<PyList>() {
        return write_items(out, list.iter(), depth);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return write_items(out, tuple.iter(), depth);
    }
    if obj.is_none() {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    if let Ok(flag) = obj.cast::<PyBool>() {
        out.extend_from_slice(if flag.is_true() { b"true" } else { b"false" });
        return Ok(());
    }
    if let Ok(int) = obj.cast::<PyInt>() {
        return write_int(out, int);
    }
    if let Ok(float) = obj.cast::<PyFloat>() {
        let value = float.value();
        if !value.is_finite() {
            let repr = if value.is_nan() {
                "nan"
            } else if value > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            return Err(Fault::new(format!(
                "cannot serialize non-finite float {repr}"
            )));
        }
        write_py_float(out, value);
        return Ok(());
    }
    Err(Fault::new(format!("cannot serialize {}", type_name(obj))))
}

/// A `str` holding lone surrogates (a JavaScript string may): each written as a `\udxxx`
/// escape, as `JSON.stringify` writes it (see `write_wtf8`).
fn write_surrogates(out: &mut Vec<u8>, text: &Bound<'_, PyString>) -> Written {
    let encoded = text
        .call_method1("encode", ("utf-8", "surrogatepass"))
        .and_then(|bytes| Ok(bytes.cast_into::<PyBytes>()?))
        .map_err(|error| Fault::new(format!("cannot serialize str ({error})")))?;
    write_wtf8(out, encoded.as_bytes());
    Ok(())
}

fn too_deep(depth: usize) -> Written {
    if depth > MAX_DEPTH {
        return Err(Fault::new(format!(
            "cannot serialize: nesting deeper than {MAX_DEPTH}"
        )));
    }
    Ok(())
}

fn write_dict(out: &mut Vec<u8>, dict: &Bound<'_, PyDict>, depth: usize) -> Written {
    too_deep(depth)?;
    out.push(b'{');
    write_dict_items(out, dict, depth, 0)
}

/// The items of `dict` after the `skip` already written, and the closing brace.
/// Subclasses are read like `dict.items(d)`: the stored items, whatever they override.
fn write_dict_items(
    out: &mut Vec<u8>,
    dict: &Bound<'_, PyDict>,
    depth: usize,
    skip: usize,
) -> Written {
    for (index, (key, value)) in dict.iter().enumerate().skip(skip) {
        let Ok(key) = key.cast::<PyString>() else {
            return Err(Fault::new(format!(
                "cannot serialize dict key of type {}",
                type_name(&key)
            )));
        };
        if index > 0 {
            out.push(b',');
        }
        let name = key.to_str().ok(); // `None`: it holds a lone surrogate
        let start = out.len();
        if let Some(name) = name {
            write_json_str(out, name);
        } else {
            write_surrogates(out, key)?;
        }
        let end = out.len();
        out.push(b':');
        if let Err(mut fault) = write_value(out, &value, depth + 1) {
            if let Some(name) = name {
                fault.in_key(name);
            } else {
                fault.in_quoted_key(&String::from_utf8_lossy(&out[start..end]));
            }
            return Err(fault);
        }
    }
    out.push(b'}');
    Ok(())
}

fn write_items<'py>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    depth: usize,
) -> Written {
    too_deep(depth)?;
    out.push(b'[');
    for (index, item) in items.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        if let Err(mut fault) = write_value(out, &item, depth + 1) {
            fault.in_item(index);
            return Err(fault);
        }
    }
    out.push(b']');
    Ok(())
}

fn write_int(out: &mut Vec<u8>, int: &Bound<'_, PyInt>) -> Written {
    if let Ok(small) = int.extract::<i64>() {
        serde_json::to_writer(&mut *out, &small).expect("writing an int to a Vec cannot fail");
        return Ok(());
    }
    let big = || -> PyResult<(bool, Vec<u8>)> {
        let negative = int.lt(0)?;
        let magnitude = int.call_method0("__abs__")?;
        let bits: usize = magnitude.call_method0("bit_length")?.extract()?;
        let bytes = magnitude.call_method1("to_bytes", (bits.div_ceil(8), "little"))?;
        Ok((negative, bytes.extract::<Vec<u8>>()?))
    };
    let (negative, bytes) =
        big().map_err(|error| Fault::new(format!("cannot serialize int ({error})")))?;
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(decimal_from_le_bytes(&bytes).as_bytes());
    Ok(())
}
