//! Bad event files: each names the file, the line and what was wrong, quotes no more than an excerpt, and
//! carries every job id the file holds.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
};

use common::{line, options};
use snowpipe_grouping::{Batch, EXCERPT_CHARS, LineProblem, ReadErrorKind, ReadOptions};

fn read(file: &str, options: &ReadOptions) -> snowpipe_grouping::ReadError {
    Batch::read_from(file.as_bytes(), Path::new("batch-7.json"), options).unwrap_err()
}

fn good(job_id: i64) -> String {
    line(job_id, "T", r#"{"ID":"string"}"#, r#"{"ID":"x"}"#)
}

fn line_problem(err: &snowpipe_grouping::ReadError) -> (u64, &LineProblem) {
    match err.kind() {
        ReadErrorKind::Line {
            line,
            problem,
            path,
        } => {
            assert_eq!(path, Path::new("batch-7.json"));
            (*line, problem)
        }
        other => panic!("not a line error: {other}"),
    }
}

#[test]
fn an_over_long_line_is_named_and_its_job_id_still_read() {
    let long = line(
        2,
        "T",
        "{}",
        &format!(r#"{{"BIG":"{}"}}"#, "x".repeat(5000)),
    );
    let file = [good(1), long.clone(), good(3)].join("\n");
    let err = read(&file, &options().with_max_line_bytes(1000));
    let (number, problem) = line_problem(&err);
    assert_eq!(number, 2);
    assert_eq!(
        *problem,
        LineProblem::TooLong {
            len: long.len() as u64,
            max: 1000
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "event file batch-7.json, line 2: the line is {} bytes long, over the maximum of 1000 bytes; \
             the batch cannot be uploaded, abort it and fix what writes the file",
            long.len()
        )
    );
    assert_eq!(err.job_ids(), [1, 2, 3]);
}

#[test]
fn the_default_limit_is_512_kib() {
    let at_limit = {
        let base = line(1, "T", "{}", r#"{"P":""}"#);
        line(
            1,
            "T",
            "{}",
            &format!(r#"{{"P":"{}"}}"#, "x".repeat(512 * 1024 - base.len())),
        )
    };
    assert_eq!(at_limit.len(), 512 * 1024);
    assert!(Batch::read_from(at_limit.as_bytes(), Path::new("f"), &options()).is_ok());
    let over = at_limit.replacen("\"P\":\"", "\"P\":\"y", 1);
    let err = read(&over, &options());
    assert!(matches!(
        line_problem(&err).1,
        LineProblem::TooLong { max: 524_288, .. }
    ));
}

#[test]
fn broken_json_is_named_with_a_bounded_excerpt() {
    let broken = format!(
        r#"{{"message":{{"metadata":{{"table":"T"}},"data":{{"A":"{}"#,
        "y".repeat(10_000)
    );
    let file = [good(10), good(11), broken, good(13)].join("\n");
    let err = read(&file, &options());
    let (number, problem) = line_problem(&err);
    assert_eq!(number, 3);
    let LineProblem::BrokenJson {
        message, excerpt, ..
    } = problem
    else {
        panic!("{problem:?}")
    };
    assert_eq!(message, "EOF while parsing a string");
    assert!(excerpt.chars().count() <= EXCERPT_CHARS + 2, "{excerpt}");
    assert!(err.to_string().len() < 400, "{err}");
    assert_eq!(err.job_ids(), [10, 11, 13]);
}

#[test]
fn a_job_id_given_as_a_string_is_refused() {
    let bad = r#"{"message":{"metadata":{"table":"T"},"data":{}},"metadata":{"job_id":"12"}}"#;
    let file = [good(1), bad.to_owned()].join("\n");
    let err = read(&file, &options());
    assert_eq!(
        line_problem(&err),
        (
            2,
            &LineProblem::WrongType {
                field: "metadata.job_id".into(),
                expected: "an integer",
                found: "a string (\"12\")".into()
            }
        )
    );
    // "12" is not a job id: only the good line's id can be aborted.
    assert_eq!(err.job_ids(), [1]);
}

#[test]
fn a_missing_table_is_refused() {
    let bad = r#"{"message":{"metadata":{"columns":{}},"data":{}},"metadata":{"job_id":5}}"#;
    let err = read(&[good(4), bad.to_owned(), good(6)].join("\n"), &options());
    assert_eq!(
        line_problem(&err),
        (
            2,
            &LineProblem::Missing {
                field: "message.metadata.table".into()
            }
        )
    );
    assert_eq!(err.job_ids(), [4, 5, 6]);
}

#[test]
fn an_unknown_column_type_names_the_line_and_the_type() {
    let bad = line(2, "T", r#"{"ID":"string","PRICE":"money"}"#, "{}");
    let err = read(&[good(1), bad].join("\n"), &options());
    assert_eq!(
        line_problem(&err),
        (
            2,
            &LineProblem::UnknownType {
                column: "PRICE".into(),
                type_name: "money".into()
            }
        )
    );
    assert_eq!(err.job_ids(), [1, 2]);
}

#[test]
fn only_the_first_problem_is_reported_and_job_ids_are_listed_once() {
    let file = [
        good(1),
        "nonsense".to_owned(),
        good(1),
        "{\"metadata\":{\"job_id\":2}".to_owned(),
        good(3),
    ]
    .join("\n");
    let err = read(&file, &options());
    assert_eq!(line_problem(&err).0, 2);
    assert_eq!(err.job_ids(), [1, 2, 3]);
}

#[test]
fn an_empty_file_is_an_error_without_job_ids() {
    for file in ["", "\n", "  \n\n\t\n"] {
        let err = read(file, &options());
        assert!(
            matches!(err.kind(), ReadErrorKind::Empty { .. }),
            "{file:?}: {err}"
        );
        assert_eq!(
            err.to_string(),
            "event file batch-7.json holds no events; the caller should not hand over an empty batch"
        );
        assert!(err.job_ids().is_empty());
    }
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("snowpipe-grouping-{}-{name}", std::process::id()))
}

#[test]
fn a_missing_file_is_named() {
    let path = temp_path("does-not-exist.json");
    let err = Batch::read(&path, &options()).unwrap_err();
    assert!(matches!(err.kind(), ReadErrorKind::Open { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot open event file {}: ", path.display())),
        "{text}"
    );
    assert!(
        text.ends_with("check that the file exists and is readable"),
        "{text}"
    );
    assert!(err.job_ids().is_empty());
}

#[test]
fn a_real_file_reads_like_a_buffer() {
    let path = temp_path("good.json");
    fs::write(&path, [good(1), good(2)].join("\n")).unwrap();
    let batch = Batch::read(&path, &options());
    fs::remove_file(&path).unwrap();
    assert_eq!(batch.unwrap().job_ids(), [1, 2]);
}

/// Yields `data`, then fails.
struct FailingAfter<'a>(&'a [u8]);

impl std::io::Read for FailingAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::other("device went away"));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn a_failed_read_names_the_line_and_keeps_the_job_ids_read_so_far() {
    let file = format!("{}\n{}\n", good(1), good(2));
    let reader = std::io::BufReader::new(FailingAfter(file.as_bytes()));
    let err = Batch::read_from(reader, Path::new("batch-7.json"), &options()).unwrap_err();
    let ReadErrorKind::Read { line, .. } = err.kind() else {
        panic!("{err}")
    };
    assert_eq!(*line, 3);
    assert_eq!(
        err.to_string(),
        "cannot read event file batch-7.json at line 3: device went away; the batch cannot be read, abort it"
    );
    assert_eq!(err.job_ids(), [1, 2]);

    // A bad line before the failed read is the error reported.
    let file = format!("{}\nnot json\n", good(1));
    let reader = std::io::BufReader::new(FailingAfter(file.as_bytes()));
    let err = Batch::read_from(reader, Path::new("batch-7.json"), &options()).unwrap_err();
    assert_eq!(line_problem(&err).0, 2);
    assert_eq!(err.job_ids(), [1]);
}
