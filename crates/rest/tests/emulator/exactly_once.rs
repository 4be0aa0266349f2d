//! Lost append answers resolved through the channel layer (`snowpipe_channels::ChannelManager` over this
//! client, DDL and `DESCRIBE` through the emulator's SQL API): the rows' fate is settled by reopening the
//! channel, never by resending blindly, so whether the lost request committed before or after its answer
//! was lost, or never arrived, the table holds each row exactly once.

use std::sync::Arc;

use snowpipe_api::{Row, retry::Sleep};
use snowpipe_channels::{
    AuthBackoff, BackoffConfig, ChannelManager, ChannelSettings, Channels, DestinationConfig,
    SqlApiConfig, SqlApiWarehouse, SystemClock,
};
use snowpipe_emulator::{DropMode, Emulator, Endpoint, demo};
use snowpipe_grouping::{Schema, WarehouseType};
use snowpipe_rest::RestClient;

use crate::support::{self, Waits, calls, landed_ids, rest_name};

struct Layer {
    emulator: Emulator,
    channels: ChannelManager<RestClient, SqlApiWarehouse>,
    settings: ChannelSettings,
    /// The client's waits (for uncommitted rows at an open).
    client_waits: Arc<Waits>,
}

async fn layer() -> Layer {
    let emulator = support::emulator().await;
    let config = DestinationConfig {
        account: demo::ACCOUNT.to_lowercase(),
        warehouse: demo::WAREHOUSE.into(),
        database: demo::DATABASE.into(),
        user: demo::USER.into(),
        role: demo::ROLE.into(),
        private_key: snowpipe_api::Secret::new(demo::ENCRYPTED_PRIVATE_KEY_PEM),
        private_key_passphrase: snowpipe_api::Secret::new(demo::PRIVATE_KEY_PASSPHRASE),
        namespace: "exactly once".into(),
        enable_iceberg: false,
    };
    let layer_waits = Arc::new(Waits::default());
    let mut sql = SqlApiConfig::for_destination(&config);
    sql.base_url = Some(emulator.base_url());
    sql.sleep = Arc::clone(&layer_waits) as Arc<dyn Sleep>;
    let warehouse = SqlApiWarehouse::new(sql).unwrap();
    let client_waits = Arc::new(Waits::default());
    let client = RestClient::new(support::config(&emulator, &client_waits)).unwrap();
    let settings = ChannelSettings::new("dest", "1", &config);
    let clock = Arc::new(SystemClock);
    let channels = ChannelManager::new(
        client,
        warehouse,
        settings.clone(),
        AuthBackoff::new(BackoffConfig::default(), clock.clone()),
    )
    .with_time(clock, layer_waits);
    Layer {
        emulator,
        channels,
        settings,
        client_waits,
    }
}

fn schema() -> Schema {
    [("ID", WarehouseType::String), ("N", WarehouseType::Int)]
        .into_iter()
        .collect()
}

fn rows(prefix: &str, n: usize) -> Vec<Row> {
    support::rows(prefix, n)
}

impl Layer {
    /// Appends through the channel layer; every row must be handed over (none failed).
    async fn append(&self, rows: Vec<Row>) {
        let count = rows.len();
        let outcome = self.channels.append("EVENTS", rows).await.unwrap();
        assert!(outcome.failed.is_empty(), "{outcome:?}");
        let handed: usize = outcome.segments.iter().map(|s| s.rows.len()).sum();
        assert_eq!(handed, count, "{outcome:?}");
    }

    fn landed(&self) -> Vec<String> {
        landed_ids(
            self.emulator.control(),
            &self.settings.channel("EVENTS").table,
        )
    }

    fn appends_sent(&self) -> usize {
        calls(self.emulator.control(), Endpoint::RestAppend).len()
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn an_answer_lost_after_the_rows_committed_settles_without_a_resend() {
    let layer = layer().await;
    layer
        .channels
        .initialize_with_schema("EVENTS", &schema())
        .await
        .unwrap();
    layer
        .emulator
        .control()
        .drop_next(Endpoint::RestAppend, 1, DropMode::Applied);
    layer.append(rows("a", 3)).await;
    assert_eq!(layer.appends_sent(), 1, "the lost request was not resent");
    layer.append(rows("b", 2)).await;
    assert_eq!(layer.appends_sent(), 2);
    let mut expected = ids("a", 3);
    expected.extend(ids("b", 2));
    assert_eq!(layer.landed(), expected);
}

#[tokio::test]
async fn an_answer_lost_before_the_rows_committed_settles_by_discarding_them_and_sending_once_more()
{
    let layer = layer().await;
    layer
        .channels
        .initialize_with_schema("EVENTS", &schema())
        .await
        .unwrap();
    let control = layer.emulator.control();
    let channel = layer.settings.channel("EVENTS");
    let name = rest_name(&channel);
    assert!(control.stall_rest_commits(&name));
    control.drop_next(Endpoint::RestAppend, 1, DropMode::Applied);
    // The request is taken and its answer lost while its rows wait to commit. Settling it reopens the
    // channel, which discards them for good (the opening's committed token is final), so they are sent
    // once more, in the new epoch.
    layer.append(rows("a", 3)).await;
    assert_eq!(layer.appends_sent(), 2);
    let appends = support::requests(control, &channel, "append");
    let answered: Vec<Option<u16>> = appends.iter().map(|r| r.status).collect();
    assert_eq!(answered, [None, Some(200)]);
    assert_ne!(
        appends[0].end_offset_token, appends[1].end_offset_token,
        "sent again in a new epoch"
    );
    assert!(layer.landed().is_empty());
    assert!(control.resume_rest_commits(&name));
    control.flush();
    assert_eq!(layer.landed(), ids("a", 3));
    layer.append(rows("b", 1)).await;
    let mut expected = ids("a", 3);
    expected.push("b0".into());
    assert_eq!(layer.landed(), expected);
    assert!(layer.client_waits.waits().is_empty());
}

#[tokio::test]
async fn an_append_that_never_arrived_is_sent_again_once() {
    let layer = layer().await;
    layer
        .channels
        .initialize_with_schema("EVENTS", &schema())
        .await
        .unwrap();
    layer
        .emulator
        .control()
        .drop_next(Endpoint::RestAppend, 1, DropMode::NotApplied);
    layer.append(rows("a", 3)).await;
    assert_eq!(
        layer.appends_sent(),
        2,
        "lost, then sent again after the reopen"
    );
    assert_eq!(layer.landed(), ids("a", 3));
}

#[tokio::test]
async fn a_row_too_large_fails_alone_and_the_others_land_once() {
    let layer = layer().await;
    layer
        .channels
        .initialize_with_schema("EVENTS", &schema())
        .await
        .unwrap();
    let mut input = rows("a", 2);
    // Pseudo-random base64: compressed, still more than a request may hold.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let huge: String = (0..snowpipe_rest::body::MAX_REQUEST_BYTES * 3 / 2)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(alphabet[usize::try_from(state % 64).unwrap()])
        })
        .collect();
    input.push(Row::parse(format!(r#"{{"ID":"{huge}","N":9}}"#)).unwrap());
    let outcome = layer.channels.append("EVENTS", input).await.unwrap();
    let failed: Vec<usize> = outcome.failed.iter().flat_map(|f| f.rows.clone()).collect();
    assert_eq!(failed, [2], "{outcome:?}");
    assert!(
        outcome.failed[0].reason.contains("ROW_TOO_LARGE"),
        "{outcome:?}"
    );
    assert_eq!(layer.landed(), ids("a", 2));
}
