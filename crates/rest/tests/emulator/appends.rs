//! Appends through the emulator: the 4 MiB cut at the exact boundary, zstd and gzip bodies, a row too large
//! for any request, lost answers (unknown, never resent), and 429 storms.

use std::{ops::Range, sync::Arc};

use snowpipe_api::{
    AppendRequest, Backend, BackendExt, Error, OffsetTokens, Row, SentRequest, TokenRange,
};
use snowpipe_emulator::{DropMode, Endpoint};
use snowpipe_rest::{Compression, body::MAX_REQUEST_BYTES};

use crate::support::{self, RETRIES, calls, channel, landed_ids, open, requests, rest_name, rows};

/// Tokens naming each request by its rows, fixed-width: `0000000003`..`0000000007`.
#[derive(Debug)]
struct ByRow;

impl OffsetTokens for ByRow {
    fn tokens(&self, rows: Range<usize>) -> TokenRange {
        TokenRange {
            start: format!("{:010}", rows.start),
            end: format!("{:010}", rows.end - 1),
        }
    }
}

/// A row `{"ID":"<id>","V":"<letters>"}` of exactly `size` bytes; the letters are pseudo-random (seeded
/// by the id), so rows compress about as text does, not as a run of one byte.
fn sized_row(id: &str, size: usize) -> Row {
    let frame = format!(r#"{{"ID":"{id}","V":""}}"#).len();
    let mut state = id.bytes().fold(0x9e37_79b9_7f4a_7c15_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let value: String = (0..size - frame)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + u8::try_from(state % 26).unwrap())
        })
        .collect();
    let row = Row::parse(format!(r#"{{"ID":"{id}","V":"{value}"}}"#)).unwrap();
    assert_eq!(row.len(), size);
    row
}

/// A row whose value is pseudo-random base64: it does not compress below the limit.
fn noisy_row(id: &str, size: usize) -> Row {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let value: String = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(alphabet[usize::try_from(state % 64).unwrap()])
        })
        .collect();
    Row::parse(format!(r#"{{"ID":"{id}","V":"{value}"}}"#)).unwrap()
}

fn create_wide_table(control: &snowpipe_emulator::Control) {
    control
        .execute_sql(
            "CREATE TABLE WIDE (ID VARCHAR, V VARCHAR)",
            Some(snowpipe_emulator::demo::DATABASE),
            Some("PUBLIC"),
        )
        .unwrap();
}

#[tokio::test]
async fn a_body_of_exactly_four_mib_goes_in_one_request_and_one_byte_more_is_split() {
    let setup = support::setup_with(|c| c.compression = Compression::None).await;
    create_wide_table(setup.control());
    let half = MAX_REQUEST_BYTES / 2 - 1;
    let exact = channel("WIDE");
    let handle = open(&setup.client, &exact).await;
    // Two rows and their newlines: exactly 4,194,304 bytes.
    let appended = setup
        .client
        .append_rows(
            &handle,
            vec![sized_row("a", half), sized_row("b", half)],
            "1",
        )
        .await
        .unwrap();
    assert_eq!(appended.requests.len(), 1);
    assert_eq!(appended.body_bytes(), 4_194_304);
    let received: Vec<(usize, Option<u16>)> = requests(setup.control(), &exact, "append")
        .iter()
        .map(|r| (r.body_bytes, r.status))
        .collect();
    assert_eq!(received, [(4_194_304, Some(200))]);

    // One byte more: two requests, each under the limit.
    let over = support::channel_of("WIDE", "1");
    let handle = open(&setup.client, &over).await;
    let appended = setup
        .client
        .append_rows(
            &handle,
            vec![sized_row("c", half), sized_row("d", half + 1)],
            "2",
        )
        .await
        .unwrap();
    let cut: Vec<(Range<usize>, u64)> = appended
        .requests
        .iter()
        .map(|r| (r.rows.clone(), r.body_bytes))
        .collect();
    assert_eq!(cut, [(0..1, 2_097_152), (1..2, 2_097_153)]);
    let received: Vec<(usize, Option<u16>)> = requests(setup.control(), &over, "append")
        .iter()
        .map(|r| (r.body_bytes, r.status))
        .collect();
    assert_eq!(received, [(2_097_152, Some(200)), (2_097_153, Some(200))]);
    assert_eq!(
        landed_ids(setup.control(), &exact.table),
        ["a", "b", "c", "d"]
    );
}

#[tokio::test]
async fn zstd_and_gzip_bodies_are_cut_under_the_limit_in_order_and_land_whole() {
    for (compression, encoding) in [
        (Compression::Zstd(3), "zstd"),
        (Compression::Gzip(6), "gzip"),
    ] {
        let setup = support::setup_with(|c| {
            c.compression = compression;
            c.max_request_bytes = 16_384;
        })
        .await;
        create_wide_table(setup.control());
        let channel = channel("WIDE");
        let handle = open(&setup.client, &channel).await;
        let input: Vec<Row> = (0..2_000)
            .map(|i| sized_row(&format!("{i:05}"), 300))
            .collect();
        let appended = setup
            .client
            .append(
                &handle,
                &AppendRequest {
                    rows: input.clone().into(),
                    tokens: Arc::new(ByRow),
                },
            )
            .await
            .unwrap();
        assert!(appended.requests.len() > 4, "{encoding}: {appended:?}");
        let mut next = 0;
        for sent in &appended.requests {
            assert_eq!(sent.rows.start, next, "{encoding}");
            assert!(sent.body_bytes <= 16_384, "{encoding}: {sent:?}");
            next = sent.rows.end;
        }
        assert_eq!(next, input.len());
        // What the emulator received is what the client says it sent, request by request.
        let received = requests(setup.control(), &channel, "append");
        let seen: Vec<(u64, String, String, Option<String>)> = received
            .iter()
            .map(|r| {
                (
                    r.body_bytes as u64,
                    r.start_offset_token.clone().unwrap_or_default(),
                    r.end_offset_token.clone().unwrap_or_default(),
                    r.encoding.clone(),
                )
            })
            .collect();
        let sent: Vec<(u64, String, String, Option<String>)> = appended
            .requests
            .iter()
            .map(|r: &SentRequest| {
                (
                    r.body_bytes,
                    r.tokens.start.clone(),
                    r.tokens.end.clone(),
                    Some(encoding.to_owned()),
                )
            })
            .collect();
        assert_eq!(seen, sent, "{encoding}");
        let status = setup.client.channel_status(&handle).await.unwrap().unwrap();
        assert_eq!(status.committed.as_deref(), Some("0000001999"));
        // Every row once, in order.
        let landed: Vec<String> = setup
            .control()
            .rows(snowpipe_emulator::demo::DATABASE, "PUBLIC", "WIDE")
            .unwrap()
            .iter()
            .map(|r| r["ID"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<String> = (0..2_000).map(|i| format!("{i:05}")).collect();
        assert_eq!(landed, expected, "{encoding}");
    }
}

#[tokio::test]
async fn a_row_too_large_for_any_request_is_rejected_by_index_after_the_rows_before_it() {
    for compression in [Compression::None, Compression::Zstd(1)] {
        let setup = support::setup_with(|c| {
            c.compression = compression;
            c.max_request_bytes = 1_024;
        })
        .await;
        create_wide_table(setup.control());
        let channel = channel("WIDE");
        let handle = open(&setup.client, &channel).await;
        let input = vec![
            sized_row("a", 100),
            sized_row("b", 100),
            sized_row("c", 100),
            noisy_row("big", 3_000),
            sized_row("d", 100),
        ];
        let error = setup
            .client
            .append_rows(&handle, input, "1")
            .await
            .unwrap_err();
        let Error::RowsRejected { code, rows, .. } = &error.error else {
            panic!("{compression:?}: {error:?}");
        };
        assert_eq!(code, "ROW_TOO_LARGE");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].index, 3, "{rows:?}");
        assert!(rows[0].message.contains("1024"), "{}", rows[0].message);
        // The rows before it went in one request; nothing after it was sent.
        assert_eq!(error.accepted.len(), 1, "{compression:?}");
        assert_eq!(error.accepted[0].rows, 0..3, "{compression:?}");
        assert_eq!(requests(setup.control(), &channel, "append").len(), 1);
        assert_eq!(landed_ids(setup.control(), &channel.table), ["a", "b", "c"]);
    }
}

#[tokio::test]
async fn rows_with_line_breaks_between_their_tokens_stay_one_line_each() {
    let setup = support::setup().await;
    let channel = channel("TRACKS");
    let handle = open(&setup.client, &channel).await;
    // JSON allows line breaks between tokens; NDJSON does not: each row must still be one line.
    let pretty = vec![
        Row::parse("{\n  \"ID\": \"a\",\n  \"N\": 1\n}").unwrap(),
        Row::parse("{\"ID\":\r\n\"b\",\r\"N\":\n2}").unwrap(),
    ];
    setup
        .client
        .append_rows(&handle, pretty, "1")
        .await
        .unwrap();
    let received = requests(setup.control(), &channel, "append");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rows, Some(2));
    assert_eq!(landed_ids(setup.control(), &channel.table), ["a", "b"]);
}

