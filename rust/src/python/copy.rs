//! `copy_json`: a deep copy of a JSON value, the same as `loads(dumps(obj))`.
//!
//! A tree made only of the exact built-in JSON types is copied directly: new dicts and
//! lists, the immutable leaves (str, int, float, bool, None) shared, every check `dumps`
//! makes made the same way. Anything else (a subclass, a tuple, a big int, a value `dumps`
//! rejects) gives up on the fast path and takes the real round trip, so the result and
//! the errors are exactly those of `loads(dumps(obj))`.

use std::ptr::{addr_of_mut, null_mut};

use pyo3::ffi;

use crate::json::MAX_DEPTH;

/// Whether `ptr`, an exact `str`, is UTF-8 encodable (no surrogate code points), as `dumps`
/// requires. Caches the UTF-8 on the str, as `dumps` does.
///
/// # Safety
/// `ptr` must be a live exact `str`, with the thread attached.
unsafe fn encodable(ptr: *mut ffi::PyObject) -> bool {
    let mut size: ffi::Py_ssize_t = 0;
    if unsafe { ffi::PyUnicode_AsUTF8AndSize(ptr, &raw mut size) }.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return false;
    }
    true
}

/// A new reference to `ptr` itself (an immutable leaf), for sharing.
unsafe fn shared(ptr: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe { ffi::Py_IncRef(ptr) };
    ptr
}

/// A new reference to a copy of `ptr`, or null (no error set, nothing leaked) when the
/// tree holds anything but exact built-in JSON types within the nesting limit.
///
/// The garbage collector must be paused: then no Python code runs while the borrowed
/// containers are walked.
///
/// # Safety
/// `ptr` must be a live object, with the thread attached.
pub unsafe fn copy_exact(ptr: *mut ffi::PyObject, depth: usize) -> *mut ffi::PyObject {
    let kind = unsafe { ffi::Py_TYPE(ptr) };
    if kind == addr_of_mut!(ffi::PyUnicode_Type) {
        return if unsafe { encodable(ptr) } {
            unsafe { shared(ptr) }
        } else {
            null_mut()
        };
    }
    if kind == addr_of_mut!(ffi::PyDict_Type) {
        return if depth > MAX_DEPTH {
            null_mut()
        } else {
            unsafe { copy_dict(ptr, depth) }
        };
    }
    if kind == addr_of_mut!(ffi::PyList_Type) {
        return if depth > MAX_DEPTH {
            null_mut()
        } else {
            unsafe { copy_list(ptr, depth) }
        };
    }
    if kind == addr_of_mut!(ffi::PyLong_Type) {
        let mut overflow: std::os::raw::c_int = 0;
        let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(ptr, &raw mut overflow) };
        if overflow == 0 && !(value == -1 && unsafe { !ffi::PyErr_Occurred().is_null() }) {
            return unsafe { shared(ptr) };
        }
        unsafe { ffi::PyErr_Clear() };
        return null_mut(); // a big int: the round trip decides
    }
    if kind == addr_of_mut!(ffi::PyFloat_Type) {
        let finite = unsafe { ffi::PyFloat_AsDouble(ptr) }.is_finite();
        return if finite {
            unsafe { shared(ptr) }
        } else {
            null_mut()
        };
    }
    if ptr == unsafe { ffi::Py_None() }
        || ptr == unsafe { ffi::Py_True() }
        || ptr == unsafe { ffi::Py_False() }
    {
        return unsafe { shared(ptr) };
    }
    null_mut()
}

unsafe fn copy_dict(ptr: *mut ffi::PyObject, depth: usize) -> *mut ffi::PyObject {
    let copy = unsafe { ffi::PyDict_New() };
    if copy.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return null_mut();
    }
    let mut position: ffi::Py_ssize_t = 0;
    let mut key: *mut ffi::PyObject = null_mut();
    let mut value: *mut ffi::PyObject = null_mut();
    while unsafe { ffi::PyDict_Next(ptr, &raw mut position, &raw mut key, &raw mut value) } != 0 {
        let exact_key = unsafe { ffi::Py_TYPE(key) } == addr_of_mut!(ffi::PyUnicode_Type);
        let item = if exact_key && unsafe { encodable(key) } {
            unsafe { copy_exact(value, depth + 1) }
        } else {
            null_mut()
        };
        // SetItem takes its own references (exact str keys run no Python code).
        let stored = !item.is_null() && unsafe { ffi::PyDict_SetItem(copy, key, item) } == 0;
        if !item.is_null() {
            unsafe { ffi::Py_DecRef(item) };
        }
        if !stored {
            unsafe {
                ffi::PyErr_Clear();
                ffi::Py_DecRef(copy);
            }
            return null_mut();
        }
    }
    copy
}

unsafe fn copy_list(ptr: *mut ffi::PyObject, depth: usize) -> *mut ffi::PyObject {
    let len = unsafe { ffi::PyList_Size(ptr) };
    let copy = unsafe { ffi::PyList_New(len) };
    if copy.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return null_mut();
    }
    for index in 0..len {
        let item = unsafe { copy_exact(ffi::PyList_GetItem(ptr, index), depth + 1) };
        if item.is_null() {
            unsafe { ffi::Py_DecRef(copy) }; // the slots not yet set are NULL: freed fine
            return null_mut();
        }
        unsafe { ffi::PyList_SetItem(copy, index, item) }; // steals `item`
    }
    copy
}
