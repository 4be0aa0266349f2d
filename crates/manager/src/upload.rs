//! Upload: read the batch, open the channels, convert what the tables cannot hold, insert discards then
//! rows, and hand out the import id.

use std::{
    collections::HashSet,
    io::BufRead,
    path::{Path, PathBuf},
};

use futures_util::{StreamExt as _, future, stream};
use snowpipe_api::Row;
use snowpipe_channels::{AppendOutcome, ChannelError, CommitWait, FailureKind};
use snowpipe_discards::{Coercer, DISCARDS_TABLE, discards_schema};
use snowpipe_grouping::{
    Batch, ReadErrorKind, ReadOptions, TableBatch, UploadTime, count_duplicates, counts_duplicates,
};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::{
    ImportEntry, Manager, UploadOutput,
    import::{EntrySegment, JobRuns, SCHEME},
    outcomes::{Outcomes, Verdict},
};

/// Where a batch is read from.
enum Source {
    /// A file, opened on the blocking thread.
    File(PathBuf),
    /// A reader, and the name it goes by.
    Reader(Box<dyn BufRead + Send>, PathBuf),
}

/// One table, ready to insert: its channel, its converted rows and its discard rows.
struct Prepared {
    /// The table's place in upload order, which the import id's entries keep.
    order: usize,
    table: String,
    /// Each row's job, in row order.
    job_ids: Vec<i64>,
    rows: Vec<Row>,
    /// Each row's values in bytes, as Snowflake bills them (for the billed-volume metric).
    value_bytes: Vec<u32>,
    discards: Vec<Row>,
    /// Each discard row's values in bytes.
    discard_bytes: Vec<u32>,
    /// Jobs whose rows cannot go into the table at all (a null into a `NOT NULL` column), and why.
    aborted: Vec<(i64, String)>,
}

/// Why a table's jobs did not go in.
struct TableFailure {
    job_ids: Vec<i64>,
    reason: String,
    verdict: Verdict,
    /// An auth-kind or backoff failure: the backoff must not be reset after this upload.
    auth: bool,
}

impl TableFailure {
    fn channel(job_ids: Vec<i64>, error: &ChannelError) -> Self {
        let kind = error.kind();
        Self {
            job_ids,
            reason: error.to_string(),
            verdict: if kind == FailureKind::Abort {
                Verdict::Aborted
            } else {
                Verdict::Failed
            },
            auth: kind == FailureKind::Auth || error.is_backoff(),
        }
    }

    fn failed(job_ids: Vec<i64>, reason: String) -> Self {
        Self {
            job_ids,
            reason,
            verdict: Verdict::Failed,
            auth: false,
        }
    }
}

/// Where a table stands once its channel has been opened.
enum Step {
    Failed(TableFailure),
    /// Prepared, with discard rows to insert first.
    Held(Prepared),
    Inserted(Prepared, Result<AppendOutcome, TableFailure>),
}

impl Manager {
    /// Uploads the batch in `file`. `job_ids` are the jobs the caller put in it (may be empty): any of them
    /// that the file does not hold is failed rather than lost.
    ///
    /// Every job comes out in exactly one of importing, failed and aborted; the import id in the answer is
    /// what [`Manager::poll`] takes.
    pub async fn upload(&self, file: &Path, job_ids: &[i64]) -> UploadOutput {
        let span = tracing::info_span!("upload", destination = %self.destination_id, file = %file.display());
        self.upload_inner(Source::File(file.to_path_buf()), job_ids)
            .instrument(span)
            .await
    }

    /// [`Manager::upload`] of a batch read from `reader` (standard input, a decompressing reader) rather
    /// than a file; `name` names it in reasons and logs. The reader is read on a blocking thread.
    pub async fn upload_from(
        &self,
        reader: Box<dyn BufRead + Send>,
        name: &Path,
        job_ids: &[i64],
    ) -> UploadOutput {
        let span = tracing::info_span!("upload", destination = %self.destination_id, file = %name.display());
        self.upload_inner(Source::Reader(reader, name.to_path_buf()), job_ids)
            .instrument(span)
            .await
    }

