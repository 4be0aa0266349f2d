//! The destination file: read, decoded and checked up front, so a bad one stops the command with exit
//! status 2 before any service is called.
//!
//! Messages name the file and the field (`config.enableIceberg: expected a boolean, found a string`) and
//! never repeat a value from the file: it holds the private key.

use std::path::Path;

use serde_json::{Map, Value};
use snowpipe_manager::{Destination, DestinationConfig};

use crate::error::{CliError, usage};

/// The JSON type each field of the destination's `config` must have.
const CONFIG_FIELDS: &[(&str, Kind)] = &[
    ("account", Kind::String),
    ("warehouse", Kind::String),
    ("database", Kind::String),
    ("user", Kind::String),
    ("role", Kind::String),
    ("privateKey", Kind::String),
    ("privateKeyPassphrase", Kind::String),
    ("namespace", Kind::String),
    ("enableIceberg", Kind::Boolean),
];

/// Fields every call needs, with what to put there: a destination without one would fail every job.
const REQUIRED: &[(&str, &str)] = &[
    (
        "account",
        "the Snowflake account identifier, e.g. myorg-myaccount",
    ),
    ("user", "the Snowflake user the key pair belongs to"),
    ("database", "the database the tables go in"),
    (
        "privateKey",
        "the user's PKCS#8 private key, PEM (or give --private-key-file)",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Boolean,
}

impl Kind {
    fn matches(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Boolean => value.is_boolean(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Boolean => "a boolean (true or false)",
        }
    }
}

/// What a JSON value is, without its text.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads `--destination FILE`, puts in the key of `--private-key-file` when given (flags win over the
/// file), and checks that its config decodes and has every required field.
pub(crate) fn load(
    path: Option<&Path>,
    private_key_file: Option<&Path>,
    command: &str,
) -> Result<Destination, CliError> {
    let Some(path) = path else {
        return Err(usage(format!(
            "`{command}` needs --destination FILE (or SNOWPIPE_STREAMING_DESTINATION, or `destination` in the config file)"
        )));
    };
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the destination file {shown} (--destination): {e}"
        ))
    })?;
    let bad = |problem: String| {
        usage(format!(
            "the destination file {shown} (--destination): {problem}"
        ))
    };
    let mut value: Value = serde_json::from_str(&text).map_err(|e| bad(describe(&e)))?;
    let Value::Object(top) = &mut value else {
        return Err(bad(format!(
            "expected an object {{\"id\", \"workspaceId\", \"config\": {{...}}}}, found {}",
            kind_of(&value)
        )));
    };
    match top.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => {}
        Some(Value::String(_)) => {
            return Err(bad("`id` is empty; give the destination's id".to_owned()));
        }
        Some(other) => {
            return Err(bad(format!(
                "`id`: expected a string, found {}",
                kind_of(other)
            )));
        }
        None => return Err(bad("`id` is missing; give the destination's id".to_owned())),
    }
    if let Some(other) = top.get("workspaceId").filter(|v| !v.is_string()) {
        return Err(bad(format!(
            "`workspaceId`: expected a string, found {}",
            kind_of(other)
        )));
    }
    let config = top
        .entry("config")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(config) = config else {
        return Err(bad(format!(
            "`config`: expected an object {{account, warehouse, database, user, role, privateKey, privateKeyPassphrase, namespace, enableIceberg}}, found {}",
            kind_of(config)
        )));
    };
    for (field, kind) in CONFIG_FIELDS {
        match config.get(*field) {
            Some(value) if !kind.matches(value) => {
                return Err(bad(format!(
                    "`config.{field}`: expected {}, found {}",
                    kind.name(),
                    kind_of(value)
                )));
            }
            _ => {}
        }
    }
    if let Some(key_file) = private_key_file {
        let key = std::fs::read_to_string(key_file).map_err(|e| {
            usage(format!(
                "cannot read the private key file {} (--private-key-file): {e}",
                key_file.display()
            ))
        })?;
        config.insert("privateKey".to_owned(), Value::String(key));
    }
    for (field, what) in REQUIRED {
        let given = config
            .get(*field)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.trim().is_empty());
        if !given {
            let state = if config.contains_key(*field) {
                "empty"
            } else {
                "missing"
            };
            return Err(bad(format!(
                "`config.{field}` is {state}; give {what}. Nothing was sent"
            )));
        }
    }
    let destination: Destination = serde_json::from_value(value).map_err(|e| bad(describe(&e)))?;
    // Every field was checked above; this catches whatever the checks do not know of.
    if let Err(e) = serde_json::from_value::<DestinationConfig>(destination.config.clone()) {
        return Err(bad(format!("`config`: {}", describe(&e))));
    }
    Ok(destination)
}

