//! Upload: read the batch, open the channels, convert what the tables cannot hold, insert discards then
//! rows, and hand out the import id.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
};

use futures_util::{StreamExt as _, future, stream};
use snowpipe_api::Row;
use snowpipe_channels::{Channel, ChannelError, FailureKind};
use snowpipe_discards::{Coercer, DISCARDS_TABLE, discards_schema};
use snowpipe_grouping::{
    Batch, ReadErrorKind, ReadOptions, TableBatch, UploadTime, count_duplicates, counts_duplicates,
    rows_array_size,
};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::{
    ImportEntry, Manager, UploadOutput,
    outcomes::{Outcomes, Verdict},
};

/// One table, ready to insert: its channel, its converted rows and its discard rows.
struct Prepared {
    /// The table's place in upload order, which the import id's entries keep.
    order: usize,
    table: String,
    offset: i64,
    min_job_id: i64,
    job_ids: Vec<i64>,
    channel: Arc<Channel>,
    rows: Vec<Row>,
    discards: Vec<Row>,
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
    Inserted(Prepared, Result<Arc<Channel>, TableFailure>),
}

impl Manager {
    /// Uploads the batch in `file`. `job_ids` are the jobs the caller put in it (may be empty): any of them
    /// that the file does not hold is failed rather than lost.
    ///
    /// Every job comes out in exactly one of importing, failed and aborted; the import id in the answer is
    /// what [`Manager::poll`] takes.
    pub async fn upload(&self, file: &Path, job_ids: &[i64]) -> UploadOutput {
        let span = tracing::info_span!("upload", destination = %self.destination_id, file = %file.display());
        self.upload_inner(file.to_path_buf(), job_ids)
            .instrument(span)
            .await
    }

    async fn upload_inner(&self, file: PathBuf, job_ids: &[i64]) -> UploadOutput {
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
        // Reading is blocking file I/O and parsing: keep it off the async workers.
        let started = std::time::Instant::now();
        let read = tokio::task::spawn_blocking(move || Batch::read(&file, &options)).await;
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
        let discards_channel = match self
            .channels
            .initialize_with_schema(DISCARDS_TABLE, &discards_schema())
            .await
        {
            Ok(channel) => channel,
            Err(error) => {
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
        };

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
                Step::Held(table) => held.push(table),
                Step::Inserted(table, result) => inserted.push((table, result)),
            }
        }