    async fn upload_inner(&self, source: Source, job_ids: &[i64]) -> UploadOutput {
        let mut outcomes = Outcomes::default();
        let finish = |outcomes: Outcomes| {
            let output = outcomes.finish(
                &self.destination_id,
                job_ids,
                "the job is not in the event file",
            );
            self.labels.jobs("importing", output.importing_count);
            self.labels.jobs("failed", output.failed_count);
            self.labels.jobs("aborted", output.abort_count);
            tracing::info!(
                importing = output.importing_count,
                failed = output.failed_count,
                aborted = output.abort_count,
                "upload done"
            );
            output
        };

        let upload_time = UploadTime::new(OffsetDateTime::from(self.clock.system_time()));
        let options =
            ReadOptions::new(upload_time.clone()).with_max_line_bytes(self.settings.max_line_bytes);
        // A file that cannot be read or holds nothing costs no call to the service (see below).
        let overlap = match &source {
            Source::File(file) => std::fs::metadata(file).is_ok_and(|m| m.len() > 0),
            Source::Reader(..) => true,
        } && self.config.is_ok();
        // Reading is blocking file I/O and parsing: keep it off the async workers.
        let started = std::time::Instant::now();
        let read = tokio::task::spawn_blocking(move || match source {
            Source::File(file) => Batch::read(&file, &options),
            Source::Reader(reader, name) => Batch::read_from(reader, &name, &options),
        });
        // The discards channel does not depend on the batch: it is opened while the file is read, so that
        // its round trips (on REST also finding the ingest host and taking a token) overlap the parse
        // rather than follow it. Against a remote account they are several network round trips. Should
        // the read fail, the opening is dropped where it stands: the jobs' outcome does not wait on it.
        let discards_columns = discards_schema();
        let mut discards = std::pin::pin!(
            self.channels
                .initialize_with_schema(DISCARDS_TABLE, &discards_columns)
        );
        let mut opened = None;
        let read = if overlap {
            let mut read = read;
            loop {
                tokio::select! {
                    read = &mut read => break read,
                    done = &mut discards, if opened.is_none() => opened = Some(done),
                }
            }
        } else {
            read.await
        };
        let batch = match read {
            Ok(Ok(batch)) => {
                tracing::debug!(
                    events = batch.len(),
                    tables = batch.tables().len(),
                    elapsed_ms = started.elapsed().as_millis(),
                    "batch read"
                );
                batch
            }
            Ok(Err(error)) => {
                let reason = error.to_string();
                // Only a bad line is the batch's own fault, which no retry mends. A file that cannot be opened
                // or read, or holds no events, says nothing against the jobs: they fail and come back.
                let verdict = if matches!(error.kind(), ReadErrorKind::Line { .. }) {
                    Verdict::Aborted
                } else {
                    Verdict::Failed
                };
                outcomes.reject(verdict, error.into_job_ids(), &reason);
                outcomes.reject(verdict, job_ids.iter().copied(), &reason);
                return finish(outcomes);
            }
            Err(join) => {
                outcomes.reject(
                    Verdict::Failed,
                    job_ids.iter().copied(),
                    &format!("reading the event file failed: {join}"),
                );
                return finish(outcomes);
            }
        };
        if let Err(reason) = &self.config {
            outcomes.reject(Verdict::Aborted, batch.job_ids(), reason);
            return finish(outcomes);
        }

        let max = self.settings.max_insert_request_bytes;
        let partition = batch.partition(max);
        for event in &partition.oversized {
            let reason = format!(
                "the event of job {} for table {} is {} bytes, over the {max}-byte insert request limit; it can never be uploaded",
                event.job_id(),
                event.table(),
                event.size()
            );
            outcomes.reject(Verdict::Aborted, [event.job_id()], &reason);
        }
        for event in &partition.overflowed {
            let reason = format!(
                "table {}: the batch's rows pass the {max}-byte insert request limit; the job is retried in a later batch to keep the table's order",
                event.table()
            );
            outcomes.reject(Verdict::Failed, [event.job_id()], &reason);
        }
        let tables = partition.included;
        if tables.is_empty() {
            return finish(outcomes);
        }

        let mut auth_failure = false;
        let discards = match opened {
            Some(done) => done,
            None => discards.await,
        };
        if let Err(error) = discards {
            let failure = TableFailure::channel(Vec::new(), &error);
            let reason = format!("opening the discards channel failed: {error}");
            for table in &tables {
                outcomes.reject(failure.verdict, table.job_ids(), &reason);
            }
            if !failure.auth {
                self.channels.reset_backoff();
            }
            return finish(outcomes);
        }

        // Where the cached channels stand, in bulk: a channel the backend lost or reports invalid is opened
        // anew below.
        let names: Vec<String> = tables.iter().map(|t| t.name().to_owned()).collect();
        if let Err(error) = self.channels.refresh(&names).await {
            let reason = error.to_string();
            for table in &tables {
                outcomes.reject(Verdict::Failed, table.job_ids(), &reason);
            }
            return finish(outcomes);
        }

        // A table without discard rows goes in as soon as its channel is ready; the others wait for the one
        // discards insert, so that a table's discard rows always land before its own rows. Channels are
        // opened ahead of the inserts under a separate, wider limit: opening waits on the service and the
        // warehouse, and should not wait for another table's insert to finish as well.
        let concurrency = self.settings.table_concurrency.max(1);
        let (opening, inserting) = (
            Semaphore::new(self.settings.channel_concurrency.max(1)),
            Semaphore::new(concurrency),
        );
        let steps: Vec<Step> =
            future::join_all(tables.into_iter().enumerate().map(|(order, table)| {
                let (opening, inserting, upload_time) = (&opening, &inserting, &upload_time);
                async move {
                    let prepared = {
                        // The semaphores are never closed; without a permit the table would only go unbounded.
                        let _permit = opening.acquire().await.ok();
                        self.prepare(order, table, upload_time).await
                    };
                    match prepared {
                        Err(failure) => Step::Failed(failure),
                        Ok(table) if !table.discards.is_empty() => Step::Held(table),
                        Ok(mut table) => {
                            let _permit = inserting.acquire().await.ok();
                            let result = self.insert_table(&mut table).await;
                            Step::Inserted(table, result)
                        }
                    }
                }
            }))
            .await;
        let (mut held, mut inserted) = (Vec::new(), Vec::new());
        for step in steps {
            match step {
                Step::Failed(failure) => {
                    auth_failure |= failure.auth;
                    outcomes.reject(failure.verdict, failure.job_ids, &failure.reason);
                }
                Step::Held(mut table) => {
                    for (job_id, reason) in std::mem::take(&mut table.aborted) {
                        outcomes.reject(Verdict::Aborted, [job_id], &reason);
                    }
                    held.push(table);
                }
                Step::Inserted(mut table, result) => {
                    for (job_id, reason) in std::mem::take(&mut table.aborted) {
                        outcomes.reject(Verdict::Aborted, [job_id], &reason);
                    }
                    inserted.push((table, result));
                }
            }
        }

        let held = self.insert_discards(held, &mut outcomes).await;
        let after_discards: Vec<(Prepared, Result<AppendOutcome, TableFailure>)> =
            stream::iter(held)
                .map(|mut table| async move {
                    let result = self.insert_table(&mut table).await;
                    (table, result)
                })
                .buffered(concurrency)
                .collect()
                .await;
        inserted.extend(after_discards);
        inserted.sort_by_key(|(table, _)| table.order);
        for (table, result) in inserted {
            match result {
                Ok(appended) => {
                    self.labels
                        .billed_bytes(&table.table, billed(&appended, &table.value_bytes));
                    for failed in &appended.failed {
                        outcomes.reject(
                            Verdict::Failed,
                            failed.rows.iter().map(|&row| table.job_ids[row]),
                            &failed.reason,
                        );
                    }
                    let segments: Vec<EntrySegment> = appended
                        .segments
                        .iter()
                        .map(|s| EntrySegment {
                            epoch: s.epoch,
                            first: s.first,
                            last: s.last,
                            jobs: JobRuns::of(table.job_ids[s.rows.clone()].iter().copied()),
                            fence: s.fence.and_then(|f| {
                                Some([
                                    i64::try_from(f.inserted).ok()?,
                                    i64::try_from(f.errors).ok()?,
                                    f.created_on_ms,
                                ])
                            }),
                        })
                        .collect();
                    let importing: Vec<i64> = appended
                        .segments
                        .iter()
                        .flat_map(|s| table.job_ids[s.rows.clone()].iter().copied())
                        .collect();
                    outcomes.importing(
                        importing.iter().copied(),
                        ImportEntry {
                            channel_id: appended.channel.id().to_owned(),
                            offset: appended
                                .segments
                                .last()
                                .map(|s| s.end_token.clone())
                                .unwrap_or_default(),
                            table: table.table.clone(),
                            count: importing.len() as u64,
                            uploaded_at: Some(upload_time.as_str().to_owned()),
                            scheme: Some(SCHEME.to_owned()),
                            segments,
                            backend: self.backend.map(str::to_owned),
                            ..ImportEntry::default()
                        },
                    );
                }
                Err(failure) => outcomes.reject(failure.verdict, failure.job_ids, &failure.reason),
            }
        }
        if !auth_failure {
            self.channels.reset_backoff();
        }
        finish(outcomes)
    }

