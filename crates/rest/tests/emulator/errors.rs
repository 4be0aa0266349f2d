//! Every row of the error table of `rest-protocol.md`, in every body shape the service is seen to answer
//! (`{code,message}`, `{error_code}`, a bare string, empty, HTML), mapped to the boundary's error kinds by
//! status and code; messages name the call's channel and table and never carry a token.

use std::time::Duration;

use snowpipe_api::{
    Backend, BackendExt, Call, ChannelHandle, DropOptions, Error, MissingObject, OpenOptions,
};
use snowpipe_emulator::{BodyShape, Endpoint, Failure};

use crate::support::{self, RETRIES, Setup, calls, channel_of, open, rows};

/// What a call should come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// It succeeds (retried or waited out).
    Ok,
    Reopen,
    Permanent,
    Auth,
    Missing(MissingObject),
    Retryable,
    OutcomeUnknown,
}

fn kind_of(error: &Error) -> Expect {
    match error {
        Error::Reopen { .. } => Expect::Reopen,
        Error::Permanent { .. } => Expect::Permanent,
        Error::Auth { .. } => Expect::Auth,
        Error::MissingObject { object, .. } => Expect::Missing(*object),
        Error::Retryable { .. } => Expect::Retryable,
        Error::OutcomeUnknown { .. } => Expect::OutcomeUnknown,
        other => panic!("unexpected kind: {other:?}"),
    }
}

const SHAPES: [BodyShape; 5] = [
    BodyShape::Documented,
    BodyShape::ErrorCode,
    BodyShape::BareString,
    BodyShape::Empty,
    BodyShape::Html,
];

/// Whether the body carries the code (the empty and HTML shapes do not).
fn coded(shape: BodyShape) -> bool {
    !matches!(shape, BodyShape::Empty | BodyShape::Html)
}

/// One row: `count` answers of `status` with `code` to `call`, and what the call comes to when the body
/// carries the code, and when it does not (then only the status classifies).
struct Row {
    call: Call,
    status: u16,
    code: &'static str,
    count: u32,
    with_code: Expect,
    without_code: Expect,
    /// Requests the call makes in all, when the body carries the code.
    requests: usize,
    /// The same when it does not.
    requests_without_code: usize,
}

impl Row {
    /// The requests made when the body does not carry the code, where that differs.
    const fn without_code_in(mut self, requests: usize) -> Self {
        self.requests_without_code = requests;
        self
    }
}

const fn row(
    call: Call,
    status: u16,
    code: &'static str,
    count: u32,
    with_code: Expect,
    without_code: Expect,
    requests: usize,
) -> Row {
    Row {
        call,
        status,
        code,
        count,
        with_code,
        without_code,
        requests,
        requests_without_code: requests,
    }
}

fn endpoint(call: Call) -> Endpoint {
    match call {
        Call::OpenChannel => Endpoint::RestOpenChannel,
        Call::Append => Endpoint::RestAppend,
        Call::BulkStatus | Call::ChannelStatus => Endpoint::RestBulkStatus,
        Call::DropChannel => Endpoint::RestDropChannel,
        other => panic!("{other:?}"),
    }
}