        let (held, discards_entry) = self
            .insert_discards(held, &discards_channel, &upload_time, &mut outcomes)
            .await;
        let after_discards: Vec<(Prepared, Result<Arc<Channel>, TableFailure>)> =
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
                Ok(channel) => outcomes.importing(
                    table.job_ids.iter().copied(),
                    ImportEntry {
                        channel_id: channel.id().to_owned(),
                        offset: table.offset.to_string(),
                        table: table.table.clone(),
                        count: table.job_ids.len() as u64,
                        min_job_id: Some(table.min_job_id),
                        uploaded_at: Some(upload_time.as_str().to_owned()),
                        ..ImportEntry::default()
                    },
                ),
                Err(failure) => outcomes.reject(failure.verdict, failure.job_ids, &failure.reason),
            }
        }
        if let Some(entry) = discards_entry {
            outcomes.entry(entry);
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
        let before = self.channels.status_before(&channel).await;
        let committed = before
            .as_ref()
            .and_then(|s| s.committed.as_deref()?.parse::<i64>().ok());
        if counts_duplicates(&name) {
            let duplicates = count_duplicates(table.events(), committed);
            self.labels.duplicates("batch", duplicates.repeated_ids);
            self.labels.duplicates("offset", duplicates.committed);
            if duplicates.repeated_ids > 0 || duplicates.committed > 0 {
                tracing::warn!(
                    table = %name,
                    in_batch = duplicates.repeated_ids,
                    already_committed = duplicates.committed,
                    "duplicate events in the batch"
                );
            }
        }
        let (offset, min_job_id, job_ids) = (table.offset(), table.min_job_id(), table.job_ids());
        let mut coercer = Coercer::new(&channel.schema, upload_time);
        let mut rows = Vec::with_capacity(job_ids.len());
        let mut discards = Vec::new();
        for event in table.into_events() {
            let (row, discarded) = coercer.coerce_into(event);
            // Grouping and coercion write rows as JSON objects; nothing parses them again on the way out.
            rows.push(Row::from_serialized(row));
            discards.extend(discarded.iter().map(|d| Row::from(d.to_row())));
        }
        Ok(Prepared {
            order,
            table: name,
            offset,
            min_job_id,
            job_ids,
            channel,
            rows,
            discards,
        })
    }

    /// Inserts every table's discard rows, in requests within the size limit, before any table's rows. Tables
    /// whose discards could not be inserted fail; the others go on.
    /// Inserts the table's rows (moved out of it) at its offset.
    async fn insert_table(&self, table: &mut Prepared) -> Result<Arc<Channel>, TableFailure> {
        let rows = std::mem::take(&mut table.rows);
        let span = tracing::info_span!("insert", table = %table.table, offset = table.offset, min_job_id = table.min_job_id);
        self.channels
            .append(Arc::clone(&table.channel), rows, table.offset.to_string())
            .instrument(span)
            .await
            .map_err(|error| TableFailure::failed(table.job_ids.clone(), error.to_string()))
    }

    async fn insert_discards(
        &self,
        mut ready: Vec<Prepared>,
        channel: &Arc<Channel>,
        upload_time: &UploadTime,
        outcomes: &mut Outcomes,
    ) -> (Vec<Prepared>, Option<ImportEntry>) {
        let with_discards: Vec<usize> = (0..ready.len())
            .filter(|&i| !ready[i].discards.is_empty())
            .collect();
        let Some(offset) = with_discards.iter().map(|&i| ready[i].offset).max() else {
            return (ready, None);
        };
        let rows: Vec<Row> = with_discards
            .iter()
            .flat_map(|&i| std::mem::take(&mut ready[i].discards))
            .collect();
        let count = rows.len();
        let mut channel = Arc::clone(channel);
        let mut failure = None;
        for chunk in chunk_by_size(rows, self.settings.max_insert_request_bytes) {
            match self
                .channels
                .append(Arc::clone(&channel), chunk, offset.to_string())
                .await
            {
                Ok(used) => channel = used,
                Err(error) => {
                    failure = Some(error.to_string());
                    break;
                }
            }
        }
        if let Some(reason) = failure {
            let reason = format!("inserting discard rows failed: {reason}");
            let failed: HashSet<usize> = with_discards.into_iter().collect();
            let mut kept = Vec::new();
            for (i, table) in ready.into_iter().enumerate() {
                if failed.contains(&i) {
                    outcomes.reject(Verdict::Failed, table.job_ids, &reason);
                } else {
                    kept.push(table);
                }
            }
            return (kept, None);
        }
        self.labels.discards(count);
        let entry = ImportEntry {
            channel_id: channel.id().to_owned(),
            offset: offset.to_string(),
            table: DISCARDS_TABLE.to_owned(),
            count: count as u64,
            min_job_id: Some(offset),
            uploaded_at: Some(upload_time.as_str().to_owned()),
            ..ImportEntry::default()
        };
        (ready, Some(entry))
    }
}

/// Splits rows into requests whose rows array stays within `max` bytes (a row larger than `max` goes alone).
fn chunk_by_size(rows: Vec<Row>, max: usize) -> Vec<Vec<Row>> {
    let mut chunks = Vec::new();
    let mut current: Vec<Row> = Vec::new();
    let mut size = rows_array_size([]);
    for row in rows {
        let len = row.len();
        if !current.is_empty() && size + 1 + len > max {
            chunks.push(std::mem::take(&mut current));
            size = rows_array_size([]);
        }
        size += len + usize::from(!current.is_empty());
        current.push(row);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}