/// A serde error without any value it may quote from the file: its category and position, and for a data
/// error the field it names when it names one.
fn describe(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = if error.line() == 0 {
        String::new()
    } else {
        format!(" at line {} column {}", error.line(), error.column())
    };
    match error.classify() {
        Category::Io => format!("read error{at}"),
        Category::Syntax => format!("invalid JSON{at}"),
        Category::Eof => format!("the JSON ends early{at}"),
        Category::Data => {
            let text = error.to_string();
            match text.split('`').nth(1) {
                Some(field) if text.contains("field `") => {
                    format!("{} `{field}`{at}", data_kind(&text))
                }
                _ => format!("a value has the wrong type{at}"),
            }
        }
    }
}

fn data_kind(text: &str) -> &'static str {
    if text.starts_with("missing field") {
        "missing field"
    } else if text.starts_with("duplicate field") {
        "duplicate field"
    } else {
        "bad field"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Destination, CliError> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        load(Some(file.path()), None, "upload")
    }

    const GOOD: &str = r#"{"id":"d1","workspaceId":"w","config":{"account":"A","user":"U","database":"D","privateKey":"K"}}"#;

    #[test]
    fn a_good_file_loads() {
        let d = load_text(GOOD).unwrap();
        assert_eq!(d.id, "d1");
    }

    #[test]
    fn bad_files_are_usage_errors_naming_the_field_and_quoting_nothing() {
        let check = |text: &str, expect: &str| {
            let error = load_text(text).unwrap_err();
            let message = error.to_string();
            assert_eq!(error.exit_code(), 2, "{message}");
            assert!(message.contains(expect), "{expect:?} in {message}");
            assert!(!message.contains("SECRET"), "{message}");
            assert!(!message.contains("line 0"), "{message}");
        };
        check("{not json SECRET", "invalid JSON at line 1");
        check(r#"{"workspaceId":"w"}"#, "`id` is missing");
        check(
            r#"{"id":"d","config":{"privateKey":"SECRET","enableIceberg":"SECRET"}}"#,
            "`config.enableIceberg`: expected a boolean (true or false), found a string",
        );
        check(
            r#"{"id":"d","config":"SECRET"}"#,
            "`config`: expected an object",
        );
        check(
            r#"{"id":"d","config":{"privateKey":["SECRET"]}}"#,
            "`config.privateKey`: expected a string, found an array",
        );
        check(
            r#"{"id":"d","config":{"account":"","user":"U","database":"D","privateKey":"SECRET"}}"#,
            "`config.account` is empty",
        );
        check(
            r#"{"id":"d","config":{"account":"A","database":"D","privateKey":"SECRET"}}"#,
            "`config.user` is missing",
        );
        check(
            r#"{"id":"d","config":{"account":"A","user":"U","privateKey":"SECRET"}}"#,
            "`config.database` is missing",
        );
        check(
            r#"{"id":"d","config":{"account":"A","user":"U","database":"D","privateKey":"  "}}"#,
            "`config.privateKey` is empty",
        );
        let missing = load(Some(Path::new("/nonexistent/d.json")), None, "poll").unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/d.json"));
        let none = load(None, None, "poll").unwrap_err();
        assert!(none.to_string().contains("--destination"));
    }

    #[test]
    fn the_key_file_wins_over_the_destinations_key() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            r#"{"id":"d","config":{"account":"A","user":"U","database":"D"}}"#,
        )
        .unwrap();
        let key = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key.path(), "PEM FROM FILE").unwrap();
        let d = load(Some(file.path()), Some(key.path()), "upload").unwrap();
        assert_eq!(d.config["privateKey"], "PEM FROM FILE");
        let error = load(Some(file.path()), Some(Path::new("/no/key.p8")), "upload").unwrap_err();
        assert!(error.to_string().contains("--private-key-file"), "{error}");
    }
}
