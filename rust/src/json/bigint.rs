//! Decimal digits of integers too large for `i128`, from their little-endian bytes.
//!
//! CPython refuses `str()` of ints above 4300 digits; sessions must still round-trip them.

use std::fmt::Write as _;

/// Decimal digits of the unsigned magnitude stored little-endian in `bytes`.
pub fn decimal_from_le_bytes(bytes: &[u8]) -> String {
    const CHUNK: u64 = 1_000_000_000;
    // limbs of base 2^32, most significant last
    let mut limbs: Vec<u32> = bytes
        .chunks(4)
        .map(|chunk| {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            u32::from_le_bytes(word)
        })
        .collect();
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    if limbs.is_empty() {
        return "0".to_owned();
    }
    let mut groups: Vec<u32> = Vec::new(); // base 10^9, least significant first
    while !limbs.is_empty() {
        let mut remainder: u64 = 0;
        for limb in limbs.iter_mut().rev() {
            let current = (remainder << 32) | u64::from(*limb);
            *limb = u32::try_from(current / CHUNK).expect("quotient fits a limb");
            remainder = current % CHUNK;
        }
        groups.push(u32::try_from(remainder).expect("remainder below 10^9"));
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut text = groups.last().expect("at least one group").to_string();
    for group in groups.iter().rev().skip(1) {
        let _ = write!(text, "{group:09}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::decimal_from_le_bytes;

    #[test]
    fn small_and_large() {
        assert_eq!(decimal_from_le_bytes(&[]), "0");
        assert_eq!(decimal_from_le_bytes(&[0, 0]), "0");
        assert_eq!(decimal_from_le_bytes(&[1]), "1");
        assert_eq!(
            decimal_from_le_bytes(&u128::MAX.to_le_bytes()),
            u128::MAX.to_string()
        );
        // 2^200
        let mut bytes = vec![0u8; 26];
        bytes[25] = 1;
        assert_eq!(
            decimal_from_le_bytes(&bytes),
            "1606938044258990275541962092341162602522202993782792835301376"
        );
    }
}
