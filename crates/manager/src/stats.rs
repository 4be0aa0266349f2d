//! Upload stats: each importing job's outcome, from the entries poll judged.

use std::collections::HashMap;

use crate::{FailedJobParameters, ImportEntry, Manager, StatsMetadata, UploadStatsOutput};

impl Manager {
    /// Each of `job_ids` (jobs that were importing), with its table, succeeded or failed: a job whose
    /// table's entry succeeded succeeded; a job whose entry failed failed with the entry's reason, unless the
    /// entry names its failed jobs (`failedJobs`, exactly; or, in entries of the scheme before tokens, a
    /// `failedJobIds` range) and the job is not among them.
    pub fn upload_stats(
        &self,
        failed_job_parameters: &FailedJobParameters,
        jobs: &[(i64, impl AsRef<str>)],
    ) -> UploadStatsOutput {
        upload_stats(failed_job_parameters, jobs)
    }
}

/// [`Manager::upload_stats`] without a manager: it needs no state.
pub fn upload_stats(
    failed_job_parameters: &FailedJobParameters,
    jobs: &[(i64, impl AsRef<str>)],
) -> UploadStatsOutput {
    let entries = failed_job_parameters.entries();
    // Looked up once per job of the batch: a fast hasher for table names.
    let mut by_table: HashMap<&str, Vec<&ImportEntry>, foldhash::fast::RandomState> =
        HashMap::default();
    for entry in entries {
        by_table
            .entry(entry.table.as_str())
            .or_default()
            .push(entry);
    }
    let mut metadata = StatsMetadata::default();
    for (job_id, table) in jobs {
        let table = table.as_ref();
        if let Some(aborted) = by_table
            .get(table)
            .and_then(|entries| entries.iter().find(|e| e.aborted_jobs.contains(*job_id)))
        {
            metadata.aborted_keys.push(*job_id);
            metadata
                .aborted_reasons
                .insert(*job_id, aborted.aborted_reason.clone());
            continue;
        }
        let verdict = match by_table.get(table) {
            None => Some(format!(
                "no import entry for table {table}: the job's outcome is unknown, retry it"
            )),
            Some(entries) => entries
                .iter()
                .filter(|e| {
                    e.failed
                        && if e.failed_jobs.is_empty() && e.aborted_jobs.is_empty() {
                            e.failed_job_ids.is_none_or(|range| range.contains(*job_id))
                        } else {
                            e.failed_jobs.contains(*job_id)
                        }
                })
                .map(|e| e.reason.clone())
                .next(),
        };
        match verdict {
            None => metadata.succeeded_keys.push(*job_id),
            Some(reason) => {
                metadata.failed_keys.push(*job_id);
                metadata.failed_reasons.insert(*job_id, reason);
            }
        }
    }
    UploadStatsOutput {
        status_code: 200,
        metadata,
        error: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn jobs_are_judged_by_their_tables_entry_and_range() {
        let params = json!([
            {"channelId": "a", "offset": "5", "table": "OK", "count": 2},
            {"channelId": "b", "offset": "9", "table": "LOST", "count": 3, "failed": true, "reason": "lost",
             "failedJobIds": {"start": 8, "end": 9}},
            {"channelId": "c", "offset": "12", "table": "BAD", "count": 1, "failed": true, "reason": "stuck"}
        ]);
        let jobs: Vec<(i64, String)> = [
            (4, "OK"),
            (5, "OK"),
            (7, "LOST"),
            (8, "LOST"),
            (9, "LOST"),
            (12, "BAD"),
            (13, "NONE"),
        ]
        .into_iter()
        .map(|(id, t)| (id, t.to_owned()))
        .collect();
        let out = upload_stats(&FailedJobParameters::decode(&params).unwrap(), &jobs);
        assert_eq!(out.status_code, 200);
        assert_eq!(out.metadata.succeeded_keys, [4, 5, 7]);
        assert_eq!(out.metadata.failed_keys, [8, 9, 12, 13]);
        assert_eq!(out.metadata.failed_reasons[&8], "lost");
        assert_eq!(out.metadata.failed_reasons[&12], "stuck");
        assert!(out.metadata.failed_reasons[&13].contains("no import entry"));
    }

    #[test]
    fn undecodable_parameters_are_a_decode_error() {
        let error = FailedJobParameters::decode(&json!({"nope": 1})).unwrap_err();
        assert!(error.to_string().contains("importId"), "{error}");
    }
}