    async fn prepare(
        &self,
        order: usize,
        table: TableBatch,
        upload_time: &UploadTime,
    ) -> Result<Prepared, TableFailure> {
        let name = table.name().to_owned();
        let channel = match self
            .channels
            .initialize_with_schema(&name, table.schema())
            .await
        {
            Ok(channel) => channel,
            Err(error) => return Err(TableFailure::channel(table.job_ids(), &error)),
        };
        if counts_duplicates(&name) {
            let duplicates = count_duplicates(table.events());
            self.labels.duplicates("batch", duplicates.repeated_ids);
            if duplicates.repeated_ids > 0 {
                tracing::warn!(
                    table = %name,
                    in_batch = duplicates.repeated_ids,
                    "duplicate events in the batch"
                );
            }
        }
        let mut coercer =
            Coercer::new(&channel.schema, upload_time).with_constraints(&channel.constraints);
        let mut job_ids = Vec::with_capacity(table.events().len());
        let mut rows = Vec::with_capacity(table.events().len());
        let mut value_bytes = Vec::with_capacity(table.events().len());
        let mut discards = Vec::new();
        let mut discard_bytes = Vec::new();
        let mut aborted = Vec::new();
        for event in table.into_events() {
            let job_id = event.job_id();
            let values = u32::try_from(event.value_bytes()).unwrap_or(u32::MAX);
            match coercer.coerce_checked(event) {
                Ok((row, discarded)) => {
                    job_ids.push(job_id);
                    // Grouping and coercion write rows as JSON objects; nothing parses them again on the way
                    // out.
                    rows.push(Row::from_serialized(row));
                    value_bytes.push(values);
                    for d in &discarded {
                        discards.push(Row::from(d.to_row()));
                        discard_bytes.push(u32::try_from(d.value_bytes()).unwrap_or(u32::MAX));
                    }
                }
                Err(violation) => aborted.push((job_id, violation)),
            }
        }
        Ok(Prepared {
            order,
            table: name,
            job_ids,
            rows,
            value_bytes,
            discards,
            discard_bytes,
            aborted,
        })
    }

