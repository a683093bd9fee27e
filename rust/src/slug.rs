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

    #[test]
    fn whole_text_when_short() {
        assert_eq!(
            derive_slug("  hello \n\t world  ", 50).as_deref(),
            Some("hello world")
        );
        assert_eq!(derive_slug(" \u{3000}\u{1c} ", 50), None);
        assert_eq!(derive_slug("", 50), None);
    }

    #[test]
    fn cuts_at_word_boundary() {
        let text = "  Please   summarize the quarterly report for the board meeting tomorrow  ";
        assert_eq!(
            derive_slug(text, 50).as_deref(),
            Some("Please summarize the quarterly report for the")
        );
        assert_eq!(derive_slug("aaaa bbbb", 4).as_deref(), Some("aaaa"));
        assert_eq!(derive_slug("aaa bbbb", 4).as_deref(), Some("aaa"));
    }

    #[test]
    fn hard_cut_for_a_long_first_word() {
        assert_eq!(
            derive_slug(&"x".repeat(60), 50).unwrap().chars().count(),
            50
        );
        assert_eq!(derive_slug("ééééé", 3).as_deref(), Some("ééé"));
        assert_eq!(derive_slug(" abcdef", 3).as_deref(), Some("abc"));
    }

    #[test]
    fn python_whitespace_set() {
        assert_eq!(
            derive_slug("a\u{1c}b\u{85}c\u{a0}d", 50).as_deref(),
            Some("a b c d")
        );
    }
}
