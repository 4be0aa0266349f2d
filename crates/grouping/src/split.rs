//! Splitting a table's events by the maximum insert request size, and partitioning a whole batch into what
//! is uploaded, what is retried later and what can never be uploaded.

use crate::{Batch, Event, TableBatch};

/// The default maximum insert request size: 24 MiB.
pub const DEFAULT_MAX_INSERT_BYTES: usize = 24 * 1024 * 1024;

/// The size of the rows array `[row,row,…]` holding rows of the given sizes: the brackets, the rows and a
/// comma between each two.
///
/// ```
/// use snowpipe_grouping::rows_array_size;
///
/// assert_eq!(rows_array_size([]), 2); // []
/// assert_eq!(rows_array_size([5]), 7); // [12345]
/// assert_eq!(rows_array_size([5, 3]), 11); // [12345,123]
/// ```
pub fn rows_array_size(sizes: impl IntoIterator<Item = usize>) -> usize {
    let (count, total) = sizes.into_iter().fold((0usize, 0usize), |(n, sum), size| {
        (n + 1, sum.saturating_add(size))
    });
    total
        .saturating_add(2)
        .saturating_add(count.saturating_sub(1))
}

/// One table's events split by the maximum insert request size; each list keeps input order.
#[derive(Debug, Clone, Default)]
pub struct SizeSplit {
    /// The leading events whose rows array fits the limit: uploaded now.
    pub included: Vec<Event>,
    /// Events after the first one that did not fit (that one included): failed, retried in a later batch so
    /// the table's order is kept.
    pub overflowed: Vec<Event>,
    /// Events whose row alone does not fit (`[row]` is over the limit), wherever they are: aborted.
    pub oversized: Vec<Event>,
}

/// Splits one table's events (in input order) by `max_request_bytes`, the largest rows array allowed.
///
/// Walking the events in order: an event whose row alone exceeds the limit is oversized and skipped; the
/// others are included while the rows array stays within the limit (exactly at the limit fits); once adding
/// an event would pass the limit, that event and every later event that is not oversized are overflowed.
///
/// ```
/// use serde_json::value::RawValue;
/// use snowpipe_grouping::{Event, Schema, UploadTime, split_by_size};
/// use time::macros::datetime;
///
/// let time = UploadTime::new(datetime!(2024-01-02 03:04:05 UTC));
/// let event = |job, data: &str| {
///     Event::new(job, "T", Schema::new(), &RawValue::from_string(data.to_owned()).unwrap(), &time).unwrap()
/// };
/// // Rows of 8, 9 and 8 bytes: `[r1]` is 10 bytes, `[r1,r2]` 20.
/// let events = vec![event(1, r#"{"a":10}"#), event(2, r#"{"a":100}"#), event(3, r#"{"a":10}"#)];
/// let split = split_by_size(events, 20);
/// let ids = |events: &[Event]| events.iter().map(Event::job_id).collect::<Vec<_>>();
/// assert_eq!((ids(&split.included), ids(&split.overflowed), ids(&split.oversized)), (vec![1, 2], vec![3], vec![]));
/// ```
#[must_use]
pub fn split_by_size(events: Vec<Event>, max_request_bytes: usize) -> SizeSplit {
    let mut split = SizeSplit::default();
    if rows_array_size(events.iter().map(Event::size)) <= max_request_bytes {
        // The common case, everything fits (and so does each event): keep the events where they are rather
        // than move each into a new list.
        split.included = events;
        return split;
    }
    let mut running = rows_array_size([]);
    let mut overflowing = false;
    for event in events {
        let size = event.size();
        if rows_array_size([size]) > max_request_bytes {
            split.oversized.push(event);
        } else if overflowing {
            split.overflowed.push(event);
        } else {
            let comma = usize::from(!split.included.is_empty());
            let next = running.saturating_add(comma).saturating_add(size);
            if next > max_request_bytes {
                overflowing = true;
                split.overflowed.push(event);
            } else {
                running = next;
                split.included.push(event);
            }
        }
    }
    split
}

/// A batch partitioned by the maximum insert request size. Every event of the batch is in exactly one of the
/// three parts.
#[derive(Debug, Clone, Default)]
pub struct Partition {
    /// Tables with the events to upload now, in upload order (ascending offset, then name). A table's
    /// offset here is the highest job id among its included events; tables with nothing to upload are left
    /// out.
    pub included: Vec<TableBatch>,
    /// Events to fail (retry later), table by table in the batch's order, input order within a table.
    pub overflowed: Vec<Event>,
    /// Events to abort (too large for any insert request), in the same order.
    pub oversized: Vec<Event>,
}

impl Partition {
    /// The job ids of the included events, table by table.
    #[must_use]
    pub fn included_job_ids(&self) -> Vec<i64> {
        self.included
            .iter()
            .flat_map(|t| t.events().iter().map(Event::job_id))
            .collect()
    }

    /// The job ids of the overflowed events.
    #[must_use]
    pub fn overflowed_job_ids(&self) -> Vec<i64> {
        self.overflowed.iter().map(Event::job_id).collect()
    }

    /// The job ids of the oversized events.
    #[must_use]
    pub fn oversized_job_ids(&self) -> Vec<i64> {
        self.oversized.iter().map(Event::job_id).collect()
    }
}

impl Batch {
    /// Splits every table by `max_request_bytes` (see [`split_by_size`]) and orders the tables that have
    /// something to upload by their new offset.
    #[must_use]
    pub fn partition(self, max_request_bytes: usize) -> Partition {
        let mut partition = Partition::default();
        let mut included = Vec::new();
        for mut table in self.into_tables() {
            let events = std::mem::take(table.events_mut());
            let split = split_by_size(events, max_request_bytes);
            partition.overflowed.extend(split.overflowed);
            partition.oversized.extend(split.oversized);
            included.extend(table.keep_events(split.included));
        }
        partition.included = Batch::from_tables(included).into_tables();
        partition
    }
}
