//! Which failed sidecar calls are worth another attempt: the sidecar protocol's retry classifier, apart
//! from the policy ([`RetryConfig`](crate::RetryConfig)) that decides when.

use super::{Delivery, HttpError};

/// Whether a failed call is worth another attempt. The one place this is decided.
///
/// - connection failures before the request was sent: always;
/// - transport failures and timeouts after it may have been sent: only for idempotent calls, since an insert
///   may already have been applied (the caller resolves that, see [`HttpError::is_outcome_unknown`]);
/// - `429` and `5xx` but `501`: always, as the service answered without applying the request;
/// - channel not found, other statuses, undecodable answers, invalid requests: never.
pub fn is_retryable(error: &HttpError) -> bool {
    match error {
        HttpError::Transport {
            delivery: Delivery::NotSent,
            ..
        }
        | HttpError::Timeout {
            delivery: Delivery::NotSent,
            ..
        } => true,
        HttpError::Transport { call, .. } | HttpError::Timeout { call, .. } => call.is_idempotent(),
        HttpError::UnexpectedStatus { status, .. } => {
            *status == 429 || ((500..600).contains(status) && *status != 501)
        }
        HttpError::ChannelNotFound { .. }
        | HttpError::Decode { .. }
        | HttpError::InvalidRequest { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Excerpt, sidecar::Endpoint};

    fn status(code: u16) -> HttpError {
        HttpError::UnexpectedStatus {
            call: Endpoint::Insert,
            status: code,
            body: Excerpt::new(b""),
            retry_after: None,
        }
    }

    fn transport(call: Endpoint, delivery: Delivery) -> HttpError {
        HttpError::Transport {
            call,
            origin: "http://127.0.0.1:1".into(),
            delivery,
            source: "boom".into(),
        }
    }

    fn timeout(call: Endpoint, delivery: Delivery) -> HttpError {
        HttpError::Timeout {
            call,
            timeout: Duration::from_secs(1),
            delivery,
        }
    }

    #[test]
    fn classifier_follows_status_and_idempotency() {
        let check =
            |error: HttpError, expect: bool| assert_eq!(is_retryable(&error), expect, "{error}");
        check(status(429), true);
        check(status(500), true);
        check(status(502), true);
        check(status(503), true);
        check(status(599), true);
        check(status(501), false);
        check(status(400), false);
        check(status(409), false);
        check(transport(Endpoint::Insert, Delivery::NotSent), true);
        check(transport(Endpoint::Insert, Delivery::MaybeSent), false);
        check(transport(Endpoint::Status, Delivery::MaybeSent), true);
        check(timeout(Endpoint::Insert, Delivery::MaybeSent), false);
        check(timeout(Endpoint::Insert, Delivery::NotSent), true);
        check(timeout(Endpoint::BulkStatus, Delivery::MaybeSent), true);
        check(timeout(Endpoint::CreateChannel, Delivery::MaybeSent), true);
        check(
            HttpError::ChannelNotFound {
                call: Endpoint::Insert,
                channel_id: "c".into(),
            },
            false,
        );
        check(
            HttpError::InvalidRequest {
                call: Endpoint::Insert,
                reason: "x".into(),
            },
            false,
        );
        let decode = serde_json::from_str::<u8>("x").unwrap_err();
        check(
            HttpError::Decode {
                call: Endpoint::Status,
                source: decode,
                body: Excerpt::new(b"x"),
            },
            false,
        );
    }
}