    /// Appends the table's rows (moved out of it).
    async fn insert_table(&self, table: &mut Prepared) -> Result<AppendOutcome, TableFailure> {
        let rows = std::mem::take(&mut table.rows);
        let span = tracing::info_span!("insert", table = %table.table, rows = rows.len());
        self.channels
            .append(&table.table, rows)
            .instrument(span)
            .await
            .map_err(|error| TableFailure::failed(table.job_ids.clone(), error.to_string()))
    }

    /// Appends every table's discard rows, then waits for them to commit, before any of those tables' rows
    /// go out: so a table's jobs never succeed while the record of their discarded values is lost. Tables
    /// whose discard rows did not commit in time fail before their rows are sent (and their retry writes the
    /// discard rows again); the others go on.
    async fn insert_discards(
        &self,
        mut ready: Vec<Prepared>,
        outcomes: &mut Outcomes,
    ) -> Vec<Prepared> {
        let with_discards: Vec<usize> = (0..ready.len())
            .filter(|&i| !ready[i].discards.is_empty())
            .collect();
        if with_discards.is_empty() {
            return ready;
        }
        let rows: Vec<Row> = with_discards
            .iter()
            .flat_map(|&i| std::mem::take(&mut ready[i].discards))
            .collect();
        let bytes: Vec<u32> = with_discards
            .iter()
            .flat_map(|&i| std::mem::take(&mut ready[i].discard_bytes))
            .collect();
        let count = rows.len();
        let wait = self.settings.discards_commit_wait;
        let appended = self.channels.append(DISCARDS_TABLE, rows).await;
        if let Ok(appended) = &appended {
            self.labels
                .billed_bytes(DISCARDS_TABLE, billed(appended, &bytes));
        }
        let failure = match appended {
            Ok(appended) if !appended.failed.is_empty() => {
                let reasons: Vec<&str> =
                    appended.failed.iter().map(|f| f.reason.as_str()).collect();
                Some(format!(
                    "writing discard rows failed: {}",
                    reasons.join("; ")
                ))
            }
            Ok(appended) => {
                match self
                    .channels
                    .wait_for_commit(DISCARDS_TABLE, &appended.segments, wait)
                    .await
                {
                    Ok(CommitWait::Committed) => None,
                    Ok(CommitWait::Rejected(message)) => Some(format!(
                        "{message}: the discard rows were not all kept, so the table's rows were not sent and the jobs are retried"
                    )),
                    Ok(CommitWait::NotCommitted) => Some(format!(
                        "the discard rows did not commit within {}; the table's rows were not sent and the jobs are retried",
                        humanize(wait)
                    )),
                    Err(error) => Some(format!(
                        "whether the discard rows committed cannot be told ({error}); the table's rows were not sent and the jobs are retried"
                    )),
                }
            }
            Err(error) => Some(format!("writing discard rows failed: {error}")),
        };
        if let Some(reason) = failure {
            let failed: HashSet<usize> = with_discards.into_iter().collect();
            let mut kept = Vec::new();
            for (i, table) in ready.into_iter().enumerate() {
                if failed.contains(&i) {
                    outcomes.reject(Verdict::Failed, table.job_ids, &reason);
                } else {
                    kept.push(table);
                }
            }
            return kept;
        }
        self.labels.discards(count);
        ready
    }
}

/// A wait as people write it (`60s`, `1.5s`).
fn humanize(wait: std::time::Duration) -> String {
    format!("{}s", wait.as_secs_f64())
}

/// The billed bytes of the rows an append handed over (its segments), from each row's value bytes.
fn billed(appended: &AppendOutcome, value_bytes: &[u32]) -> u64 {
    appended
        .segments
        .iter()
        .flat_map(|s| &value_bytes[s.rows.clone()])
        .map(|&b| u64::from(b))
        .sum()
}
