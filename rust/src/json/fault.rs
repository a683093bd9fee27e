//! Why a value cannot be written, and where: `cannot serialize set at $.messages[3].content`.

use super::escape::write_str;

/// A serialization fault: the reason, and the path segments gathered while unwinding
/// (innermost first).
pub struct Fault {
    reason: String,
    segments: Vec<String>,
}

impl Fault {
    #[allow(
        clippy::unnecessary_box_returns,
        reason = "faults travel boxed to keep Result small"
    )]
    pub fn new(reason: String) -> Box<Fault> {
        Box::new(Fault {
            reason,
            segments: Vec::new(),
        })
    }

    /// Record that the fault lies under the dict key `key`.
    pub fn in_key(&mut self, key: &str) {
        self.segments.push(key_segment(key));
    }

    /// Record that the fault lies under the dict key written as the JSON string `quoted`
    /// (a key that `key_segment` cannot take as `&str`: one holding a lone surrogate).
    pub fn in_quoted_key(&mut self, quoted: &str) {
        self.segments.push(format!("[{quoted}]"));
    }

    /// Record that the fault lies under item `index` of a list or tuple.
    pub fn in_item(&mut self, index: impl std::fmt::Display) {
        self.segments.push(format!("[{index}]"));
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

/// `.key` for an identifier (`[A-Za-z_][A-Za-z0-9_]*`), else `["key"]` quoted as JSON.
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
        write_str(&mut quoted, key);
        format!(
            "[{}]",
            String::from_utf8(quoted).expect("JSON output is UTF-8")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Fault;

    #[test]
    fn the_path_reads_from_the_root() {
        let mut fault = Fault::new("cannot serialize set".to_owned());
        fault.in_key("deep");
        fault.in_item(1);
        fault.in_key("a b");
        fault.in_key("_x1");
        fault.in_item(3);
        fault.in_key("messages");
        assert_eq!(
            fault.message(),
            "cannot serialize set at $.messages[3]._x1[\"a b\"][1].deep"
        );
        let mut fault = Fault::new("cannot serialize int".to_owned());
        fault.in_key("1x");
        fault.in_key("");
        fault.in_key("é\"");
        assert_eq!(
            fault.message(),
            "cannot serialize int at $[\"é\\\"\"][\"\"][\"1x\"]"
        );
    }
}
