//! A batch: the events of one file grouped by table, each table with its schema and offset, tables in
//! upload order.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use foldhash::fast::RandomState as FastHash;

use crate::{Event, Schema};

/// The events of one table, in input order, with the table's schema and offset.
#[derive(Debug, Clone)]
pub struct TableBatch {
    name: Arc<str>,
    schema: Schema,
    offset: i64,
    events: Vec<Event>,
}

impl TableBatch {
    /// The table's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The union of the columns of the table's events in the file, the first type seen for a column winning.
    ///
    /// After [`Batch::partition`] this still covers the events the split left out, so the table is prepared
    /// for them when they come back in a later batch.
    #[must_use]
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The highest job id among [`TableBatch::events`]: the insert's offset.
    #[must_use]
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The lowest job id among [`TableBatch::events`].
    #[must_use]
    pub fn min_job_id(&self) -> i64 {
        self.events
            .iter()
            .map(Event::job_id)
            .min()
            .unwrap_or(self.offset)
    }

    /// The events, in input order.
    #[must_use]
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The events, moved out.
    #[must_use]
    pub fn into_events(self) -> Vec<Event> {
        self.events
    }

    /// The job ids of the events, in input order.
    #[must_use]
    pub fn job_ids(&self) -> Vec<i64> {
        self.events.iter().map(Event::job_id).collect()
    }

    pub(crate) fn events_mut(&mut self) -> &mut Vec<Event> {
        &mut self.events
    }

    /// The table with only `events` (a subset of its own, in order) and its offset recomputed from them;
    /// `None` when `events` is empty. The schema stays that of all the table's events.
    pub(crate) fn keep_events(self, events: Vec<Event>) -> Option<Self> {
        let offset = events.iter().map(Event::job_id).max()?;
        Some(Self {
            name: self.name,
            schema: self.schema,
            offset,
            events,
        })
    }
}

/// The events of one file grouped by table; tables in upload order.
///
/// Upload order is ascending [`TableBatch::offset`] (the table's highest job id); tables with the same
/// offset are ordered by name (byte-wise), so the order never depends on hashing.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    tables: Vec<TableBatch>,
}

impl Batch {
    /// Groups events by table, keeping input order within each table.
    ///
    /// ```
    /// use serde_json::value::RawValue;
    /// use snowpipe_grouping::{Batch, Event, Schema, UploadTime};
    /// use time::macros::datetime;
    ///
    /// let time = UploadTime::new(datetime!(2024-01-02 03:04:05 UTC));
    /// let event = |job, table: &str| {
    ///     Event::new(job, table, Schema::new(), &RawValue::from_string("{}".to_owned()).unwrap(), &time).unwrap()
    /// };
    /// let batch = Batch::from_events([event(5, "B"), event(3, "A"), event(1, "B")]);
    /// let order: Vec<_> = batch.tables().iter().map(|t| (t.name(), t.offset(), t.job_ids())).collect();
    /// assert_eq!(order, [("A", 3, vec![3]), ("B", 5, vec![5, 1])]);
    /// ```
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> Self {
        let mut grouper = Grouper::default();
        for event in events {
            grouper.push(event);
        }
        grouper.finish()
    }

    pub(crate) fn from_tables(mut tables: Vec<TableBatch>) -> Self {
        tables.sort_by(|a, b| a.offset.cmp(&b.offset).then_with(|| a.name.cmp(&b.name)));
        Self { tables }
    }

    /// The tables, in upload order.
    #[must_use]
    pub fn tables(&self) -> &[TableBatch] {
        &self.tables
    }

    /// The tables, moved out, in upload order.
    #[must_use]
    pub fn into_tables(self) -> Vec<TableBatch> {
        self.tables
    }

    /// The number of events.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.events.len()).sum()
    }

    /// Whether there are no events.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Every event's job id, table by table in upload order.
    #[must_use]
    pub fn job_ids(&self) -> Vec<i64> {
        self.tables
            .iter()
            .flat_map(|t| t.events.iter().map(Event::job_id))
            .collect()
    }
}

/// Builds a [`Batch`] one event at a time.
///
/// Both maps are looked up once per event, so they hash with foldhash rather than SipHash: their keys are
/// table names and addresses, and a collision costs a comparison, not correctness.
#[derive(Default)]
pub(crate) struct Grouper {
    tables: Vec<Building>,
    index: HashMap<Arc<str>, usize, FastHash>,
}

struct Building {
    name: Arc<str>,
    schema: Schema,
    // Events of one file mostly share a handful of column sets; merge each set once.
    merged: HashSet<usize, FastHash>,
    offset: i64,
    events: Vec<Event>,
}

impl Grouper {
    /// The table's shared name, so every event of a table points at one allocation.
    pub(crate) fn table_name(&mut self, name: &str) -> Arc<str> {
        match self.index.get(name) {
            Some(&i) => self.tables[i].name.clone(),
            None => {
                let name: Arc<str> = name.into();
                self.index.insert(name.clone(), self.tables.len());
                self.tables.push(Building {
                    name: name.clone(),
                    schema: Schema::new(),
                    merged: HashSet::default(),
                    offset: i64::MIN,
                    events: Vec::new(),
                });
                name
            }
        }
    }

    pub(crate) fn push(&mut self, event: Event) {
        let i = match self.index.get(event.table()) {
            Some(&i) => i,
            None => {
                self.table_name(event.table());
                self.tables.len() - 1
            }
        };
        let table = &mut self.tables[i];
        // Keyed by address: no other schema can take it while `event` (kept below) holds the Arc.
        if table
            .merged
            .insert(Arc::as_ptr(event.shared_columns()).addr())
        {
            table.schema.merge(event.columns());
        }
        table.offset = table.offset.max(event.job_id());
        table.events.push(event);
    }

    pub(crate) fn finish(self) -> Batch {
        let tables = self
            .tables
            .into_iter()
            .filter(|t| !t.events.is_empty())
            .map(|t| TableBatch {
                name: t.name,
                schema: t.schema,
                offset: t.offset,
                events: t.events,
            })
            .collect();
        Batch::from_tables(tables)
    }
}
