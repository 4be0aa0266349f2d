//! Reading an event file into a [`Batch`]: line by line, with a maximum line length, failing on the first
//! bad line but still collecting every job id the file holds.

mod decode;
mod lines;

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    sync::Arc,
};

use serde_json::value::RawValue;

use crate::{
    Batch, Event, LineProblem, ReadError, ReadErrorKind, Schema, UploadTime, batch::Grouper,
    event::EventError,
};
use lines::{Line, for_each_line};

/// The default maximum line length: 512 KiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 512 * 1024;

/// Large enough that lines rarely straddle a refill (those are copied), small enough to stay in cache.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// How to read an event file.
///
/// ```
/// use snowpipe_grouping::{ReadOptions, UploadTime};
/// use time::macros::datetime;
///
/// let options = ReadOptions::new(UploadTime::new(datetime!(2024-01-02 03:04:05 UTC))).with_max_line_bytes(1024);
/// assert_eq!(options.max_line_bytes(), 1024);
/// ```
#[derive(Debug, Clone)]
pub struct ReadOptions {
    max_line_bytes: usize,
    upload_time: UploadTime,
}

impl ReadOptions {
    /// Options with the default maximum line length ([`DEFAULT_MAX_LINE_BYTES`]); `upload_time` goes into
    /// `UUID_TS`.
    #[must_use]
    pub fn new(upload_time: UploadTime) -> Self {
        Self {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            upload_time,
        }
    }

    /// Sets the maximum line length in bytes (not counting the line break); longer lines are errors.
    #[must_use]
    pub fn with_max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line_bytes = max_line_bytes;
        self
    }

    /// The maximum line length in bytes.
    #[must_use]
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// The upload time written into `UUID_TS`.
    #[must_use]
    pub fn upload_time(&self) -> &UploadTime {
        &self.upload_time
    }
}

impl Batch {
    /// Reads the event file at `path`.
    ///
    /// # Errors
    /// [`ReadError`] when the file cannot be opened or read, holds no events, or has a bad line; it carries
    /// every job id that could be read from the file.
    pub fn read(path: &Path, options: &ReadOptions) -> Result<Self, ReadError> {
        let file = File::open(path).map_err(|source| {
            ReadError::new(
                ReadErrorKind::Open {
                    path: path.to_owned(),
                    source,
                },
                Vec::new(),
            )
        })?;
        Self::read_from(
            BufReader::with_capacity(READ_BUFFER_BYTES, file),
            path,
            options,
        )
    }

    /// Reads events from `reader`; `path` only names the source in errors.
    ///
    /// ```
    /// use std::path::Path;
    /// use snowpipe_grouping::{Batch, ReadOptions, UploadTime};
    /// use time::macros::datetime;
    ///
    /// let options = ReadOptions::new(UploadTime::new(datetime!(2024-01-02 03:04:05 UTC)));
    /// let file = br#"{"message":{"metadata":{"table":"T","columns":{"ID":"string"}},"data":{"ID":"a"}},"metadata":{"job_id":1}}
    /// {"message":{"metadata":{"table":"T"},"data":{}},"metadata":{"job_id":"2"}}
    /// {"metadata":{"job_id":3}}
    /// "#;
    /// let err = Batch::read_from(&file[..], Path::new("batch.json"), &options).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "event file batch.json, line 2: `metadata.job_id` must be an integer, found a string (\"2\"); \
    ///      the batch cannot be uploaded, abort it and fix what writes the file"
    /// );
    /// assert_eq!(err.job_ids(), [1, 3]);
    /// ```
    ///
    /// # Errors
    /// As [`Batch::read`].
    pub fn read_from<R: BufRead>(
        mut reader: R,
        path: &Path,
        options: &ReadOptions,
    ) -> Result<Self, ReadError> {
        let mut reading = Reading::new(options);
        let outcome = for_each_line(&mut reader, options.max_line_bytes, |number, line| {
            reading.line(number, line);
        });
        reading.finish(path, outcome)
    }
}

