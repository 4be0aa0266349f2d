//! Errors from reading an event file: which file, which line, what was wrong, and which job ids could still
//! be read so the caller can abort them.

use std::{io, path::PathBuf};

/// Reading an event file failed; the batch cannot be uploaded.
///
/// Besides the first problem found, it carries every job id that could be read from the file (the lines
/// after the first bad one are still scanned for job ids), so the caller can abort exactly those jobs.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct ReadError {
    kind: ReadErrorKind,
    job_ids: Vec<i64>,
}

impl ReadError {
    pub(crate) fn new(kind: ReadErrorKind, job_ids: Vec<i64>) -> Self {
        Self { kind, job_ids }
    }

    /// What went wrong first.
    #[must_use]
    pub fn kind(&self) -> &ReadErrorKind {
        &self.kind
    }

    /// Every job id that could be read from the file, each once, in file order.
    #[must_use]
    pub fn job_ids(&self) -> &[i64] {
        &self.job_ids
    }

    /// The job ids, moved out.
    #[must_use]
    pub fn into_job_ids(self) -> Vec<i64> {
        self.job_ids
    }
}

/// The first thing that went wrong while reading an event file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The file could not be opened.
    #[error("cannot open event file {}: {source}; check that the file exists and is readable", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Reading failed part way; lines after `line` were not read.
    #[error("cannot read event file {} at line {line}: {source}; the batch cannot be read, abort it", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The 1-based line being read when reading failed.
        line: u64,
        /// What the operating system said.
        source: io::Error,
    },
    /// A line is not a valid event.
    #[error("event file {}, line {line}: {problem}; the batch cannot be uploaded, abort it and fix what writes the file", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The 1-based line number (blank lines count).
        line: u64,
        /// What was wrong with the line.
        problem: LineProblem,
    },
    /// The file holds no events (it is empty or has only blank lines).
    #[error("event file {} holds no events; the caller should not hand over an empty batch", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// What is wrong with one line of an event file. Quoted input is cut to at most [`crate::EXCERPT_CHARS`]
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// The line is longer than the maximum line length.
    #[error("the line is {len} bytes long, over the maximum of {max} bytes")]
    TooLong {
        /// The line's length in bytes, without its line break.
        len: u64,
        /// The maximum allowed.
        max: usize,
    },
    /// The line is not UTF-8.
    #[error("the line is not valid UTF-8 from byte {at} ({excerpt:?})")]
    NotUtf8 {
        /// The 0-based byte offset of the first invalid byte.
        at: usize,
        /// The text around it, decoded lossily.
        excerpt: String,
    },
    /// The line is not valid JSON.
    #[error("the line is not valid JSON: {message} at column {column} (near {excerpt:?})")]
    BrokenJson {
        /// The parser's message.
        message: String,
        /// The 1-based column (in bytes) where parsing failed.
        column: usize,
        /// The text around that column.
        excerpt: String,
    },
    /// A field the event needs is absent (or `null`).
    #[error("`{field}` is missing")]
    Missing {
        /// The field's path, such as `metadata.job_id`.
        field: String,
    },
    /// A field has the wrong kind of value.
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field's path, such as `metadata.job_id`; `line` for the line itself.
        field: String,
        /// What it must be, such as `an integer`.
        expected: &'static str,
        /// What it is, with an excerpt of the value.
        found: String,
    },
    /// `message.metadata.table` is an empty string.
    #[error("`message.metadata.table` is empty")]
    EmptyTable,
    /// A column's type in `message.metadata.columns` is not a warehouse type.
    #[error(
        "column {column:?} in `message.metadata.columns` has unknown type {type_name:?} \
         (expected int, bigint, float, string, text, datetime, boolean or json)"
    )]
    UnknownType {
        /// The column.
        column: String,
        /// The type name given.
        type_name: String,
    },
}
