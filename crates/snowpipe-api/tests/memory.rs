//! The in-memory backend passes the conformance suite every backend passes, with each of its capability
//! sets; and its own controls (commits on demand, scripted faults, lost answers) do what tests rely on.

use async_trait::async_trait;
use serde_json::Value;
use snowpipe_api::{
    Backend, BackendExt, Call, Capabilities, ChannelHandle, ChannelRef, OpenOptions, Progress, Row,
    TableRef,
    conformance::Harness,
    memory::{Fault, InMemory},
};

struct Memory(InMemory);

fn table(schema: &str, name: &str) -> TableRef {
    TableRef {
        database: "DB".into(),
        schema: schema.into(),
        table: name.into(),
        enable_iceberg: false,
    }
}

fn channel_on(table: TableRef) -> ChannelRef {
    ChannelRef {
        table,
        destination: "dest".into(),
        instance: "1".into(),
    }
}

#[async_trait]
impl Harness for Memory {
    fn backend(&self) -> &dyn Backend {
        &self.0
    }

    async fn channel(&self, name: &str) -> ChannelRef {
        let table = table("S", name);
        self.0.create_table(
            &table,
            &[("ID", "VARCHAR(16777216)"), ("N", "NUMBER(38,0)")],
        );
        channel_on(table)
    }

    async fn missing_table(&self) -> ChannelRef {
        self.0.create_schema("DB", "S");
        channel_on(table("S", "NO_SUCH_TABLE"))
    }

    async fn missing_schema(&self) -> ChannelRef {
        channel_on(table("NO_SUCH_SCHEMA", "T"))
    }

    async fn commit(&self) {
        self.0.commit();
    }

    async fn rows(&self, table: &TableRef) -> Vec<Value> {
        self.0
            .rows(table)
            .iter()
            .map(|r| serde_json::from_slice(r.as_bytes()).expect("rows are JSON"))
            .collect()
    }

    async fn restart(&self) {
        self.0.restart();
    }

    async fn invalidate(&self, channel: &ChannelHandle) {
        assert!(self.0.invalidate(&channel.channel));
    }
}

mod every_capability {
    use super::*;
    snowpipe_api::conformance_tests!(Memory(InMemory::new()));
}

mod no_capability_and_small_requests {
    use super::*;
    snowpipe_api::conformance_tests!(Memory(
        InMemory::new()
            .with_capabilities(Capabilities::none())
            .with_max_request_rows(2)
    ));
}

fn row(id: &str) -> Row {
    Row::parse(format!(r#"{{"ID":"{id}"}}"#)).unwrap()
}

#[tokio::test]
async fn a_lost_answer_may_hide_applied_rows_or_none() {
    let harness = Memory(InMemory::new());
    let channel = harness.channel("T").await;
    let backend = &harness.0;
    let handle = backend
        .open_channel(&channel, &OpenOptions::discard())
        .await
        .unwrap()
        .handle;
    backend.fail_next(Call::Append, 1, Fault::LoseAnswer { applied: true });
    backend.fail_next(Call::Append, 1, Fault::LoseAnswer { applied: false });
    let applied = backend.append_rows(&handle, vec![row("a")], "1").await;
    assert!(applied.unwrap_err().error.is_outcome_unknown());
    let not_applied = backend.append_rows(&handle, vec![row("b")], "2").await;
    assert!(not_applied.unwrap_err().error.is_outcome_unknown());
    let status = backend.channel_status(&handle).await.unwrap().unwrap();
    assert_eq!(status.progress, Progress::Inserted(Some("1".into())));
    assert_eq!(backend.commit(), 1);
    assert_eq!(backend.rows(&channel.table), [row("a")]);
    assert_eq!(
        backend.calls(),
        [
            Call::OpenChannel,
            Call::Append,
            Call::Append,
            Call::ChannelStatus
        ]
    );
}

#[tokio::test]
async fn waiting_opens_keep_uncommitted_rows_and_discarding_ones_drop_them() {
    let harness = Memory(InMemory::new());
    let channel = harness.channel("T").await;
    let backend = &harness.0;
    let first = backend
        .open_channel(&channel, &OpenOptions::wait())
        .await
        .unwrap();
    backend
        .append_rows(&first.handle, vec![row("a")], "1")
        .await
        .unwrap();
    let error = backend
        .open_channel(&channel, &OpenOptions::wait())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "ERR_CHANNEL_HAS_UNCOMMITTED_DATA");
    assert_eq!(backend.pending_rows(), 1, "nothing was discarded");
    let second = backend
        .open_channel(&channel, &OpenOptions::discard())
        .await
        .unwrap();
    assert_eq!(backend.pending_rows(), 0);
    assert_eq!(backend.commit(), 0);
    let status = second.status.expect("the open reports the status");
    assert_eq!(status.committed, None);
    assert!(backend.rows(&channel.table).is_empty());
}

#[tokio::test]
async fn counters_grow_with_commits_and_survive_a_reopen() {
    let harness = Memory(InMemory::new().with_capabilities(Capabilities::none()));
    let channel = harness.channel("T").await;
    let backend = &harness.0;
    let first = backend
        .open_channel(&channel, &OpenOptions::discard())
        .await
        .unwrap();
    backend
        .append_rows(&first.handle, vec![row("a"), row("b")], "2")
        .await
        .unwrap();
    backend.commit();
    let second = backend
        .open_channel(&channel, &OpenOptions::discard())
        .await
        .unwrap();
    let Some(Progress::Counters(counters)) = second.status.map(|s| s.progress) else {
        panic!("counters expected");
    };
    assert_eq!(counters.rows_inserted, 2);
    let Some(Progress::Counters(before)) = first.status.map(|s| s.progress) else {
        panic!("counters expected");
    };
    assert_eq!(before.created_on_ms, counters.created_on_ms);
}
