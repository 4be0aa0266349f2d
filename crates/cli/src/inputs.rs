//! The commands' inputs: JSON given inline or as `@FILE`, event files, and the jobs (job id and table) of
//! an event file.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{CliError, usage};

/// A JSON argument, inline or `@FILE`. Text that is not JSON is handed on as a JSON string, so the
/// manager answers it as the contract says (status 400 with the error) rather than the command refusing it.
pub(crate) fn json_arg(option: &str, text: &str) -> Result<Value, CliError> {
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read the file {path} ({option}): {e}")))?,
        None => text.to_owned(),
    };
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[derive(Deserialize)]
struct Line {
    message: Message,
    metadata: JobMetadata,
}

#[derive(Deserialize)]
struct Message {
    metadata: MessageMetadata,
}

#[derive(Deserialize)]
struct MessageMetadata {
    table: String,
}

#[derive(Deserialize)]
struct JobMetadata {
    job_id: i64,
}

/// (job id, table) of each line of an event file; blank lines are skipped, a line that is not an event is
/// an error naming it (line numbers count from 1).
pub(crate) fn jobs_of(option: &str, path: &Path) -> Result<Vec<(i64, String)>, CliError> {
    let shown = path.display();
    let file = std::fs::File::open(path)
        .map_err(|e| usage(format!("cannot read the jobs file {shown} ({option}): {e}")))?;
    let mut reader = BufReader::new(file);
    let mut jobs = Vec::new();
    let mut line = Vec::new();
    let mut number = 0_usize;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| usage(format!("cannot read the jobs file {shown} ({option}): {e}")))?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<Line>(&line) {
            Ok(parsed) => jobs.push((parsed.metadata.job_id, parsed.message.metadata.table)),
            Err(e) => {
                return Err(usage(format!(
                    "the jobs file {shown} ({option}), line {number}: not an event with `metadata.job_id` and `message.metadata.table` ({e})"
                )));
            }
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    const GOOD: &str = r#"{"message":{"metadata":{"table":"T","columns":{"ID":"string"}},"data":{"ID":"a"}},"metadata":{"job_id":7}}"#;

    #[test]
    fn jobs_are_read_line_by_line() {
        let f = file(&format!(
            "{GOOD}\n\n{}\n",
            GOOD.replace(":7", ":8").replace("\"T\"", "\"U\"")
        ));
        let jobs = jobs_of("--jobs", f.path()).unwrap();
        assert_eq!(jobs, [(7, "T".to_owned()), (8, "U".to_owned())]);
    }

    #[test]
    fn a_bad_line_is_named() {
        let f = file(&format!("{GOOD}\n\n{{\"nope\":1}}\n"));
        let error = jobs_of("--jobs", f.path()).unwrap_err();
        assert!(error.to_string().contains("line 3"), "{error}");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn json_arguments_are_inline_or_files() {
        assert_eq!(json_arg("--x", "[1]").unwrap(), serde_json::json!([1]));
        let f = file("{\"importId\": []}");
        let value = json_arg("--x", &format!("@{}", f.path().display())).unwrap();
        assert_eq!(value, serde_json::json!({"importId": []}));
        assert_eq!(json_arg("--x", "oops").unwrap(), serde_json::json!("oops"));
        let error = json_arg("--import-id", "@/nonexistent/f.json").unwrap_err();
        assert!(error.to_string().contains("--import-id"), "{error}");
    }
}
