//! Inserts whose answer is lost, again and again: every lost answer is resolved from the channel's offsets,
//! so rows that went in are never failed (and then sent twice), and rows that surely did not are sent again a
//! bounded number of times.

use std::{
    io::Write as _,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use serde_json::json;
use snowpipe_api::{Call, Delivery, MockSnowpipeApi, StatusResponse};
use snowpipe_channels::{Channel, ManualClock, MockChannels};
use snowpipe_grouping::{Schema, WarehouseType};
use snowpipe_manager::{Destination, Manager, Settings};

fn destination() -> Destination {
    Destination {
        id: "dest".into(),
        workspace_id: "ws".into(),
        config: json!({"account": "a", "warehouse": "w", "database": "D", "user": "u", "role": "r",
                       "privateKey": "k", "namespace": "ns"}),
    }
}

fn one_job_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let line = json!({"message": {"metadata": {"table": "A", "columns": {"ID": "string"}}, "data": {"ID": "x"}},
                      "metadata": {"job_id": 7}});
    writeln!(file, "{line}").unwrap();
    file
}

fn channels() -> MockChannels {
    let mut channels = MockChannels::new();
    channels
        .expect_initialize_with_schema()
        .returning(|table, _| {
            Ok(Arc::new(Channel {
                id: format!("ch-{table}"),
                table: table.into(),
                schema: [("ID", WarehouseType::String)]
                    .into_iter()
                    .collect::<Schema>(),
            }))
        });
    channels.expect_cached().returning(|_| None);
    channels.expect_reset_backoff().return_const(());
    channels
}

fn lost() -> snowpipe_api::Error {
    snowpipe_api::Error::Transport {
        call: Call::Insert,
        delivery: Delivery::MaybeSent,
        source: "connection reset after the request was sent".into(),
    }
}

fn status(latest: &str) -> StatusResponse {
    StatusResponse {
        success: true,
        valid: true,
        offset: String::new(),
        latest_inserted_offset: latest.into(),
    }
}

fn manager(api: MockSnowpipeApi, channels: MockChannels) -> Manager {
    Manager::new(
        &destination(),
        Settings::default(),
        Arc::new(api),
        Arc::new(channels),
        Arc::new(ManualClock::default()),
    )
}

/// Soak seed 0x307b560d2cfeb028: the first answer was lost and the rows had not gone in, so they were sent
/// again; that answer was lost too, after the rows went in, and the jobs were failed without asking where
/// the channel stood. The router sent them again and every row landed twice.
#[tokio::test]
async fn a_lost_answer_to_a_resent_insert_is_resolved_too() {
    let mut api = MockSnowpipeApi::new();
    let inserts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&inserts);
    api.expect_insert().returning(move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        Err(lost())
    });
    // Before the insert, after the first lost answer (not in), after the second (in).
    let statuses = Arc::new(AtomicUsize::new(0));
    api.expect_channel_status().returning(move |_| {
        let n = statuses.fetch_add(1, Ordering::SeqCst);
        Ok(status(if n < 2 { "" } else { "7" }))
    });
    let manager = manager(api, channels());
    let out = manager.upload(one_job_file().path(), &[]).await;
    assert_eq!(out.importing_job_ids, [7], "{out:?}");
    assert_eq!(inserts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_insert_whose_answers_keep_getting_lost_fails_after_bounded_resends() {
    let mut api = MockSnowpipeApi::new();
    api.expect_insert().times(3).returning(|_, _| Err(lost()));
    api.expect_channel_status().returning(|_| Ok(status("")));
    let mut channels = channels();
    channels.expect_delete().times(1).returning(|_, _| Ok(()));
    let manager = manager(api, channels);
    let out = manager.upload(one_job_file().path(), &[]).await;
    assert_eq!(out.failed_job_ids, [7], "{out:?}");
    assert!(
        out.failed_reason.contains("the rows did not go in"),
        "{}",
        out.failed_reason
    );
}
