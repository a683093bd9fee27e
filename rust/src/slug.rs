//! Session labels derived from a user's first message.

/// Whether `c` is whitespace for Python's `str.isspace` (Rust's set plus U+001C..U+001F).
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Collapse whitespace runs to one space, strip the ends, and cut to at most `limit`
/// code points at a word boundary (hard cut when the first word is longer).
/// `None` when nothing but whitespace is left.
pub fn derive_slug(text: &str, limit: usize) -> Option<String> {
    let mut collapsed = String::with_capacity(text.len().min(limit * 4 + 8));
    let mut count = 0usize;
    let mut pending_space = false;
    // Collapse lazily and stop early: the cut needs at most limit + 1 code points.
    for c in text.chars() {
        if is_py_space(c) {
            pending_space = count > 0;
            continue;
        }
        if pending_space {
            collapsed.push(' ');
            count += 1;
            pending_space = false;
            if count > limit {
                break;
            }
        }
        collapsed.push(c);
        count += 1;
        if count > limit {
            break;
        }
    }
    if count == 0 {
        return None;
    }
    if count <= limit {
        return Some(collapsed);
    }
    let cut = collapsed
        .char_indices()
        .nth(limit)
        .map_or(collapsed.len(), |(i, _)| i);
    if collapsed[cut..].starts_with(' ') {
        collapsed.truncate(cut);
        return Some(collapsed);
    }
    match collapsed[..cut].rfind(' ') {
        Some(space) if space > 0 => collapsed.truncate(space),
        _ => collapsed.truncate(cut),
    }
    Some(collapsed)
}

#[cfg(test)]
mod tests {
    use super::derive_slug;

    /// The golden cases of `tests/fixtures/slug.json`, which pytest checks both backends
    /// against too.
    #[test]
    fn golden_cases() {
        let cases: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/slug.json")).unwrap();
        let cases = cases.as_array().unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let limit = usize::try_from(case["limit"].as_u64().unwrap()).unwrap();
            let expected = case["expected"].as_str();
            assert_eq!(derive_slug(text, limit).as_deref(), expected, "{case}");
        }
    }
}
