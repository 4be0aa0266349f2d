//! Who the client is: hostname discovery and the token exchange in both answer shapes, the role in the
//! token's scope, renewal ahead of the token's own expiry, one retry with a fresh token after a 401 (a
//! second 401 is auth-kind), and a programmatic access token in place of the key pair.

use std::{sync::Arc, time::Duration};

use snowpipe_api::{Backend, BackendExt, Error, OpenOptions, Secret};
use snowpipe_emulator::{BodyShape, Emulator, Endpoint, Failure, User, demo};
use snowpipe_rest::{Credentials, RestClient};

use crate::support::{
    self, Waits, calls, channel, config, create_table, landed_ids, open, rows, setup_with,
};

/// The HTTP statuses the emulator answered to calls of `endpoint`.
fn statuses(emulator: &Emulator, endpoint: Endpoint) -> Vec<Option<u16>> {
    calls(emulator.control(), endpoint)
        .iter()
        .map(|c| c.status)
        .collect()
}

#[tokio::test]
async fn discovery_and_the_token_exchange_read_bare_text_and_json() {
    let emulator = support::emulator().await;
    create_table(emulator.control(), "TRACKS");
    for (json, instance) in [(false, "text"), (true, "json")] {
        emulator.control().set_hostname_as_json(json);
        emulator.control().set_token_as_json(json);
        emulator.control().clear_calls();
        let waits = Arc::new(Waits::default());
        let client = RestClient::new(config(&emulator, &waits)).unwrap();
        assert_eq!(client.ingest_url().await.unwrap(), emulator.base_url());
        let channel = support::channel_of("TRACKS", instance);
        let handle = open(&client, &channel).await;
        client
            .append_rows(&handle, rows(instance, 2), "1")
            .await
            .unwrap_or_else(|e| panic!("{instance}: {e}"));
        assert_eq!(statuses(&emulator, Endpoint::RestHostname), [Some(200)]);
        assert_eq!(statuses(&emulator, Endpoint::RestToken), [Some(200)]);
    }
    assert_eq!(
        landed_ids(emulator.control(), &support::table_in("PUBLIC", "TRACKS")),
        ["json0", "json1", "text0", "text1"]
    );
}

#[tokio::test]
async fn the_role_goes_in_the_scope_and_one_the_user_lacks_is_auth_kind() {
    let setup = setup_with(|c| c.role = Some("NOT_GRANTED".into())).await;
    let error = setup
        .client
        .open_channel(&channel("TRACKS"), &OpenOptions::discard())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Auth { .. }), "{error:?}");
    assert!(
        error.to_string().contains("scoped token exchange"),
        "{error}"
    );
    // The token exchange refused the role (403); no ingest call was made.
    assert_eq!(statuses(&setup.emulator, Endpoint::RestToken), [Some(403)]);
    assert!(calls(setup.control(), Endpoint::RestOpenChannel).is_empty());

    // No role: the user's default role, which may use the database.
    let waits = Arc::new(Waits::default());
    let mut config = config(&setup.emulator, &waits);
    config.role = None;
    let client = RestClient::new(config).unwrap();
    open(&client, &channel("TRACKS")).await;
}

#[tokio::test]
async fn one_scoped_token_serves_every_call_while_it_is_fresh() {
    let setup = support::setup().await;
    let handle = open(&setup.client, &channel("TRACKS")).await;
    setup
        .client
        .append_rows(&handle, rows("a", 1), "1")
        .await
        .unwrap();
    for _ in 0..3 {
        setup.client.channel_status(&handle).await.unwrap();
    }
    assert_eq!(
        statuses(&setup.emulator, Endpoint::RestHostname),
        [Some(200)]
    );
    assert_eq!(statuses(&setup.emulator, Endpoint::RestToken), [Some(200)]);
}

#[tokio::test]
async fn a_short_lived_scoped_token_is_renewed_before_it_expires() {
    // One second of life: the client reads it from the token's `exp` and renews halfway, so calls made
    // over more than two tokens' lives never meet a 401. (A client assuming a longer life would keep the
    // token past its expiry and be refused.)
    let emulator = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .scoped_token_lifetime(Duration::from_secs(1))
        .call_log_capacity(1_000_000)
        .start()
        .await
        .unwrap();
    create_table(emulator.control(), "TRACKS");
    let waits = Arc::new(Waits::default());
    let client = RestClient::new(config(&emulator, &waits)).unwrap();
    let handle = open(&client, &channel("TRACKS")).await;
    let started = std::time::Instant::now();
    let mut calls_made = 0;
    // Calls until a third token was issued: the loop ends on state; the bound only stops a broken client.
    while statuses(&emulator, Endpoint::RestToken).len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no renewal after {calls_made} calls"
        );
        for _ in 0..20 {
            client.channel_status(&handle).await.unwrap();
            calls_made += 1;
        }
    }
    let refused: Vec<_> = calls(emulator.control(), Endpoint::RestBulkStatus)
        .into_iter()
        .filter(|c| c.status != Some(200))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(waits.waits().is_empty());
}

