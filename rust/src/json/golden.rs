//! The golden fixtures `tests/fixtures/dumps/NAME.in.json`, written as `dumps(loads(...))`
//! writes them, must equal `NAME.out.json` byte for byte; pytest checks both backends
//! against the same files. Values are parsed in order, with `dict`'s rules for repeated
//! keys (the last value, at the first key's place), and written with this module's parts.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserialize, MapAccess, SeqAccess, Visitor};

use super::escape::write_str;
use super::floatfmt::write_py_float;

/// With `arbitrary_precision`, serde_json hands numbers over as a one-entry map under this key.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// A JSON value as Python holds it after `loads`: objects keep their keys in order.
enum Value {
    Null,
    Bool(bool),
    Number(String),
    Str(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.to_string()))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::Str(value.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut items: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == NUMBER_TOKEN {
                return Ok(Value::Number(map.next_value()?));
            }
            let value = map.next_value()?;
            match items.iter_mut().find(|(known, _)| *known == key) {
                Some(item) => item.1 = value,
                None => items.push((key, value)),
            }
        }
        Ok(Value::Object(items))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// `dumps` of the Python value `loads` makes of `value`.
fn write(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::Number(text) if text.contains(['.', 'e', 'E']) => {
            write_py_float(out, text.parse().expect("a finite float"));
        }
        Value::Number(text) => match text.parse::<i64>() {
            Ok(small) => out.extend_from_slice(small.to_string().as_bytes()),
            Err(_) => out.extend_from_slice(text.as_bytes()), // JSON has no leading zeros
        },
        Value::Str(text) => write_str(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write(out, item);
            }
            out.push(b']');
        }
        Value::Object(items) => {
            out.push(b'{');
            for (index, (key, item)) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write(out, item);
            }
            out.push(b'}');
        }
    }
}

/// The directory of the golden `dumps` fixtures.
fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dumps")
}

#[test]
fn golden_inputs_are_written_as_the_fixtures_say() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures()).expect("tests/fixtures/dumps") {
        let input = entry.expect("a directory entry").path();
        let Some(name) = input
            .to_str()
            .and_then(|path| path.strip_suffix(".in.json"))
        else {
            continue;
        };
        let expected = std::fs::read(format!("{name}.out.json")).expect("its .out.json");
        let text = std::fs::read_to_string(&input).expect("UTF-8 input");
        let mut deserializer = serde_json::Deserializer::from_str(&text);
        deserializer.disable_recursion_limit();
        let value = Value::deserialize(&mut deserializer).expect("valid JSON");
        let mut out = Vec::new();
        write(&mut out, &value);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} golden fixtures found");
}
