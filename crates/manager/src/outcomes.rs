//! Collects each job's outcome during an upload, so that every job ends in exactly one list.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
};

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
    importing_tables: Vec<(i64, Arc<str>)>,
    failed: Vec<(i64, String)>,
    aborted: Vec<(i64, String)>,
    entries: Vec<ImportEntry>,
}

impl Outcomes {
    pub(crate) fn importing(&mut self, job_ids: impl IntoIterator<Item = i64>, entry: ImportEntry) {
        // One shared name for the table's jobs, not a copy each: a batch holds hundreds of thousands.
        let table: Arc<str> = entry.table.as_str().into();
        for job_id in job_ids {
            self.importing.push(job_id);
            self.importing_tables.push((job_id, table.clone()));
        }
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
        // Sized for every id it will hold (the caller's list is empty when the batch alone names the jobs),
        // so that it is not grown again and again on a large batch.
        let mut seen = HashSet::with_capacity_and_hasher(
            self.importing.len().max(expected.len()) + self.failed.len() + self.aborted.len(),
            FastHash::default(),
        );
        let mut reasons = BTreeMap::new();
        let importing: Vec<i64> = self
            .importing
            .into_iter()
            .filter(|id| seen.insert(*id))
            .collect();
        // Each importing job once, as its first table gave it; with no job id repeated (the usual batch),
        // that is the list as it stands.
        let importing_tables: Vec<(i64, Arc<str>)> = if importing.len()
            == self.importing_tables.len()
        {
            self.importing_tables
        } else {
            let mut judged =
                HashSet::with_capacity_and_hasher(self.importing_tables.len(), FastHash::default());
            self.importing_tables
                .into_iter()
                .filter(|(id, _)| judged.insert(*id))
                .collect()
        };
        // Reasons are borrowed until a job is kept: most of `expected` was decided already, and copying the
        // unaccounted reason for each of them would cost an allocation per job of the batch.
        let mut keep = |list: &mut dyn Iterator<Item = (i64, &str)>| -> (Vec<i64>, String) {
            let mut ids = Vec::new();
            let mut distinct: Vec<&str> = Vec::new();
            for (id, reason) in list {
                if seen.insert(id) {
                    ids.push(id);
                    if !distinct.contains(&reason) {
                        distinct.push(reason);
                    }
                    reasons.insert(id, reason.to_owned());
                }
            }
            (ids, distinct.join("; "))
        };
        let (aborted, abort_reason) =
            keep(&mut self.aborted.iter().map(|(id, r)| (*id, r.as_str())));
        let (failed, failed_reason) = keep(
            &mut self
                .failed
                .iter()
                .map(|(id, r)| (*id, r.as_str()))
                .chain(expected.iter().map(|id| (*id, unaccounted))),
        );
        UploadOutput {
            destination_id: destination_id.to_owned(),
            importing_count: importing.len(),
            importing_parameters: (!self.entries.is_empty()).then_some(ImportParameters {
                import_id: crate::ImportId(self.entries),
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
