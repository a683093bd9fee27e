//! `dumps`: Python objects to compact JSON bytes, strings escaped by serde_json.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::bigint::decimal_from_le_bytes;
use crate::floatfmt::write_py_float;

const MAX_DEPTH: usize = 128;

/// Why a value cannot be written, and where: path segments gathered while unwinding.
pub struct Fault {
    reason: String,
    segments: Vec<String>,
}

impl Fault {
    #[allow(
        clippy::unnecessary_box_returns,
        reason = "faults travel boxed to keep Result small"
    )]
    fn new(reason: String) -> Box<Fault> {
        Box::new(Fault {
            reason,
            segments: Vec::new(),
        })
    }

    /// `"{reason} at $.path[0].to.it"`
    pub fn message(&self) -> String {
        let mut text = format!("{} at $", self.reason);
        for segment in self.segments.iter().rev() {
            text.push_str(segment);
        }
        text
    }
}

type Written = Result<(), Box<Fault>>;

/// Serialize `obj`; see `_native.pyi` for the exact rules.
pub fn dumps(obj: &Bound<'_, PyAny>) -> Result<Vec<u8>, Box<Fault>> {
    let mut out = Vec::with_capacity(4096);
    write_value(&mut out, obj, 1)?;
    Ok(out)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |name| name.to_string())
}

fn write_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing a str to a Vec cannot fail");
}

fn key_segment(key: &str) -> String {
    let bytes = key.as_bytes();
    let identifier = !bytes.is_empty()
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if identifier {
        format!(".{key}")
    } else {
        let mut quoted = Vec::with_capacity(key.len() + 4);
        write_json_str(&mut quoted, key);
        format!(
            "[{}]",
            String::from_utf8(quoted).expect("JSON output is UTF-8")
        )
    }
}

fn write_value(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, depth: usize) -> Written {
    if let Ok(text) = obj.cast::<PyString>() {
        let text = text
            .to_str()
            .map_err(|_| Fault::new("cannot serialize str with a lone surrogate".to_owned()))?;
        write_json_str(out, text);
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
    // Subclasses are read like `dict.items(d)`: the stored items, whatever they override.
    for (index, (key, value)) in dict.iter().enumerate() {
        let Ok(key) = key.cast::<PyString>() else {
            return Err(Fault::new(format!(
                "cannot serialize dict key of type {}",
                type_name(&key)
            )));
        };
        let key = key.to_str().map_err(|_| {
            Fault::new("cannot serialize dict key with a lone surrogate".to_owned())
        })?;
        if index > 0 {
            out.push(b',');
        }
        write_json_str(out, key);
        out.push(b':');
        if let Err(mut fault) = write_value(out, &value, depth + 1) {
            fault.segments.push(key_segment(key));
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
            fault.segments.push(format!("[{index}]"));
            return Err(fault);
        }
    }
    out.push(b']');
    Ok(())
}

fn write_int(out: &mut Vec<u8>, int: &Bound<'_, PyInt>) -> Written {
    if let Ok(small) = int.extract::<i64>() {
        out.extend_from_slice(small.to_string().as_bytes());
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
