//! Floats written exactly as Python's `repr(float)`.
//!
//! Both produce the shortest digits that round-trip; they differ only in layout. Python
//! switches to scientific notation when the decimal exponent is below -4 or above 15
//! (`1e-05`, `1e+16`), always signs the exponent and pads it to two digits, and keeps a
//! `.0` on integral values.

/// Append Python's `repr(value)` for a finite `value`.
pub fn write_py_float(out: &mut Vec<u8>, value: f64) {
    debug_assert!(value.is_finite());
    if value == 0.0 {
        out.extend_from_slice(if value.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    // ryu gives the shortest round-trip digits, as `123.45`, `1e16` or `1.5e-7`.
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(value.abs()).as_bytes();
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'e') {
        Some(at) => (&text[..at], parse_exponent(&text[at + 1..])),
        None => (text, 0),
    };
    let point = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len());
    let mut digits = [0u8; 24];
    let mut count = 0usize;
    let mut leading_zeros = 0i32;
    for &byte in mantissa.iter().filter(|&&b| b != b'.') {
        if count == 0 && byte == b'0' {
            leading_zeros += 1;
        } else {
            digits[count] = byte;
            count += 1;
        }
    }
    while count > 1 && digits[count - 1] == b'0' {
        count -= 1;
    }
    let digits = &digits[..count];
    // Python's `decpt`: value = 0.d1d2... * 10^decpt
    let decpt = i32::try_from(point).expect("short mantissa") - leading_zeros + exponent;
    if value.is_sign_negative() {
        out.push(b'-');
    }
    if decpt <= -4 || decpt > 16 {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let shown = decpt - 1;
        out.extend_from_slice(if shown < 0 { b"e-" } else { b"e+" });
        let magnitude = shown.unsigned_abs();
        if magnitude < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(magnitude.to_string().as_bytes());
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + usize::try_from(-decpt).expect("small"), b'0');
        out.extend_from_slice(digits);
    } else {
        let point = usize::try_from(decpt).expect("positive");
        if digits.len() <= point {
            out.extend_from_slice(digits);
            out.resize(out.len() + point - digits.len(), b'0');
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        }
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let magnitude = digits
        .iter()
        .fold(0i32, |acc, &b| acc * 10 + i32::from(b - b'0'));
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::write_py_float;

    fn repr(value: f64) -> String {
        let mut out = Vec::new();
        write_py_float(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_python_repr() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (2.5, "2.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1_234_567_890_123_456.0, "1234567890123456.0"),
            (123_456_789_012_345_680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-1.25e100, "-1.25e+100"),
            (123.456, "123.456"),
            (1e22, "1e+22"),
            (0.5, "0.5"),
            (100.0, "100.0"),
            (1e-4, "0.0001"),
            (0.000_123, "0.000123"),
            (9_999_999_999_999_998.0, "9999999999999998.0"),
            (2.225_073_858_507_201_4e-308, "2.2250738585072014e-308"),
        ];
        for &(value, expected) in cases {
            assert_eq!(repr(value), expected, "repr of {value:e}");
        }
    }
}
