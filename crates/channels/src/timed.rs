//! [`TimedWarehouse`]: every statement of any [`Warehouse`] timed like the service's calls.

use std::time::Instant;

use async_trait::async_trait;
use metrics::Label;
use snowpipe_api::Column;
use snowpipe_grouping::Schema;

use crate::{Warehouse, WarehouseError};

/// Time of every SQL API statement, in seconds, tagged `statement` (`create_schema`, `create_table`,
/// `add_columns`, `describe_table`), `success` and `code` (the failure's kind), plus any labels given.
pub const SQL_RESPONSE_TIME: &str = "snowpipe_streaming_sql_api_response_time_seconds";

/// Describes this crate's metrics to the installed recorder (the `# HELP` lines of Prometheus text).
pub fn describe_metrics() {
    metrics::describe_histogram!(
        SQL_RESPONSE_TIME,
        metrics::Unit::Seconds,
        "Time of each statement sent to Snowflake's SQL API (DDL and DESCRIBE TABLE), by statement, success and code"
    );
}

/// Wraps a [`Warehouse`] so that each statement records [`SQL_RESPONSE_TIME`]. Labels come from a small
/// fixed set: never a table or schema name.
#[derive(Debug)]
pub struct TimedWarehouse<W> {
    inner: W,
    labels: Vec<Label>,
}

impl<W: Warehouse> TimedWarehouse<W> {
    /// Wraps `inner`, adding `labels` (e.g. workspace, destination and destination type) to every sample.
    pub fn new(inner: W, labels: impl IntoIterator<Item = (&'static str, String)>) -> Self {
        Self {
            inner,
            labels: labels.into_iter().map(|(k, v)| Label::new(k, v)).collect(),
        }
    }

    fn record<T>(
        &self,
        statement: &'static str,
        started: Instant,
        result: &Result<T, WarehouseError>,
    ) {
        let code = match result {
            Ok(_) => "",
            Err(error) => code(error),
        };
        let mut labels = self.labels.clone();
        labels.push(Label::new("statement", statement));
        labels.push(Label::new(
            "success",
            if result.is_ok() { "true" } else { "false" },
        ));
        labels.push(Label::new("code", code));
        metrics::histogram!(SQL_RESPONSE_TIME, labels).record(started.elapsed().as_secs_f64());
    }
}

/// A failure's label: its kind, from a fixed set.
fn code(error: &WarehouseError) -> &'static str {
    match error {
        WarehouseError::Unauthorized { .. } => "unauthorized",
        WarehouseError::Key(_) => "key",
        WarehouseError::ObjectMissing { .. } => "object_missing",
        WarehouseError::Rejected { .. } => "rejected",
        WarehouseError::Unexpected { .. } => "unexpected",
        WarehouseError::Transport(_) => "transport",
    }
}

#[async_trait]
impl<W: Warehouse> Warehouse for TimedWarehouse<W> {
    async fn create_schema(&self, schema: &str) -> Result<(), WarehouseError> {
        let started = Instant::now();
        let result = self.inner.create_schema(schema).await;
        self.record("create_schema", started, &result);
        result
    }

    async fn create_table(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), WarehouseError> {
        let started = Instant::now();
        let result = self.inner.create_table(schema, table, columns).await;
        self.record("create_table", started, &result);
        result
    }

    async fn add_columns(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), WarehouseError> {
        let started = Instant::now();
        let result = self.inner.add_columns(schema, table, columns).await;
        self.record("add_columns", started, &result);
        result
    }

    async fn describe_table(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<Vec<Column>>, WarehouseError> {
        let started = Instant::now();
        let result = self.inner.describe_table(schema, table).await;
        self.record("describe_table", started, &result);
        result
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;
    use crate::MockWarehouse;

    #[tokio::test]
    async fn every_statement_is_timed_with_its_outcome() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _guard = metrics::set_default_local_recorder(&recorder);
        let mut mock = MockWarehouse::new();
        mock.expect_create_schema().returning(|_| Ok(()));
        mock.expect_describe_table()
            .returning(|_, _| Err(WarehouseError::Transport("reset".into())));
        let timed = TimedWarehouse::new(mock, [("destinationId", "d".to_owned())]);
        timed.create_schema("S").await.unwrap();
        timed.describe_table("S", "T").await.unwrap_err();
        let mut seen: Vec<String> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                assert_eq!(key.key().name(), SQL_RESPONSE_TIME);
                assert!(matches!(value, DebugValue::Histogram(ref v) if v.len() == 1));
                let mut labels: Vec<String> = key
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                labels.join(",")
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                "code=,destinationId=d,statement=create_schema,success=true",
                "code=transport,destinationId=d,statement=describe_table,success=false",
            ]
        );
    }
}