/// Makes `call` with the fault scripted; an open opens, other calls go to `handle`, opened before.
async fn call(setup: &Setup, handle: &ChannelHandle, call: Call) -> Result<(), Error> {
    let client = &setup.client;
    match call {
        Call::OpenChannel => client
            .open_channel(&handle.channel, &OpenOptions::wait())
            .await
            .map(|_| ()),
        Call::Append => client
            .append_rows(handle, rows("r", 2), "1")
            .await
            .map(|_| ())
            .map_err(|e| {
                assert!(e.accepted.is_empty(), "{e:?}");
                e.error
            }),
        Call::ChannelStatus | Call::BulkStatus => client.channel_status(handle).await.map(|_| ()),
        Call::DropChannel => client
            .drop_channel(handle, &DropOptions::default())
            .await
            .map(|_| ()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_row_of_the_error_table_in_every_body_shape() {
    use Call::{Append, BulkStatus, DropChannel, OpenChannel};
    use Expect::{Auth, Missing, Ok, OutcomeUnknown, Permanent, Reopen, Retryable};
    let exhaust = u32::try_from(RETRIES).unwrap() + 1;
    let all = RETRIES + 1;
    let table = [
        // 400: a stale token is reopen-kind; anything else is a malformed request, not retried.
        row(
            Append,
            400,
            "STALE_CONTINUATION_TOKEN_SEQUENCER",
            1,
            Reopen,
            Permanent,
            1,
        ),
        row(Append, 400, "ERR_BAD_REQUEST", 1, Permanent, Permanent, 1),
        row(
            OpenChannel,
            400,
            "ERR_BAD_REQUEST",
            1,
            Permanent,
            Permanent,
            1,
        ),
        // 401: one fresh token, then auth-kind.
        row(OpenChannel, 401, "ERR_UNAUTHORIZED", 2, Auth, Auth, 2),
        row(Append, 401, "ERR_UNAUTHORIZED", 2, Auth, Auth, 2),
        row(BulkStatus, 401, "ERR_UNAUTHORIZED", 2, Auth, Auth, 2),
        row(OpenChannel, 401, "ERR_UNAUTHORIZED", 1, Ok, Ok, 2),
        // 403: auth-kind at once.
        row(
            OpenChannel,
            403,
            "ERR_ROLE_NOT_AUTHORIZED",
            1,
            Auth,
            Auth,
            1,
        ),
        row(Append, 403, "ERR_ROLE_NOT_AUTHORIZED", 1, Auth, Auth, 1),
        row(BulkStatus, 403, "ERR_ROLE_NOT_AUTHORIZED", 1, Auth, Auth, 1),
        // 404: the DDL path for a table (pipe) or schema; a database is auth-kind; a lost channel reopens.
        row(
            OpenChannel,
            404,
            "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            1,
            Missing(MissingObject::Table),
            Permanent,
            1,
        ),
        row(
            OpenChannel,
            404,
            "ERR_TABLE_DOES_NOT_EXIST_NOT_AUTHORIZED",
            1,
            Missing(MissingObject::Table),
            Permanent,
            1,
        ),
        row(
            OpenChannel,
            404,
            "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            1,
            Missing(MissingObject::Schema),
            Permanent,
            1,
        ),
        row(
            OpenChannel,
            404,
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            1,
            Auth,
            Permanent,
            1,
        ),
        row(
            Append,
            404,
            "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            1,
            Missing(MissingObject::Table),
            Permanent,
            1,
        ),
        row(
            Append,
            404,
            "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            1,
            Reopen,
            Permanent,
            1,
        ),
        row(
            BulkStatus,
            404,
            "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            1,
            Missing(MissingObject::Schema),
            Permanent,
            1,
        ),
        // A channel the service does not know is already dropped.
        row(
            DropChannel,
            404,
            "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            1,
            Ok,
            Permanent,
            1,
        ),
        // 408, 429, 5xx: retried; an append only on 429 (after 408 and 5xx its rows may be in).
        row(
            OpenChannel,
            500,
            "ERR_GENERAL_EXCEPTION_RETRY_REQUEST",
            2,
            Ok,
            Ok,
            3,
        ),
        row(
            OpenChannel,
            503,
            "ERR_GENERAL_EXCEPTION_RETRY_REQUEST",
            exhaust,
            Retryable,
            Retryable,
            all,
        ),
        row(OpenChannel, 408, "ERR_REQUEST_TIMEOUT", 1, Ok, Ok, 2),
        row(OpenChannel, 429, "ERR_TOO_MANY_REQUESTS", 1, Ok, Ok, 2),
        row(
            BulkStatus,
            502,
            "ERR_GENERAL_EXCEPTION_RETRY_REQUEST",
            2,
            Ok,
            Ok,
            3,
        ),
        row(
            BulkStatus,
            429,
            "ERR_TOO_MANY_REQUESTS",
            exhaust,
            Retryable,
            Retryable,
            all,
        ),
        row(
            DropChannel,
            503,
            "ERR_GENERAL_EXCEPTION_RETRY_REQUEST",
            1,
            Ok,
            Ok,
            2,
        ),
        row(
            Append,
            500,
            "ERR_GENERAL_EXCEPTION_RETRY_REQUEST",
            1,
            OutcomeUnknown,
            OutcomeUnknown,
            1,
        ),
        row(
            Append,
            503,
            "ERR_GENERAL_EXCEPTION_RETRY_REQUEST",
            1,
            OutcomeUnknown,
            OutcomeUnknown,
            1,
        ),
        row(
            Append,
            408,
            "ERR_REQUEST_TIMEOUT",
            1,
            OutcomeUnknown,
            OutcomeUnknown,
            1,
        ),
        row(Append, 429, "ERR_TOO_MANY_REQUESTS", 2, Ok, Ok, 3),
        row(
            Append,
            429,
            "ERR_TOO_MANY_REQUESTS",
            exhaust,
            Retryable,
            Retryable,
            all,
        ),
        // 409: an open waits out uncommitted rows and opens in progress; any other code reopens. Without
        // the code, a 409 can only be read as reopen-kind.
        row(
            OpenChannel,
            409,
            "ERR_CHANNEL_HAS_UNCOMMITTED_DATA",
            2,
            Ok,
            Reopen,
            3,
        )
        .without_code_in(1),
        row(
            OpenChannel,
            409,
            "ERR_OPEN_CHANNEL_IN_PROGRESS",
            1,
            Ok,
            Reopen,
            2,
        )
        .without_code_in(1),
        row(
            OpenChannel,
            409,
            "ERR_CHANNEL_MUST_BE_REOPENED",
            1,
            Reopen,
            Reopen,
            1,
        ),
        row(
            Append,
            409,
            "ERR_CHANNEL_MUST_BE_REOPENED_DUE_TO_ROW_SEQ_GAP",
            1,
            Reopen,
            Reopen,
            1,
        ),
        row(
            Append,
            409,
            "ERR_CHANNEL_HAS_INVALID_CLIENT_SEQUENCER",
            1,
            Reopen,
            Reopen,
            1,
        ),
        // 413: the client splits below the limit, so this is a bug, not retried. 501 is not transient.
        row(
            Append,
            413,
            "ERR_PAYLOAD_TOO_LARGE",
            1,
            Permanent,
            Permanent,
            1,
        ),
        row(
            OpenChannel,
            501,
            "ERR_NOT_IMPLEMENTED",
            1,
            Permanent,
            Permanent,
            1,
        ),
    ];
    let setup = support::setup().await;
    let control = setup.control();
    let mut failures = Vec::new();
    let mut case = 0;
    for r in &table {
        for shape in SHAPES {
            case += 1;
            let channel = channel_of("TRACKS", &format!("case{case}"));
            let handle = if r.call == Call::OpenChannel {
                ChannelHandle {
                    id: channel.name(),
                    channel: channel.clone(),
                }
            } else {
                open(&setup.client, &channel).await
            };
            control.clear_calls();
            control.fail_next(
                endpoint(r.call),
                r.count,
                Failure::Shaped {
                    status: r.status,
                    code: r.code.into(),
                    shape,
                },
            );
            let result = call(&setup, &handle, r.call).await;
            control.clear_faults();
            let (expected, expected_requests) = if coded(shape) {
                (r.with_code, r.requests)
            } else {
                (r.without_code, r.requests_without_code)
            };
            let got = match &result {
                Result::Ok(()) => Expect::Ok,
                Err(e) => kind_of(e),
            };
            let requests = calls(control, endpoint(r.call)).len();
            let label = format!(
                "{:?} {} {} x{} {shape:?}",
                r.call, r.status, r.code, r.count
            );
            if got != expected || requests != expected_requests {
                failures.push(format!(
                    "{label}: expected {expected:?} in {expected_requests} requests, got {got:?} in {requests}: {result:?}"
                ));
                continue;
            }
            if let Err(error) = &result {
                let message = error.to_string();
                let table = channel.table.to_string();
                let named = message.contains(&table)
                    && (r.call == Call::BulkStatus || message.contains(&channel.name()));
                if !named {
                    failures.push(format!("{label}: the message names neither: {message}"));
                }
                if coded(shape) && !message.contains(r.code) && !error.code().contains(r.code) {
                    failures.push(format!("{label}: the code is lost: {message}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn retries_follow_the_policys_schedule_and_retry_after() {
    let setup = support::setup().await;
    let channel = channel_of("TRACKS", "schedule");
    setup.control().fail_next(
        Endpoint::RestOpenChannel,
        3,
        Failure::Shaped {
            status: 503,
            code: "ERR_GENERAL_EXCEPTION_RETRY_REQUEST".into(),
            shape: BodyShape::BareString,
        },
    );
    open(&setup.client, &channel).await;
    // No jitter in the tests' policy: 100, 200, 400 ms, exactly.
    assert_eq!(
        setup.waits.waits(),
        [100, 200, 400].map(Duration::from_millis)
    );
}

const PAT: &str = "pat-secret-0123456789";

#[tokio::test]
async fn error_messages_and_codes_never_carry_the_token() {
    let emulator = snowpipe_emulator::Emulator::builder()
        .commit_lag(Duration::ZERO)
        .user(
            snowpipe_emulator::User::new("PAT_USER")
                .public_key(snowpipe_emulator::demo::PUBLIC_KEY_PEM)
                .role(snowpipe_emulator::demo::ROLE)
                .programmatic_access_token(PAT),
        )
        .start()
        .await
        .unwrap();
    support::create_table(emulator.control(), "TRACKS");
    let waits = std::sync::Arc::new(support::Waits::default());
    let mut config = support::config(&emulator, &waits);
    config.user = "PAT_USER".into();
    config.role = None;
    config.credentials =
        snowpipe_rest::Credentials::ProgrammaticAccessToken(snowpipe_api::Secret::new(PAT));
    config.ingest_url = Some(emulator.base_url());
    let client = snowpipe_rest::RestClient::new(config).unwrap();
    let handle = open(&client, &channel_of("TRACKS", "0")).await;
    // A service that echoes the bearer back, in each shape: as a sentence, and as the code itself.
    for (shape, code) in [
        (
            BodyShape::BareString,
            format!("the token {PAT} is not valid"),
        ),
        (BodyShape::Documented, format!("ERR_{PAT}")),
        (BodyShape::ErrorCode, PAT.to_owned()),
    ] {
        emulator.control().fail_next(
            Endpoint::RestAppend,
            1,
            Failure::Shaped {
                status: 400,
                code,
                shape,
            },
        );
        let error = client
            .append_rows(&handle, rows("s", 1), "1")
            .await
            .unwrap_err()
            .error;
        assert!(matches!(error, Error::Permanent { .. }), "{error:?}");
        for text in [
            error.to_string(),
            format!("{error:?}"),
            error.code().to_owned(),
        ] {
            assert!(!text.contains(PAT), "{shape:?}: {text}");
        }
        assert!(
            error.to_string().contains(&handle.channel.name()),
            "{error}"
        );
    }
}
