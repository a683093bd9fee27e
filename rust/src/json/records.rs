//! A journal's record checksums (format version 2), checked without Python: one record's
//! line, a commit record with the message lines it commits, and how far a whole journal's
//! records verify. The format is described in `stores/file/records.py`, which writes it;
//! the pure twin of these checks is in `_pure/json.py`.
//!
//! Every record line ends with the CRC-32 (zlib's, the IEEE polynomial) of its bytes before
//! it, as 8 lowercase hex digits: `...,"cccccccc"]`. A commit or seal record carries before
//! that the CRC-32 of the message lines before it, seeded with the previous record's
//! checksum: `["metadata",...,"bbbbbbbb","cccccccc"]`.

use memchr::memmem;

/// How every commit and seal record line starts, after the newline ending the line before.
const RECORD_START: &[u8] = b"\n[\"metadata\",";
/// How a seal record line starts: it commits nothing.
const SEAL_PREFIX: &[u8] = b"[\"metadata\",null,";
/// The bytes of a record's line after what its checksum covers: `"cccccccc"]`.
const SEALED: usize = 11;

/// The value of 8 lowercase hex digits, as `"%08x"` writes them; `None` for anything else.
fn hex8(digits: &[u8]) -> Option<u32> {
    if digits.len() != 8 {
        return None;
    }
    digits.iter().try_fold(0u32, |value, &digit| {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u32::from(nibble))
    })
}

/// The CRC-32 of `bytes`, continuing from `seed` (zlib's `crc32(bytes, seed)`).
fn crc32(bytes: &[u8], seed: u32) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(seed);
    hasher.update(bytes);
    hasher.finalize()
}

/// The checksum of the record `line` (without its newline) when the line verifies.
pub fn checksum(line: &[u8]) -> Option<u32> {
    if line.len() <= SEALED || !line.ends_with(b"\"]") || line[line.len() - SEALED] != b'"' {
        return None;
    }
    let sealed = hex8(&line[line.len() - 10..line.len() - 2])?;
    (crc32(&line[..line.len() - SEALED], 0) == sealed).then_some(sealed)
}

/// The checksum of the commit or seal record `line` when it and the message lines `batch`
/// it commits (after a record whose checksum is `seed`) verify.
pub fn commit_checksum(line: &[u8], batch: &[u8], seed: u32) -> Option<u32> {
    let found = checksum(line)?;
    let at = line.len().checked_sub(22)?; // `"bbbbbbbb",` before `"cccccccc"]`
    let committed = hex8(&line[at + 1..at + 9])?;
    (line[at] == b'"' && crc32(batch, seed) == committed).then_some(found)
}

/// The start and end of the last state record (the header or a commit record, not a seal)
/// of `data` that verifies, with every record and message line before it: `(0, first)`
/// when that is the header, which ends at `first` (just after its newline) with checksum
/// `seed`. Records are looked at in order from the header; the first that does not verify
/// ends the search, whatever follows.
pub fn verified(data: &[u8], first: usize, seed: u32) -> (usize, usize) {
    let finder = memmem::Finder::new(RECORD_START);
    let mut last = (0, first);
    let (mut position, mut seed) = (first, seed);
    loop {
        let from = position.saturating_sub(1); // the newline ending the line before
        let Some(found) = data.get(from..).and_then(|rest| finder.find(rest)) else {
            return last;
        };
        let start = from + found + 1;
        let Some(length) = memchr::memchr(b'\n', &data[start..]) else {
            return last; // a record cut short
        };
        let end = start + length + 1;
        let batch = data.get(position..start).unwrap_or_default();
        let Some(checked) = commit_checksum(&data[start..end - 1], batch, seed) else {
            return last;
        };
        if !data[start..].starts_with(SEAL_PREFIX) {
            last = (start, end);
        }
        (position, seed) = (end, checked);
    }
}

#[cfg(test)]
mod tests {
    use super::{checksum, commit_checksum, crc32, verified, RECORD_START};

    /// A record line (newline included) of `prefix`, sealed as the writer seals it.
    fn seal(prefix: &[u8]) -> Vec<u8> {
        let mut line = prefix.to_vec();
        line.extend(format!("\"{:08x}\"]\n", crc32(prefix, 0)).as_bytes());
        line
    }

    /// The commit record of `metadata` after `batch`, which follows a record sealed `seed`.
    fn commit(metadata: &str, batch: &[u8], seed: u32) -> Vec<u8> {
        let prefix = format!("[\"metadata\",{metadata},\"{:08x}\",", crc32(batch, seed));
        seal(prefix.as_bytes())
    }

