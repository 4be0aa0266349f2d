//! Snowflake identifiers: unquoted names are case-insensitive (stored upper case), double-quoted names
//! are taken exactly, with `""` standing for one `"`. Every name that reaches the emulator (DDL, channel
//! requests, configuration, inspection) goes through here, so they all resolve alike.

/// Resolves a name as Snowflake resolves an identifier: `"my Table"` → `my Table`, `orders` → `ORDERS`.
///
/// Unquoted names are upper-cased without further checks: the service's channel requests carry names
/// as plain strings, and Snowflake's ingest path upper-cases them the same way.
pub(crate) fn resolve(name: &str) -> String {
    let trimmed = name.trim();
    match unquote(trimmed) {
        Some(inner) => inner,
        None => trimmed.to_uppercase(),
    }
}

/// The inside of a double-quoted identifier with `""` unescaped, or `None` when `s` is not one.
fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    if inner.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            // Inside, a quote must be doubled; a lone one means this was not one identifier.
            if chars.next() != Some('"') {
                return None;
            }
        }
        out.push(c);
    }
    Some(out)
}

/// Is `name` a valid unquoted identifier (letters, digits, `_`, `$`, not starting with a digit or `$`)?
pub(crate) fn is_plain(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// How Snowflake prints a resolved name in messages: plain when it reads back the same, else quoted.
pub(crate) fn display(name: &str) -> String {
    if is_plain(name) && name.to_uppercase() == name {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_snowflake() {
        assert_eq!(resolve("orders"), "ORDERS");
        assert_eq!(resolve("\"orders\""), "orders");
        assert_eq!(resolve("\"a \"\"b\"\"\""), "a \"b\"");
        assert_eq!(resolve("\"\""), "\"\"");
        assert_eq!(resolve("\"a\"b\""), "\"A\"B\"");
        assert_eq!(resolve("ünï"), "ÜNÏ");
    }

    #[test]
    fn displays_round_trip() {
        for name in ["ORDERS", "orders", "a \"b\"", "1ST", "ÜNÏ", "A$B"] {
            assert_eq!(resolve(&display(name)), name);
        }
    }
}
