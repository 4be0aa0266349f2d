//! Bounded, secret-scrubbed excerpts of answers, for error messages: enough for a person to see what the
//! service said, never a whole body and never a credential the request carried.

use std::fmt;

/// At most this many bytes of a response body are kept in an error.
pub const EXCERPT_LIMIT: usize = 512;

/// The start of a response body, bounded by [`EXCERPT_LIMIT`] bytes, for error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Excerpt(String);

impl Excerpt {
    /// Keeps at most [`EXCERPT_LIMIT`] bytes of `body`, cut at a character boundary, noting what was cut.
    pub fn new(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_LIMIT * 2)]);
        if text.len() <= EXCERPT_LIMIT && body.len() <= EXCERPT_LIMIT {
            return Self(text.into_owned());
        }
        let mut end = EXCERPT_LIMIT.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self(format!("{}… ({} bytes in all)", &text[..end], body.len()))
    }

    /// Like [`Excerpt::new`], but first replaces every occurrence of each secret (as written, and as
    /// written inside a JSON string) with `[REDACTED]`, for answers that might echo the request.
    pub fn redacted(body: &[u8], secrets: &[&str]) -> Self {
        let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return Self::new(body);
        }
        let mut text = String::from_utf8_lossy(body).into_owned();
        for secret in secrets {
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            for form in [secret, escaped.trim_matches('"')] {
                if !form.is_empty() {
                    text = text.replace(form, "[REDACTED]");
                }
            }
        }
        Self::new(text.as_bytes())
    }

    /// The excerpt's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("<empty body>")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_bodies_and_bounds_long_ones() {
        assert_eq!(Excerpt::new(b"oops").as_str(), "oops");
        assert_eq!(Excerpt::new(b"").to_string(), "<empty body>");
        let long = "é".repeat(1000);
        let excerpt = Excerpt::new(long.as_bytes());
        assert!(
            excerpt.as_str().len() < EXCERPT_LIMIT + 40,
            "{}",
            excerpt.as_str().len()
        );
        assert!(excerpt.as_str().ends_with("(2000 bytes in all)"));
    }

    #[test]
    fn redaction_covers_plain_and_json_escaped_secrets() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIabc\n-----END PRIVATE KEY-----";
        let escaped = serde_json::to_string(key).unwrap();
        let body = format!(r#"{{"privateKey":{escaped},"raw":"{key}","pass":"hunter2"}}"#);
        let excerpt = Excerpt::redacted(body.as_bytes(), &[key, "hunter2", ""]);
        assert!(!excerpt.as_str().contains("MIIabc"), "{excerpt}");
        assert!(!excerpt.as_str().contains("hunter2"), "{excerpt}");
        assert_eq!(
            excerpt.as_str().matches("[REDACTED]").count(),
            3,
            "{excerpt}"
        );
    }
}
