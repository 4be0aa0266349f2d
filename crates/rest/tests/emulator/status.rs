//! Statuses through the emulator: bulk status over many channels of several tables (one request per pipe
//! and chunk, answers in the order asked, a missing channel `None`), and the counters of rows rejected at
//! commit.

use snowpipe_api::{Backend, BackendExt, ChannelHandle, Progress};
use snowpipe_emulator::Endpoint;

use crate::support::{self, calls, channel, channel_of, create_table, open, rest_name, rows};

#[tokio::test]
async fn bulk_status_over_many_channels_of_several_tables_keeps_the_order() {
    let setup = support::setup_with(|c| c.status_chunk = 2).await;
    let control = setup.control();
    for table in ["T_A", "T_B", "T_C"] {
        create_table(control, table);
    }
    // Five channels on each table, each with its own committed token; every third one never opened.
    let mut asked: Vec<ChannelHandle> = Vec::new();
    let mut expected: Vec<Option<String>> = Vec::new();
    for i in 0..15 {
        let table = ["T_A", "T_B", "T_C"][i % 3];
        let channel = channel_of(table, &format!("{i}"));
        if i % 3 == 1 && i % 2 == 0 {
            asked.push(ChannelHandle {
                id: channel.name(),
                channel,
            });
            expected.push(None);
            continue;
        }
        let handle = open(&setup.client, &channel).await;
        let token = format!("{table}-{i}");
        setup
            .client
            .append_rows(&handle, rows(&token, 1), &token)
            .await
            .unwrap();
        asked.push(handle);
        expected.push(Some(token));
    }
    assert!(expected.iter().filter(|e| e.is_none()).count() >= 2);
    control.clear_calls();
    let statuses = setup.client.bulk_status(&asked).await.unwrap();
    let committed: Vec<Option<String>> = statuses
        .iter()
        .map(|s| s.as_ref().and_then(|s| s.committed.clone()))
        .collect();
    assert_eq!(committed, expected);
    assert!(statuses.iter().flatten().all(|s| s.valid));
    // Five names per table in chunks of two: three requests per table.
    assert_eq!(calls(control, Endpoint::RestBulkStatus).len(), 9);
    // Through the boundary's chunking too, in calls of four.
    let chunked = setup.client.bulk_status_chunked(&asked, 4).await.unwrap();
    assert_eq!(chunked, statuses);
}

#[tokio::test]
async fn rows_rejected_at_commit_show_in_the_counters_with_their_requests_end_token() {
    let setup = support::setup().await;
    let channel = channel("TRACKS");
    let handle = open(&setup.client, &channel).await;
    setup
        .client
        .append_rows(&handle, rows("a", 2), "1")
        .await
        .unwrap();
    assert!(
        setup
            .control()
            .reject_rows_at_commit(&rest_name(&channel), &[1])
    );
    setup
        .client
        .append_rows(&handle, rows("b", 3), "2")
        .await
        .unwrap();
    setup
        .client
        .append_rows(&handle, rows("c", 1), "3")
        .await
        .unwrap();
    let status = setup.client.channel_status(&handle).await.unwrap().unwrap();
    assert_eq!(status.committed.as_deref(), Some("3"));
    let Progress::Counters(counters) = status.progress else {
        panic!("{status:?}");
    };
    assert_eq!(counters.rows_parsed, 6);
    assert_eq!(counters.rows_inserted, 5);
    assert_eq!(counters.rows_error_count, 1);
    assert_eq!(counters.last_error_offset_upper_bound.as_deref(), Some("2"));
    assert!(counters.last_error_message.is_some());
    assert!(counters.created_on_ms > 0);
}
