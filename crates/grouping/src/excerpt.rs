//! Bounded excerpts of input text for error messages, so a bad line never floods a log or a job's reason.

/// The most characters of input an error message quotes.
pub const EXCERPT_CHARS: usize = 40;

/// `s` cut to at most [`EXCERPT_CHARS`] characters, with `…` when something was cut.
pub(crate) fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// Up to [`EXCERPT_CHARS`] characters of `bytes` starting near byte `at` (a little before it, so the reader
/// sees what led up to it), decoded lossily, with `…` where something was cut.
pub(crate) fn excerpt_at(bytes: &[u8], at: usize) -> String {
    let start = at.saturating_sub(EXCERPT_CHARS / 2).min(bytes.len());
    // A generous byte window: EXCERPT_CHARS characters are at most 4 bytes each.
    let end = (start + EXCERPT_CHARS * 4).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..end]);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let cut = text.char_indices().nth(EXCERPT_CHARS);
    match cut {
        None => {
            out.push_str(&text);
            if end < bytes.len() {
                out.push('…');
            }
        }
        Some((i, _)) => {
            out.push_str(&text[..i]);
            out.push('…');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{EXCERPT_CHARS, excerpt, excerpt_at};

    #[test]
    fn short_text_is_quoted_whole() {
        assert_eq!(excerpt("abc"), "abc");
        assert_eq!(excerpt_at(b"abc", 1), "abc");
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn excerpt_at_shows_context_around_the_position() {
        let line = format!("{}XYZ{}", "a".repeat(100), "b".repeat(100));
        let cut = excerpt_at(line.as_bytes(), 100);
        assert!(cut.starts_with('…') && cut.ends_with('…'), "{cut}");
        assert!(cut.contains("aXYZb"), "{cut}");
        assert!(cut.chars().count() <= EXCERPT_CHARS + 2);
    }
}