    fn sealed_by(line: &[u8]) -> u32 {
        checksum(&line[..line.len() - 1]).expect("a record that verifies")
    }

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b"", 0), 0);
        assert_eq!(crc32(b"hello", 0), 0x3610_a686);
        assert_eq!(crc32(b"lo", crc32(b"hel", 0)), 0x3610_a686);
    }

    #[test]
    fn a_record_verifies_only_as_sealed() {
        let line = seal(b"[\"metadata\",{\"a\":1},\"00000000\",");
        let body = &line[..line.len() - 1];
        assert!(checksum(body).is_some());
        let upper = String::from_utf8(body.to_vec()).unwrap().to_uppercase();
        assert_eq!(checksum(upper.as_bytes()), None);
        for cut in 0..body.len() {
            assert_eq!(checksum(&body[..cut]), None, "cut at {cut}");
        }
        let mut flipped = body.to_vec();
        flipped[3] ^= 1;
        assert_eq!(checksum(&flipped), None);
        assert_eq!(checksum(b"\"00000000\"]"), None); // nothing before the checksum
    }

    #[test]
    fn a_commit_record_verifies_with_its_batch_and_seed() {
        let batch = b"{\"role\":\"user\"}\n";
        let line = commit("{\"message_count\":1}", batch, 7);
        let body = &line[..line.len() - 1];
        assert_eq!(commit_checksum(body, batch, 7), Some(sealed_by(&line)));
        assert_eq!(commit_checksum(body, batch, 8), None);
        assert_eq!(commit_checksum(body, b"{\"role\":\"tool\"}\n", 7), None);
        assert_eq!(commit_checksum(&seal(b"[1,")[..5], batch, 7), None);
    }

    #[test]
    fn a_journal_verifies_up_to_its_last_state_that_does() {
        let header = seal(b"[\"header\",2,{},");
        let seed = sealed_by(&header);
        let mut data = header.clone();
        assert_eq!(verified(&data, header.len(), seed), (0, header.len()));
        let lines = b"{\"n\":1}\n{\"n\":2}\n";
        data.extend(lines);
        let first = commit("{\"message_count\":2}", lines, seed);
        let first_at = data.len();
        data.extend(&first);
        let sealing = commit("null", b"{\"n\":3}\n", sealed_by(&first));
        data.extend(b"{\"n\":3}\n");
        data.extend(&sealing);
        let whole = (first_at, first_at + first.len());
        assert_eq!(verified(&data, header.len(), seed), whole); // a seal is no state
        let last = commit("{\"message_count\":3}", b"", sealed_by(&sealing));
        let last_at = data.len();
        data.extend(&last);
        let complete = (last_at, data.len());
        assert_eq!(verified(&data, header.len(), seed), complete);
        for cut in last_at..data.len() {
            assert_eq!(
                verified(&data[..cut], header.len(), seed),
                whole,
                "cut at {cut}"
            );
        }
        let mut damaged = data.clone();
        damaged[header.len() + 3] ^= 1; // a message line the first commit covers
        assert_eq!(verified(&damaged, header.len(), seed), (0, header.len()));
        assert_eq!(verified(&data, data.len() + 5, seed), (0, data.len() + 5));
        assert!(!data.starts_with(&RECORD_START[1..]));
    }

    /// The golden journal of `tests/fixtures/records.json`, which pytest checks both
    /// backends against: how far it verifies whole, cut short and damaged.
    #[test]
    fn the_golden_journal_verifies_as_the_fixture_says() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/records.json")).unwrap();
        let data = fixture["journal"].as_str().unwrap().as_bytes();
        let number = |value: &serde_json::Value| usize::try_from(value.as_u64().unwrap()).unwrap();
        let first = number(&fixture["first"]);
        let seed = u32::try_from(fixture["seed"].as_u64().unwrap()).unwrap();
        assert_eq!(checksum(&data[..first - 1]), Some(seed));
        let pair = |items: &[serde_json::Value]| (number(&items[0]), number(&items[1]));
        let whole = fixture["verified"].as_array().unwrap();
        assert_eq!(verified(data, first, seed), pair(whole));
        let cuts = fixture["cuts"].as_array().unwrap();
        for (at, case) in cuts.iter().enumerate() {
            let case = case.as_array().unwrap();
            let next = cuts
                .get(at + 1)
                .map_or(data.len() + 1, |next| number(&next[0]));
            for cut in number(&case[0])..next {
                assert_eq!(
                    verified(&data[..cut], first, seed),
                    pair(&case[1..]),
                    "cut {cut}"
                );
            }
        }
        for case in fixture["damaged"].as_array().unwrap() {
            let case = case.as_array().unwrap();
            let mut damaged = data.to_vec();
            damaged[number(&case[0])] ^= u8::try_from(number(&case[1])).unwrap();
            assert_eq!(
                verified(&damaged, first, seed),
                pair(&case[2..]),
                "{case:?}"
            );
        }
    }
}
