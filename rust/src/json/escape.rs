//! JSON string writing: clean runs are found eight bytes at a time and copied whole; the
//! rare bytes that need escaping go through serde_json's formatter.

use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `word` is below 0x20, `"` or `\` (may report false positives, never
/// false negatives; bytes >= 0x80 never match).
#[inline]
fn may_need_escape(word: u64) -> bool {
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGH != 0
}

#[inline]
fn escape_of(byte: u8) -> Option<CharEscape> {
    Some(match byte {
        b'"' => CharEscape::Quote,
        b'\\' => CharEscape::ReverseSolidus,
        b'\x08' => CharEscape::Backspace,
        b'\x0c' => CharEscape::FormFeed,
        b'\n' => CharEscape::LineFeed,
        b'\r' => CharEscape::CarriageReturn,
        b'\t' => CharEscape::Tab,
        0x00..=0x1f => CharEscape::AsciiControl(byte),
        _ => return None,
    })
}

/// Append `text` as a JSON string: `"`, `\` and U+0000..U+001F escaped, all else raw UTF-8.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        if let Some(chunk) = bytes.get(index..index + 16) {
            let low = u64::from_le_bytes(chunk[..8].try_into().expect("eight bytes"));
            let high = u64::from_le_bytes(chunk[8..].try_into().expect("eight bytes"));
            if !may_need_escape(low) && !may_need_escape(high) {
                index += 16;
                continue;
            }
        }
        if let Some(chunk) = bytes.get(index..index + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            if !may_need_escape(word) {
                index += 8;
                continue;
            }
        }
        let end = (index + 8).min(bytes.len());
        while index < end {
            if let Some(escape) = escape_of(bytes[index]) {
                out.extend_from_slice(&bytes[start..index]);
                CompactFormatter
                    .write_char_escape(out, escape)
                    .expect("writing to a Vec cannot fail");
                start = index + 1;
            }
            index += 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::write_str;

    fn json(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn same_as_serde_json() {
        let cases = [
            "",
            "plain ascii text longer than eight bytes",
            "\"\\\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}",
            "é中🙂\u{2028} mixed \"quotes\" and \\ slashes \u{1}",
            "12345678\"",
            "1234567\n",
        ];
        for case in cases {
            assert_eq!(json(case), serde_json::to_string(case).unwrap(), "{case:?}");
        }
        for byte in 0u8..=0x7f {
            let text = format!("abcdefg{}hijklmnop", char::from(byte));
            assert_eq!(json(&text), serde_json::to_string(&text).unwrap());
        }
    }
}
