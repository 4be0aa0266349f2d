//! The destination file: read and decoded up front, so a bad one stops the command with exit status 2
//! before any service is called.

use std::path::Path;

use snowpipe_manager::{Destination, DestinationConfig};

use crate::error::{CliError, usage};

/// Reads `--destination FILE` and checks that its config decodes. Messages name the file and never
/// repeat the file's text (it holds the private key).
pub(crate) fn load(path: Option<&Path>, command: &str) -> Result<Destination, CliError> {
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
    let destination: Destination = serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "cannot decode the destination file {shown} (--destination): {}; expected {{\"id\", \"workspaceId\", \"config\": {{...}}}}",
            describe(&e)
        ))
    })?;
    if let Err(e) = serde_json::from_value::<DestinationConfig>(destination.config.clone()) {
        return Err(usage(format!(
            "cannot decode the config of the destination file {shown} (--destination): {}; expected {{account, warehouse, database, user, role, privateKey, privateKeyPassphrase, namespace, enableIceberg}}",
            describe(&e)
        )));
    }
    Ok(destination)
}

/// A serde error without any value it may quote from the file: its category and position, and for a data
/// error the field it names when it names one.
fn describe(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {} column {}", error.line(), error.column());
    match error.classify() {
        Category::Io => format!("read error at {at}"),
        Category::Syntax => format!("invalid JSON at {at}"),
        Category::Eof => format!("the JSON ends early at {at}"),
        Category::Data => {
            let text = error.to_string();
            match text.split('`').nth(1) {
                Some(field) if text.contains("field `") => {
                    format!("{} `{field}` at {at}", data_kind(&text))
                }
                _ => format!("a value has the wrong type at {at}"),
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
        load(Some(file.path()), "upload")
    }

    #[test]
    fn a_good_file_loads() {
        let d =
            load_text(r#"{"id":"d1","workspaceId":"w","config":{"account":"A","privateKey":"K"}}"#)
                .unwrap();
        assert_eq!(d.id, "d1");
    }

    #[test]
    fn bad_files_are_usage_errors_that_quote_nothing() {
        let check = |text: &str, expect: &str| {
            let error = load_text(text).unwrap_err();
            let message = error.to_string();
            assert_eq!(error.exit_code(), 2, "{message}");
            assert!(message.contains(expect), "{message}");
            assert!(!message.contains("SECRET"), "{message}");
        };
        check("{not json SECRET", "invalid JSON");
        check(r#"{"workspaceId":"w"}"#, "missing field `id`");
        check(
            r#"{"id":"d","config":{"privateKey":"SECRET","enableIceberg":"SECRET"}}"#,
            "config",
        );
        check(r#"{"id":"d","config":"SECRET"}"#, "wrong type");
        check(
            r#"{"id":"d","config":{"privateKey":["SECRET"]}}"#,
            "wrong type",
        );
        let missing = load(Some(Path::new("/nonexistent/d.json")), "poll").unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/d.json"));
        let none = load(None, "poll").unwrap_err();
        assert!(none.to_string().contains("--destination"));
    }
}
