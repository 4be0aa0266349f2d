//! Reading an event file into a [`Batch`]: line by line, with a maximum line length, failing on the first
//! bad line but still collecting every job id the file holds.

mod chunk;
mod decode;
mod lines;

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{self, BufRead, BufReader},
    num::NonZeroUsize,
    ops::{ControlFlow, Range},
    path::Path,
    sync::{Arc, mpsc},
    thread,
};

use bytes::Bytes;

use crate::{
    Batch, Event, LineProblem, ReadError, ReadErrorKind, Schema, UploadTime, batch::Grouper,
};
use chunk::{CHUNK_BYTES, Chunk};
use lines::{Line, for_each_line};

/// The default maximum line length: 512 KiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 512 * 1024;

/// Large enough that lines rarely straddle a refill (those are copied), small enough to stay in cache.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// The most threads a read decodes lines on by default: past this, one thread splitting lines is the
/// bottleneck.
const MAX_DEFAULT_THREADS: usize = 4;

/// How to read an event file.
///
/// ```
/// use snowpipe_grouping::{ReadOptions, UploadTime};
/// use time::macros::datetime;
///
/// let options = ReadOptions::new(UploadTime::new(datetime!(2024-01-02 03:04:05 UTC)))
///     .with_max_line_bytes(1024)
///     .with_threads(1);
/// assert_eq!(options.max_line_bytes(), 1024);
/// assert_eq!(options.threads(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct ReadOptions {
    max_line_bytes: usize,
    upload_time: UploadTime,
    threads: usize,
    chunk_bytes: usize,
}

impl ReadOptions {
    /// Options with the default maximum line length ([`DEFAULT_MAX_LINE_BYTES`]); `upload_time` goes into
    /// `UUID_TS`.
    #[must_use]
    pub fn new(upload_time: UploadTime) -> Self {
        Self {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            upload_time,
            threads: thread::available_parallelism()
                .map_or(1, NonZeroUsize::get)
                .min(MAX_DEFAULT_THREADS),
            chunk_bytes: CHUNK_BYTES,
        }
    }

    /// Sets how many threads decode lines (at least one; by default the machine's cores, at most four).
    /// The result does not depend on it: events keep their file order whatever the number.
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// How many threads decode lines.
    #[must_use]
    pub fn threads(&self) -> usize {
        self.threads
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
        let (reading, outcome) = if options.threads <= 1 {
            let (mut decoder, mut reading) = (Decoder::new(options), Reading::default());
            let mut decoded = Decoded::default();
            let outcome = for_each_chunk(&mut reader, options, |mut chunk| {
                decoder.decode(&chunk, &mut decoded);
                reading.take(&mut decoded);
                chunk.clear();
                ControlFlow::Continue(Some(chunk))
            });
            (reading, outcome)
        } else {
            read_in_parallel(&mut reader, options)
        };
        reading.finish(path, outcome)
    }
}

/// Splits lines into chunks on this thread and hands them to `f`, which answers whether to go on and may
/// hand back an emptied chunk to fill next (reusing chunks spares the page faults of fresh buffers).
fn for_each_chunk<R: BufRead>(
    reader: &mut R,
    options: &ReadOptions,
    mut f: impl FnMut(Chunk) -> ControlFlow<(), Option<Chunk>>,
) -> Result<(), (u64, io::Error)> {
    let mut chunk = Chunk::with_capacity(options.chunk_bytes);
    let mut open = true;
    let outcome = for_each_line(reader, options.max_line_bytes, |number, line| {
        if !open {
            return;
        }
        chunk.push(number, line);
        if chunk.len() >= options.chunk_bytes {
            let full = std::mem::take(&mut chunk);
            match f(full) {
                ControlFlow::Continue(spare) => {
                    chunk = spare.unwrap_or_else(|| Chunk::with_capacity(options.chunk_bytes));
                }
                ControlFlow::Break(()) => open = false,
            }
        }
    });
    if open && !chunk.is_empty() {
        let _ = f(chunk);
    }
    outcome
}

