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
    out.reserve(text.len() + 2);
    out.push(b'"');
    write_body(out, text.as_bytes());
    out.push(b'"');
}

/// Append `bytes`, UTF-8 that may also hold surrogates encoded as UTF-8 encodes other code
/// points (WTF-8: what Python's `"surrogatepass"` error handler writes), as a JSON string:
/// as `write_str`, each surrogate as a lowercase `\udxxx` escape, as JavaScript's
/// `JSON.stringify` writes a lone surrogate.
pub fn write_wtf8(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut rest = bytes;
    // a surrogate is 0xed, then 0xa0..=0xbf, then a continuation byte; never in valid UTF-8
    while let Some(at) = rest
        .windows(2)
        .position(|pair| pair[0] == 0xed && pair[1] >= 0xa0)
    {
        write_body(out, &rest[..at]);
        let unit = 0xd000 | u16::from(rest[at + 1] & 0x3f) << 6 | u16::from(rest[at + 2] & 0x3f);
        out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
        rest = &rest[at + 3..];
    }
    write_body(out, rest);
    out.push(b'"');
}

/// Append `bytes` escaped as inside a JSON string, without the quotes.
fn write_body(out: &mut Vec<u8>, bytes: &[u8]) {
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
}

#[cfg(test)]
mod tests {
    use super::{write_str, write_wtf8};

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

    #[test]
    fn surrogates_are_escaped_as_javascript_writes_them() {
        let wtf8 = |units: &[u16]| -> Vec<u8> {
            let mut bytes = Vec::new();
            for unit in char::decode_utf16(units.iter().copied()) {
                match unit {
                    Ok(ch) => bytes.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes()),
                    Err(lone) => {
                        let code = lone.unpaired_surrogate();
                        bytes.extend([
                            0xed,
                            0x80 | ((code >> 6) & 0x3f) as u8,
                            0x80 | (code & 0x3f) as u8,
                        ]);
                    }
                }
            }
            bytes
        };
        for (units, expected) in [
            (vec![0x78, 0xd83d], r#""x\ud83d""#),
            (vec![0xdfff, 0x0a, 0x22, 0xe9], r#""\udfff\n\"é""#),
            (vec![0xd800, 0xdc00u16 - 1, 0x61], r#""\ud800\udbffa""#),
            (vec![0x61, 0xd83d, 0xde00], "\"a😀\""),
        ] {
            let mut out = Vec::new();
            write_wtf8(&mut out, &wtf8(&units));
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{units:x?}");
        }
    }
}
