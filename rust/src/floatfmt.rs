//! Floats written exactly as Python's `repr(float)`.
//!
//! Both produce the shortest digits that round-trip; they differ only in layout. Python
//! switches to scientific notation when the decimal exponent is below -4 or above 15
//! (`1e-05`, `1e+16`), always signs the exponent and pads it to two digits, and keeps a
//! `.0` on integral values.

use std::fmt::Write as _;

/// Append Python's `repr(value)` for a finite `value`.
pub fn write_py_float(out: &mut Vec<u8>, value: f64) {
    debug_assert!(value.is_finite());
    // Rust's `{:e}` gives the shortest round-trip digits as `d[.ddd]e<exp>`.
    let mut sci = String::with_capacity(32);
    write!(sci, "{value:e}").expect("writing to a String cannot fail");
    let (mantissa, exponent) = sci
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exponent: i32 = exponent.parse().expect("LowerExp exponent is an integer");
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let digits = digits.as_bytes();
    if negative {
        out.push(b'-');
    }
    // Python's `decpt`: value = 0.d1d2... * 10^decpt
    let decpt = exponent + 1;
    if decpt <= -4 || decpt > 16 {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let _ = write!(
            VecWriter(out),
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(
            b'0',
            usize::try_from(-decpt).unwrap_or(0),
        ));
        out.extend_from_slice(digits);
    } else {
        let point = usize::try_from(decpt).unwrap_or(0);
        if digits.len() <= point {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', point - digits.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        }
    }
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
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
        ];
        for &(value, expected) in cases {
            assert_eq!(repr(value), expected, "repr of {value:e}");
        }
    }
}