/// Reads on this thread, decodes on `options.threads` threads and groups on one more.
///
/// Chunk `i` goes to decoder `i % threads`, and the grouping thread takes results in the same rotation, so
/// results come back in file order without any reordering buffer. Bounded queues keep only a few chunks in
/// flight, whatever the file's size.
fn read_in_parallel<R: BufRead>(
    reader: &mut R,
    options: &ReadOptions,
) -> (Reading, Result<(), (u64, io::Error)>) {
    let threads = options.threads;
    thread::scope(|scope| {
        let mut to_decoders = Vec::with_capacity(threads);
        let mut from_decoders = Vec::with_capacity(threads);
        // Decoded chunks come back emptied, to be filled again.
        let (spare_tx, spare_rx) = mpsc::channel::<Chunk>();
        // And the grouping thread hands each decoder back its emptied results, for the same reason.
        let mut recycled_to = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(1);
            let (decoded_tx, decoded_rx) = mpsc::sync_channel::<Decoded>(2);
            let (recycled_tx, recycled_rx) = mpsc::channel::<Decoded>();
            let spare_tx = spare_tx.clone();
            scope.spawn(move || {
                let mut decoder = Decoder::new(options);
                for mut chunk in chunk_rx {
                    let mut decoded = recycled_rx.try_recv().unwrap_or_default();
                    decoder.decode(&chunk, &mut decoded);
                    if decoded_tx.send(decoded).is_err() {
                        break;
                    }
                    chunk.clear();
                    // The reader may have finished and gone: then the chunk is simply freed.
                    let _ = spare_tx.send(chunk);
                }
            });
            to_decoders.push(chunk_tx);
            from_decoders.push(decoded_rx);
            recycled_to.push(recycled_tx);
        }
        let grouping = scope.spawn(move || {
            let mut reading = Reading::default();
            // A decoder that has hung up had no further chunk, and neither had any after it.
            for next in (0..threads).cycle() {
                match from_decoders[next].recv() {
                    Ok(mut decoded) => {
                        reading.take(&mut decoded);
                        // A decoder that has finished no longer takes them back: then they are freed.
                        let _ = recycled_to[next].send(decoded);
                    }
                    Err(mpsc::RecvError) => break,
                }
            }
            reading
        });
        let mut next = 0;
        let outcome = for_each_chunk(reader, options, |chunk| {
            // Only a decoder that panicked hangs up early; the scope then re-raises its panic.
            if to_decoders[next].send(chunk).is_err() {
                return ControlFlow::Break(());
            }
            next = (next + 1) % threads;
            ControlFlow::Continue(spare_rx.try_recv().ok())
        });
        drop(to_decoders);
        let reading = grouping
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (reading, outcome)
    })
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
        let mut row = Vec::with_capacity(line.len());
        let (mut event, span) = Self::from_entries(
            &mut row,
            parts.job_id,
            parts.table.as_ref().into(),
            Arc::new(columns),
            &parts.data,
            upload_time,
        );
        event.attach(&Bytes::from(row), span);
        Ok(event)
    }
}

/// One thread's decoding state: the schemas and table names it has seen, shared by its events.
struct Decoder<'o> {
    options: &'o ReadOptions,
    // Events with the same `columns` text share one parsed schema. Every line hashes its `columns` text (a
    // few hundred bytes), so the hasher is a fast one rather than SipHash: the keys come from the file, but a
    // collision costs a comparison, not correctness.
    columns: HashMap<Box<str>, Arc<Schema>, foldhash::fast::RandomState>,
    no_columns: Arc<Schema>,
    tables: HashMap<Box<str>, Arc<str>, foldhash::fast::RandomState>,
}

/// What a chunk decoded to: its events up to its first bad line, and the job id of every line.
#[derive(Default)]
struct Decoded {
    events: Vec<Event>,
    // Where each event's row lies in the chunk's row buffer, until the buffer is complete.
    spans: Vec<Range<usize>>,
    job_ids: Vec<i64>,
    problem: Option<(u64, LineProblem)>,
}

impl<'o> Decoder<'o> {
    fn new(options: &'o ReadOptions) -> Self {
        Self {
            options,
            columns: HashMap::default(),
            no_columns: Arc::new(Schema::new()),
            tables: HashMap::default(),
        }
    }

    /// Decodes `chunk` into `decoded`, which is emptied first (its buffers are reused).
    fn decode(&mut self, chunk: &Chunk, decoded: &mut Decoded) {
        let lines = chunk.line_count();
        decoded.events.clear();
        decoded.events.reserve(lines);
        decoded.spans.clear();
        decoded.spans.reserve(lines);
        decoded.job_ids.clear();
        decoded.job_ids.reserve(lines);
        decoded.problem = None;
        // The chunk's rows go into one buffer, shared by its events once it is complete: rows are shorter
        // than their lines, so the chunk's size is room enough.
        let mut rows = Vec::with_capacity(chunk.len());
        for (number, line) in chunk.lines() {
            match line {
                Line::Text(text) if text.trim_ascii().is_empty() => {}
                // After a bad line only job ids matter: the batch will not be uploaded.
                Line::Text(text) if decoded.problem.is_some() => {
                    decoded.job_ids.extend(decode::recover_job_id(&[text]));
                }
                Line::Text(text) => match self.event(text, &mut rows) {
                    Ok((event, span)) => {
                        decoded.job_ids.push(event.job_id());
                        decoded.events.push(event);
                        decoded.spans.push(span);
                    }
                    Err(problem) => {
                        decoded.problem = Some((number, problem));
                        decoded.job_ids.extend(decode::recover_job_id(&[text]));
                    }
                },
                Line::TooLong { len, head, tail } => {
                    let problem = LineProblem::TooLong {
                        len,
                        max: self.options.max_line_bytes,
                    };
                    decoded.problem.get_or_insert((number, problem));
                    decoded
                        .job_ids
                        .extend(decode::recover_job_id(&[head, tail]));
                }
            }
        }
        rows.shrink_to_fit();
        let rows = Bytes::from(rows);
        for (event, span) in decoded.events.iter_mut().zip(decoded.spans.drain(..)) {
            event.attach(&rows, span);
        }
    }

