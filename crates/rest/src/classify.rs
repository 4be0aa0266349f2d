//! What an answer that is not a success means, by status and code together: the REST protocol's
//! classifier, apart from the retry policy ([`RetryConfig`](snowpipe_api::RetryConfig)) that decides when.
//!
//! Error bodies come in several shapes (`{"code","message"}`, `{"error_code"}`, a bare JSON string, a
//! numeric `status_code`, an empty or HTML body); the code is read from whichever is there. Messages are
//! for people: quoted in errors with secrets scrubbed, never matched.

use serde::Deserialize;
use snowpipe_api::{Excerpt, MissingObject};

/// What the caller of a call must do about a failed answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Reopen the channel and resume after its committed token (a stale continuation token, an invalid
    /// channel): nothing of the call was applied.
    Reopen,
    /// A malformed request or body: retrying sends the same thing.
    Permanent,
    /// The scoped token was refused: refresh it once, then it is [`Kind::Auth`].
    Unauthorized,
    /// Credentials, role or grants (a missing database included): fix the destination.
    Auth,
    /// Run the DDL path, then open again.
    Missing(MissingObject),
    /// The service is busy or failing (408, 429, 5xx): retry with backoff. For appends, anything but 429
    /// leaves the outcome unknown.
    Transient,
    /// The open must wait: uncommitted rows are being committed, or another open is under way.
    Wait,
}

