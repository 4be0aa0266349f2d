//! Collects each job's outcome during an upload, so that every job ends in exactly one list.

use std::collections::{BTreeMap, HashSet};

use foldhash::fast::RandomState as FastHash;

use crate::{ImportEntry, ImportParameters, UploadOutput};

/// Whether failed jobs come back (failed) or never do (aborted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Failed,
    Aborted,
}

#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    importing: Vec<i64>,
    importing_tables: Vec<(i64, String)>,
    failed: Vec<(i64, String)>,
    aborted: Vec<(i64, String)>,
    entries: Vec<ImportEntry>,
}

impl Outcomes {
    pub(crate) fn importing(&mut self, job_ids: impl IntoIterator<Item = i64>, entry: ImportEntry) {
        for job_id in job_ids {
            self.importing.push(job_id);
            self.importing_tables.push((job_id, entry.table.clone()));
        }
        self.entries.push(entry);
    }

    pub(crate) fn entry(&mut self, entry: ImportEntry) {
        self.entries.push(entry);
    }

    pub(crate) fn reject(
        &mut self,
        verdict: Verdict,
        job_ids: impl IntoIterator<Item = i64>,
        reason: &str,
    ) {
        let list = match verdict {
            Verdict::Failed => &mut self.failed,
            Verdict::Aborted => &mut self.aborted,
        };
        list.extend(job_ids.into_iter().map(|id| (id, reason.to_owned())));
    }

    /// The answer, with each job of `expected` that no step decided failed with `unaccounted`. A job id
    /// that shows up more than once is reported once, in its first outcome.
    pub(crate) fn finish(
        self,
        destination_id: &str,
        expected: &[i64],
        unaccounted: &str,
    ) -> UploadOutput {
        // Sets of every job id of the batch: a fast hasher, since the ids are the caller's own numbers.
        let mut seen = HashSet::with_capacity_and_hasher(expected.len(), FastHash::default());
        let mut reasons = BTreeMap::new();
        let importing: Vec<i64> = self
            .importing
            .into_iter()
            .filter(|id| seen.insert(*id))
            .collect();
        let mut judged =
            HashSet::with_capacity_and_hasher(self.importing_tables.len(), FastHash::default());
        let importing_tables: Vec<(i64, String)> = self
            .importing_tables
            .into_iter()
            .filter(|(id, _)| judged.insert(*id))
            .collect();
        let mut keep = |list: Vec<(i64, String)>| -> (Vec<i64>, String) {
            let mut ids = Vec::new();
            let mut distinct: Vec<String> = Vec::new();
            for (id, reason) in list {
                if seen.insert(id) {
                    ids.push(id);
                    if !distinct.contains(&reason) {
                        distinct.push(reason.clone());
                    }
                    reasons.insert(id, reason);
                }
            }
            (ids, distinct.join("; "))
        };
        let (aborted, abort_reason) = keep(self.aborted);
        let mut failed_list = self.failed;
        failed_list.extend(expected.iter().map(|id| (*id, unaccounted.to_owned())));
        let (failed, failed_reason) = keep(failed_list);
        UploadOutput {
            destination_id: destination_id.to_owned(),
            importing_count: importing.len(),
            importing_parameters: (!self.entries.is_empty()).then_some(ImportParameters {
                import_id: self.entries,
            }),
            importing_job_ids: importing,
            failed_count: failed.len(),
            failed_job_ids: failed,
            failed_reason,
            abort_count: aborted.len(),
            aborted_job_ids: aborted,
            abort_reason,
            reasons,
            importing_tables,
        }
    }
}