    /// Decodes one line, writing its row at the end of `rows`.
    fn event(
        &mut self,
        line: &[u8],
        rows: &mut Vec<u8>,
    ) -> Result<(Event, Range<usize>), LineProblem> {
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
        let table = match self.tables.get(parts.table.as_ref()) {
            Some(name) => name.clone(),
            None => {
                let name: Arc<str> = parts.table.as_ref().into();
                self.tables
                    .insert(parts.table.as_ref().into(), name.clone());
                name
            }
        };
        Ok(Event::from_entries(
            rows,
            parts.job_id,
            table,
            columns,
            &parts.data,
            &self.options.upload_time,
        ))
    }
}

/// The state of one read, fed decoded chunks in file order: events so far, or, after the first bad line,
/// only job ids.
#[derive(Default)]
struct Reading {
    grouper: Grouper,
    job_ids: Vec<i64>,
    first_problem: Option<(u64, LineProblem)>,
}

impl Reading {
    /// Takes what `decoded` holds, leaving its buffers empty.
    fn take(&mut self, decoded: &mut Decoded) {
        self.job_ids.append(&mut decoded.job_ids);
        if self.first_problem.is_some() {
            return;
        }
        match decoded.problem.take() {
            Some(problem) => {
                self.first_problem = Some(problem);
                // Only job ids matter from here on; free the events now rather than at the end.
                self.grouper = Grouper::default();
            }
            None => {
                for event in decoded.events.drain(..) {
                    self.grouper.push(event);
                }
            }
        }
    }

    fn finish(
        self,
        path: &Path,
        outcome: Result<(), (u64, io::Error)>,
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;
    use time::macros::datetime;

    use super::{Batch, ReadOptions};
    use crate::UploadTime;

    /// Everything a read answers, in a comparable form.
    type Summary = Result<Vec<(String, i64, String, Vec<(i64, String)>)>, (String, Vec<i64>)>;

    fn summary(file: &[u8], threads: usize, chunk_bytes: usize) -> Summary {
        let mut options = ReadOptions::new(UploadTime::new(datetime!(2024-01-02 03:04:05 UTC)))
            .with_max_line_bytes(300)
            .with_threads(threads);
        options.chunk_bytes = chunk_bytes;
        match Batch::read_from(file, Path::new("f.json"), &options) {
            Ok(batch) => Ok(batch
                .tables()
                .iter()
                .map(|t| {
                    let events = t
                        .events()
                        .iter()
                        .map(|e| (e.job_id(), e.data().to_owned()))
                        .collect();
                    (
                        t.name().to_owned(),
                        t.offset(),
                        format!("{:?}", t.schema()),
                        events,
                    )
                })
                .collect()),
            Err(e) => Err((e.to_string(), e.job_ids().to_vec())),
        }
    }

    fn line(kind: u8, job: i64) -> String {
        let table = ["A", "B", "C"][usize::try_from(job % 3).unwrap_or(0)];
        match kind {
            0 | 1 => format!(
                r#"{{"message":{{"metadata":{{"table":"{table}","columns":{{"ID":"string","N":"int"{}}}}},"data":{{"ID":"e{job}","N":{job}}}}},"metadata":{{"job_id":{job}}}}}"#,
                if kind == 0 {
                    r#","UUID_TS":"datetime""#
                } else {
                    ""
                }
            ),
            2 => String::new(),
            3 => format!(r#"{{"message":{{"data":{{}}}},"metadata":{{"job_id":{job}}}}}"#),
            _ => format!(
                r#"{{"message":{{"metadata":{{"table":"{table}"}},"data":{{"X":"{}"}}}},"metadata":{{"job_id":{job}}}}}"#,
                "x".repeat(400)
            ),
        }
    }

    #[test]
    fn several_threads_read_a_file_as_one_does() {
        let file: String = (1..=500)
            .map(|job| line(u8::try_from(job % 2).unwrap_or(0), job) + "\n")
            .collect();
        let one = summary(file.as_bytes(), 1, super::CHUNK_BYTES);
        assert_eq!(one.as_ref().map(Vec::len), Ok(3));
        for (threads, chunk_bytes) in [(2, 1), (3, 700), (4, 4096)] {
            assert_eq!(
                summary(file.as_bytes(), threads, chunk_bytes),
                one,
                "{threads} threads, {chunk_bytes}-byte chunks"
            );
        }
    }

    proptest! {
        #[test]
        fn the_result_does_not_depend_on_threads_or_chunks(
            kinds in prop::collection::vec(prop_oneof![6 => Just(0u8), 6 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8), 1 => Just(4u8)], 0..60),
            threads in 2usize..5,
            chunk_bytes in 1usize..2000,
        ) {
            let file: String = kinds
                .iter()
                .zip(1..)
                .map(|(&kind, job)| line(kind, job) + "\n")
                .collect();
            prop_assert_eq!(
                summary(file.as_bytes(), threads, chunk_bytes),
                summary(file.as_bytes(), 1, super::CHUNK_BYTES)
            );
        }
    }
}