#[tokio::test]
async fn a_lost_answer_is_unknown_never_resent_and_the_channel_must_be_reopened() {
    for mode in [DropMode::Applied, DropMode::NotApplied] {
        let setup = support::setup().await;
        let channel = channel("TRACKS");
        let handle = open(&setup.client, &channel).await;
        setup.control().drop_next(Endpoint::RestAppend, 1, mode);
        let error = setup
            .client
            .append_rows(&handle, rows("lost", 2), "1")
            .await
            .unwrap_err();
        assert!(error.error.is_outcome_unknown(), "{mode:?}: {error:?}");
        assert!(error.accepted.is_empty());
        // Sent once, never again.
        assert_eq!(calls(setup.control(), Endpoint::RestAppend).len(), 1);
        assert!(setup.waits.waits().is_empty(), "{:?}", setup.waits);
        // The continuation token may be spent: a further append on it could be taken for a replay and
        // dropped. The client refuses it until the channel is reopened.
        let error = setup
            .client
            .append_rows(&handle, rows("next", 1), "2")
            .await
            .unwrap_err();
        assert!(error.error.is_reopen(), "{mode:?}: {error:?}");
        assert_eq!(calls(setup.control(), Endpoint::RestAppend).len(), 1);
        // Reopened (waiting for what may be in flight), the committed token tells what landed.
        let reopened = setup
            .client
            .open_channel(&channel, &snowpipe_api::OpenOptions::wait())
            .await
            .unwrap();
        let committed = reopened.status.unwrap().committed;
        let landed = landed_ids(setup.control(), &channel.table);
        match mode {
            DropMode::Applied => {
                assert_eq!(committed.as_deref(), Some("1"));
                assert_eq!(landed, ["lost0", "lost1"]);
            }
            DropMode::NotApplied => {
                assert_eq!(committed, None);
                assert!(landed.is_empty(), "{landed:?}");
            }
        }
        setup
            .client
            .append_rows(&reopened.handle, rows("next", 1), "2")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_5xx_after_the_body_went_out_is_unknown_and_not_retried() {
    let setup = support::setup().await;
    let channel = channel("TRACKS");
    let handle = open(&setup.client, &channel).await;
    setup.control().fail_next(
        Endpoint::RestAppend,
        1,
        snowpipe_emulator::Failure::Status { status: 503 },
    );
    let error = setup
        .client
        .append_rows(&handle, rows("a", 1), "1")
        .await
        .unwrap_err();
    assert!(error.error.is_outcome_unknown(), "{error:?}");
    assert_eq!(calls(setup.control(), Endpoint::RestAppend).len(), 1);
    assert!(setup.waits.waits().is_empty());
}

#[tokio::test]
async fn a_429_storm_is_retried_with_backoff_and_exhaustion_is_retryable() {
    let setup = support::setup().await;
    let channel = channel("TRACKS");
    let name = rest_name(&channel);
    let handle = open(&setup.client, &channel).await;
    let retries = u32::try_from(RETRIES).unwrap();
    assert!(setup.control().throttle_appends(&name, retries));
    setup
        .client
        .append_rows(&handle, rows("a", 1), "1")
        .await
        .unwrap();
    let statuses: Vec<Option<u16>> = requests(setup.control(), &channel, "append")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(429), Some(429), Some(429), Some(200)]);
    assert_eq!(setup.waits.waits().len(), RETRIES);

    // One more 429 than the retries: retry-kind, nothing taken, and the token not spent.
    setup.waits.clear();
    assert!(setup.control().throttle_appends(&name, retries + 1));
    let error = setup
        .client
        .append_rows(&handle, rows("b", 1), "2")
        .await
        .unwrap_err();
    assert!(matches!(error.error, Error::Retryable { .. }), "{error:?}");
    assert!(error.accepted.is_empty());
    assert_eq!(setup.waits.waits().len(), RETRIES);
    setup
        .client
        .append_rows(&handle, rows("c", 1), "3")
        .await
        .unwrap();
    let received = requests(setup.control(), &channel, "append");
    let refused = &received[4..8];
    assert!(refused.iter().all(|r| r.status == Some(429)), "{refused:?}");
    let last = &received[8];
    assert_eq!(last.status, Some(200));
    assert!(
        refused
            .iter()
            .all(|r| r.continuation_token == last.continuation_token),
        "{received:#?}"
    );
    assert_eq!(landed_ids(setup.control(), &channel.table), ["a0", "c0"]);
}