/// Classifies a failed answer by its status and code, as the error table of `rest-protocol.md` says.
pub(crate) fn kind(status: u16, code: Option<&str>) -> Kind {
    match (status, code) {
        (400, Some("STALE_CONTINUATION_TOKEN_SEQUENCER")) => Kind::Reopen,
        (401, _) => Kind::Unauthorized,
        (403, _) => Kind::Auth,
        (
            404,
            Some(
                "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
                | "ERR_TABLE_DOES_NOT_EXIST_NOT_AUTHORIZED"
                | "ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            ),
        ) => Kind::Missing(MissingObject::Table),
        (404, Some("ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED")) => {
            Kind::Missing(MissingObject::Schema)
        }
        (404, Some("ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED")) => Kind::Auth,
        // A channel the service lost: opening it again creates it.
        (404, Some("ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED")) => Kind::Reopen,
        (408 | 429, _) => Kind::Transient,
        (409, Some("ERR_CHANNEL_HAS_UNCOMMITTED_DATA" | "ERR_OPEN_CHANNEL_IN_PROGRESS")) => {
            Kind::Wait
        }
        (409, _) => Kind::Reopen,
        (500..=599, _) if status != 501 => Kind::Transient,
        // 400 other, 404 without a known code, 413 (the client cuts below the limit: a bug), the rest.
        _ => Kind::Permanent,
    }
}

/// The code and message of an error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    /// The service's code, when the body names one.
    pub(crate) code: Option<String>,
    /// The message, or the start of the body, secrets scrubbed.
    pub(crate) message: Excerpt,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Shape {
    Object {
        #[serde(default)]
        code: Option<serde_json::Value>,
        #[serde(default)]
        error_code: Option<serde_json::Value>,
        #[serde(default)]
        status_code: Option<serde_json::Value>,
        #[serde(default)]
        message: Option<String>,
    },
    Text(String),
}

/// Reads an error answer's code from `code`, else `error_code`, else a bare JSON string, else a numeric
/// `status_code`; its message from `message`, else the body itself. A code holding one of `secrets` (an
/// answer echoing the request's token) is dropped: codes are quoted as they are, messages scrubbed.
pub(crate) fn error_body(body: &[u8], secrets: &[&str]) -> ErrorBody {
    let mut read = read_error_body(body, secrets);
    read.code = read
        .code
        .filter(|code| !secrets.iter().any(|s| !s.is_empty() && code.contains(s)));
    read
}

fn read_error_body(body: &[u8], secrets: &[&str]) -> ErrorBody {
    let code_text = |value: serde_json::Value| match value {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match serde_json::from_slice::<Shape>(body) {
        Ok(Shape::Object {
            code,
            error_code,
            status_code,
            message,
        }) => ErrorBody {
            code: code
                .and_then(code_text)
                .or_else(|| error_code.and_then(code_text))
                .or_else(|| status_code.and_then(code_text)),
            message: match message {
                Some(m) => Excerpt::redacted(m.as_bytes(), secrets),
                None => Excerpt::redacted(body, secrets),
            },
        },
        Ok(Shape::Text(text)) => ErrorBody {
            code: Some(text.trim().to_owned()).filter(|t| looks_like_code(t)),
            message: Excerpt::redacted(text.as_bytes(), secrets),
        },
        Err(_) => ErrorBody {
            code: None,
            message: Excerpt::redacted(body, secrets),
        },
    }
}

/// Whether a bare string is a code (`ERR_GENERAL_EXCEPTION_RETRY_REQUEST`) rather than a sentence.
fn looks_like_code(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_table_of_the_protocol_page() {
        use Kind::*;
        let cases: &[(u16, Option<&str>, Kind)] = &[
            (400, Some("STALE_CONTINUATION_TOKEN_SEQUENCER"), Reopen),
            (400, Some("ERR_INVALID_ROW"), Permanent),
            (400, None, Permanent),
            (401, None, Unauthorized),
            (403, Some("ERR_ROLE"), Auth),
            (
                404,
                Some("ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
                Missing(MissingObject::Table),
            ),
            (
                404,
                Some("ERR_TABLE_DOES_NOT_EXIST_NOT_AUTHORIZED"),
                Missing(MissingObject::Table),
            ),
            (
                404,
                Some("ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
                Missing(MissingObject::Schema),
            ),
            (
                404,
                Some("ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
                Auth,
            ),
            (404, None, Permanent),
            (408, None, Transient),
            (429, None, Transient),
            (500, Some("ERR_GENERAL_EXCEPTION_RETRY_REQUEST"), Transient),
            (501, None, Permanent),
            (503, None, Transient),
            (409, Some("ERR_CHANNEL_HAS_UNCOMMITTED_DATA"), Wait),
            (409, Some("ERR_OPEN_CHANNEL_IN_PROGRESS"), Wait),
            (409, Some("ERR_CHANNEL_MUST_BE_REOPENED"), Reopen),
            (
                409,
                Some("ERR_CHANNEL_MUST_BE_REOPENED_DUE_TO_ROW_SEQ_GAP"),
                Reopen,
            ),
            (409, None, Reopen),
            (413, None, Permanent),
        ];
        for &(status, code, expected) in cases {
            assert_eq!(kind(status, code), expected, "{status} {code:?}");
        }
    }

    #[test]
    fn every_body_shape_gives_its_code() {
        let code = |body: &str| error_body(body.as_bytes(), &[]).code;
        assert_eq!(
            code(r#"{"code":"ERR_X","message":"m"}"#).as_deref(),
            Some("ERR_X")
        );
        assert_eq!(code(r#"{"error_code":"ERR_Y"}"#).as_deref(), Some("ERR_Y"));
        assert_eq!(
            code(r#""ERR_GENERAL_EXCEPTION_RETRY_REQUEST""#).as_deref(),
            Some("ERR_GENERAL_EXCEPTION_RETRY_REQUEST")
        );
        assert_eq!(
            code(r#"{"status_code":429,"message":"slow down"}"#).as_deref(),
            Some("429")
        );
        assert_eq!(code(""), None);
        assert_eq!(code("<html><body>Bad gateway</body></html>"), None);
        assert_eq!(code(r#""Something went wrong""#), None);
    }

    #[test]
    fn a_code_that_echoes_a_secret_is_dropped() {
        for body in [
            r#"{"code":"ERR_abc.def.ghi","message":"token abc.def.ghi"}"#,
            r#"{"error_code":"abc.def.ghi"}"#,
        ] {
            let read = error_body(body.as_bytes(), &["abc.def.ghi"]);
            assert_eq!(read.code, None, "{body}");
            assert!(!read.message.as_str().contains("abc.def.ghi"), "{body}");
        }
        let kept = error_body(br#"{"code":"ERR_X"}"#, &["abc.def.ghi", ""]);
        assert_eq!(kept.code.as_deref(), Some("ERR_X"));
    }

    #[test]
    fn messages_are_quoted_with_secrets_scrubbed() {
        let body = error_body(
            br#"{"code":"ERR","message":"token abc.def.ghi is not valid"}"#,
            &["abc.def.ghi"],
        );
        assert!(!body.message.as_str().contains("abc.def.ghi"));
        assert!(body.message.as_str().contains("is not valid"));
    }
}
