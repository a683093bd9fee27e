//! A journal's lines, found in one pass: each ends with `\n` (the last may end at the end
//! of the data instead); lines that start with a marker are counted out unread.

/// The lines of `data` that do not start with `skip` (unless it is empty), each with its
/// number (counted from 1, skipped lines included); [`Lines::skipped`] tells how many bytes
/// the lines left out take, newlines included.
pub struct Lines<'a> {
    data: &'a [u8],
    body: &'a [u8],
    skip: &'a [u8],
    ends: memchr::Memchr<'a>,
    start: usize,
    number: usize,
    last_done: bool,
    skipped: usize,
}

impl<'a> Lines<'a> {
    pub fn new(data: &'a [u8], skip: &'a [u8]) -> Self {
        let body = data.strip_suffix(b"\n").unwrap_or(data);
        Lines {
            data,
            body,
            skip,
            ends: memchr::memchr_iter(b'\n', body),
            start: 0,
            number: 0,
            last_done: data.is_empty(),
            skipped: 0,
        }
    }

    /// Bytes taken by the lines left out so far (all of them once the iterator is done).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

impl<'a> Iterator for Lines<'a> {
    /// `(line number, the line without its newline)`
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let end = match self.ends.next() {
                Some(end) => end,
                None if !self.last_done => {
                    self.last_done = true;
                    self.body.len()
                }
                None => return None,
            };
            self.number += 1;
            let line = &self.body[self.start..end];
            let start = self.start;
            self.start = end + 1;
            if !self.skip.is_empty() && line.starts_with(self.skip) {
                self.skipped += (end + 1).min(self.data.len()) - start;
                continue;
            }
            return Some((self.number, line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    fn split(data: &[u8], skip: &[u8]) -> (Vec<(usize, Vec<u8>)>, usize) {
        let mut lines = Lines::new(data, skip);
        let found = lines.by_ref().map(|(n, line)| (n, line.to_vec())).collect();
        (found, lines.skipped())
    }

    #[test]
    fn lines_end_with_newlines_or_the_data_and_skipped_ones_are_counted() {
        let owned = |items: &[(usize, &str)]| -> Vec<(usize, Vec<u8>)> {
            items
                .iter()
                .map(|(n, s)| (*n, s.as_bytes().to_vec()))
                .collect()
        };
        assert_eq!(split(b"", b""), (vec![], 0));
        assert_eq!(split(b"\n", b""), (owned(&[(1, "")]), 0));
        assert_eq!(split(b"1\n2", b""), (owned(&[(1, "1"), (2, "2")]), 0));
        assert_eq!(split(b"1\n2\n", b""), (owned(&[(1, "1"), (2, "2")]), 0));
        assert_eq!(
            split(b"1\n\n2\n", b""),
            (owned(&[(1, "1"), (2, ""), (3, "2")]), 0)
        );
        let journal = b"{\"a\":1}\n#skip me\n[2]\n#last";
        assert_eq!(
            split(journal, b"#"),
            (owned(&[(1, "{\"a\":1}"), (3, "[2]")]), 9 + 5)
        );
        assert_eq!(split(b"#x\n#y\n", b"#"), (vec![], 6));
    }
}