impl Event {
    /// Decodes one line of an event file (without its line break), setting `UUID_TS` to `upload_time` where
    /// the columns have it. Blank lines are not events.
    ///
    /// # Errors
    /// [`LineProblem`] saying what is wrong with the line.
    pub fn from_line(line: &[u8], upload_time: &UploadTime) -> Result<Self, LineProblem> {
        let parts = decode::decode(line)?;
        let columns = match parts.columns {
            Some(raw) => decode::parse_columns(raw)?,
            None => Schema::new(),
        };
        Self::new(
            parts.job_id,
            &parts.table,
            columns,
            parts.data.to_owned(),
            upload_time,
        )
        .map_err(|e| match e {
            EventError::EmptyTable => LineProblem::EmptyTable,
            EventError::DataNotAnObject { found } => LineProblem::WrongType {
                field: "message.data".to_owned(),
                expected: "an object",
                found,
            },
        })
    }
}

/// The state of one read: events so far, or, after the first bad line, only job ids.
struct Reading<'o> {
    options: &'o ReadOptions,
    grouper: Grouper,
    // Events with the same `columns` text share one parsed schema.
    columns: HashMap<Box<str>, Arc<Schema>>,
    no_columns: Arc<Schema>,
    job_ids: Vec<i64>,
    first_problem: Option<(u64, LineProblem)>,
}

impl<'o> Reading<'o> {
    fn new(options: &'o ReadOptions) -> Self {
        Self {
            options,
            grouper: Grouper::default(),
            columns: HashMap::new(),
            no_columns: Arc::new(Schema::new()),
            job_ids: Vec::new(),
            first_problem: None,
        }
    }

    fn line(&mut self, number: u64, line: Line<'_>) {
        match line {
            Line::Text(text) if text.trim_ascii().is_empty() => {}
            Line::Text(text) if self.first_problem.is_some() => {
                self.job_ids.extend(decode::recover_job_id(&[text]));
            }
            Line::Text(text) => {
                if let Err(problem) = self.event(text) {
                    self.fail(number, problem);
                    self.job_ids.extend(decode::recover_job_id(&[text]));
                }
            }
            Line::TooLong { len, head, tail } => {
                let problem = LineProblem::TooLong {
                    len,
                    max: self.options.max_line_bytes,
                };
                self.fail(number, problem);
                self.job_ids.extend(decode::recover_job_id(&[head, tail]));
            }
        }
    }

    fn event(&mut self, line: &[u8]) -> Result<(), LineProblem> {
        let parts = decode::decode(line)?;
        let columns = match parts.columns {
            None => self.no_columns.clone(),
            Some(raw) => match self.columns.get(raw.get()) {
                Some(schema) => schema.clone(),
                None => {
                    let schema = Arc::new(decode::parse_columns(raw)?);
                    self.columns.insert(raw.get().into(), schema.clone());
                    schema
                }
            },
        };
        let table = self.grouper.table_name(&parts.table);
        let event = Event::assemble(
            parts.job_id,
            table,
            columns,
            Cow::Borrowed::<RawValue>(parts.data),
            &self.options.upload_time,
        );
        self.job_ids.push(parts.job_id);
        self.grouper.push(event);
        Ok(())
    }

    fn fail(&mut self, number: u64, problem: LineProblem) {
        if self.first_problem.is_none() {
            self.first_problem = Some((number, problem));
            // Only job ids matter from here on; free the events now rather than at the end.
            self.grouper = Grouper::default();
        }
    }

    fn finish(
        self,
        path: &Path,
        outcome: Result<(), (u64, std::io::Error)>,
    ) -> Result<Batch, ReadError> {
        // The first thing that went wrong is reported: a bad line before a failed read wins.
        let kind = match (outcome, self.first_problem) {
            (_, Some((line, problem))) => ReadErrorKind::Line {
                path: path.to_owned(),
                line,
                problem,
            },
            (Err((line, source)), None) => ReadErrorKind::Read {
                path: path.to_owned(),
                line,
                source,
            },
            (Ok(()), None) if self.job_ids.is_empty() => ReadErrorKind::Empty {
                path: path.to_owned(),
            },
            (Ok(()), None) => return Ok(self.grouper.finish()),
        };
        let mut seen = HashSet::with_capacity(self.job_ids.len());
        let job_ids = self
            .job_ids
            .into_iter()
            .filter(|id| seen.insert(*id))
            .collect();
        Err(ReadError::new(kind, job_ids))
    }
}