#[tokio::test]
async fn a_401_fetches_a_fresh_token_and_tries_exactly_once_more() {
    let setup = support::setup().await;
    let handle = open(&setup.client, &channel("TRACKS")).await;
    setup.control().expire_scoped_tokens();
    setup
        .client
        .append_rows(&handle, rows("a", 1), "1")
        .await
        .unwrap();
    assert_eq!(
        statuses(&setup.emulator, Endpoint::RestAppend),
        [Some(401), Some(200)]
    );
    assert_eq!(statuses(&setup.emulator, Endpoint::RestToken).len(), 2);
    // No backoff for a refresh: the fresh token goes at once.
    assert!(setup.waits.waits().is_empty());
    assert_eq!(landed_ids(setup.control(), &handle.channel.table), ["a0"]);
}

#[tokio::test]
async fn a_second_401_is_auth_kind() {
    let setup = support::setup().await;
    let handle = open(&setup.client, &channel("TRACKS")).await;
    setup.control().fail_next(
        Endpoint::RestAppend,
        2,
        Failure::Shaped {
            status: 401,
            code: "ERR_UNAUTHORIZED".into(),
            shape: BodyShape::Documented,
        },
    );
    let error = setup
        .client
        .append_rows(&handle, rows("a", 1), "1")
        .await
        .unwrap_err();
    assert!(matches!(error.error, Error::Auth { .. }), "{error:?}");
    assert!(error.accepted.is_empty());
    assert_eq!(
        statuses(&setup.emulator, Endpoint::RestAppend),
        [Some(401), Some(401)]
    );
    assert_eq!(statuses(&setup.emulator, Endpoint::RestToken).len(), 2);
    // The token is not spent: the next append goes through.
    setup
        .client
        .append_rows(&handle, rows("b", 1), "2")
        .await
        .unwrap();
    assert_eq!(landed_ids(setup.control(), &handle.channel.table), ["b0"]);
}

#[tokio::test]
async fn tokens_that_are_expired_when_issued_end_auth_kind_after_one_refresh() {
    let emulator = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .scoped_token_lifetime(Duration::ZERO)
        .start()
        .await
        .unwrap();
    create_table(emulator.control(), "TRACKS");
    let waits = Arc::new(Waits::default());
    let client = RestClient::new(config(&emulator, &waits)).unwrap();
    let error = client
        .open_channel(&channel("TRACKS"), &OpenOptions::discard())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Auth { .. }), "{error:?}");
    assert_eq!(
        statuses(&emulator, Endpoint::RestOpenChannel),
        [Some(401), Some(401)]
    );
    assert_eq!(statuses(&emulator, Endpoint::RestToken).len(), 2);
}

const PAT: &str = "pat-secret-0123456789";

async fn pat_emulator() -> Emulator {
    let emulator = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .user(
            User::new("PAT_USER")
                .public_key(demo::PUBLIC_KEY_PEM)
                .role(demo::ROLE)
                .programmatic_access_token(PAT),
        )
        .start()
        .await
        .unwrap();
    create_table(emulator.control(), "TRACKS");
    emulator
}

fn pat_client(emulator: &Emulator, pat: &str, ingest_url: Option<String>) -> RestClient {
    let waits = Arc::new(Waits::default());
    let mut config = config(emulator, &waits);
    config.user = "PAT_USER".into();
    config.role = None;
    config.credentials = Credentials::ProgrammaticAccessToken(Secret::new(pat));
    config.ingest_url = ingest_url;
    RestClient::new(config).unwrap()
}

#[tokio::test]
async fn a_programmatic_access_token_works_in_place_of_the_key_pair() {
    let emulator = pat_emulator().await;
    // The emulator's discovery takes key-pair JWTs only, so the ingest host is given.
    let client = pat_client(&emulator, PAT, Some(emulator.base_url()));
    assert!(!format!("{client:?}").contains(PAT));
    let handle = open(&client, &channel("TRACKS")).await;
    client
        .append_rows(&handle, rows("p", 2), "1")
        .await
        .unwrap();
    let status = client.channel_status(&handle).await.unwrap().unwrap();
    assert_eq!(status.committed.as_deref(), Some("1"));
    // Neither discovery nor a token exchange: the PAT itself is the bearer.
    assert!(statuses(&emulator, Endpoint::RestHostname).is_empty());
    assert!(statuses(&emulator, Endpoint::RestToken).is_empty());
    assert_eq!(
        landed_ids(emulator.control(), &handle.channel.table),
        ["p0", "p1"]
    );
}

#[tokio::test]
async fn a_refused_programmatic_access_token_is_auth_kind_and_never_quoted() {
    let emulator = pat_emulator().await;
    let wrong = "pat-wrong-9876543210";
    let client = pat_client(&emulator, wrong, Some(emulator.base_url()));
    let error = client
        .open_channel(&channel("TRACKS"), &OpenOptions::discard())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Auth { .. }), "{error:?}");
    // Tried once more after the 401 (a PAT is never renewed, so the same one), then given up.
    assert_eq!(
        statuses(&emulator, Endpoint::RestOpenChannel),
        [Some(401), Some(401)]
    );
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(wrong), "{text}");
    }
    // Discovery with the PAT: the emulator takes key-pair JWTs only there, and says so with a 401.
    let client = pat_client(&emulator, PAT, None);
    let error = client.ingest_url().await.unwrap_err();
    assert!(matches!(error, Error::Auth { .. }), "{error:?}");
    assert!(error.to_string().contains("hostname discovery"), "{error}");
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(PAT), "{text}");
    }
}
