//! [`Sidecar`]: the [`Backend`] over the sidecar service, keeping every detail of its protocol inside —
//! channel ids handed out by the service, `success: false` answers, `sync` deletes, 404 meaning "not found",
//! per-row error lists.

use async_trait::async_trait;

use super::{
    Endpoint, HttpClient, HttpError,
    wire::{Account, ChannelErrorCode, ChannelResponse, CreateChannelRequest, StatusResponse},
};
use crate::{
    AppendError, AppendRequest, Appended, Backend, Call, Capabilities, ChannelHandle, ChannelRef,
    ChannelStatus, DropOptions, Error, MissingObject, OnUncommitted, OpenOptions, OpenedChannel,
    Progress, RejectedRow, Result, SentRequest,
};

/// The sidecar service as a [`Backend`]: an [`HttpClient`] and the credentials it opens channels with.
///
/// What it can do (see [`Capabilities`]): an open reports the table's columns, and statuses report the
/// latest offset the channel was handed. It cannot wait for an earlier writer's uncommitted rows (the
/// sidecar always discards them on reopen) nor store a committed token.
///
/// ```no_run
/// use snowpipe_api::{
///     Backend, BackendExt, ChannelRef, OpenOptions, Row, Secret, TableRef,
///     sidecar::{Account, HttpClient, HttpConfig, Sidecar},
/// };
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let account = Account {
///     account: "myorg-myaccount".into(),
///     user: "LOADER".into(),
///     role: "LOADER_ROLE".into(),
///     private_key: Secret::new(std::fs::read_to_string("rsa_key.p8")?),
///     private_key_passphrase: Secret::default(),
/// };
/// let sidecar = Sidecar::new(HttpClient::new(HttpConfig::default())?, account);
/// let channel = ChannelRef {
///     table: TableRef { database: "ANALYTICS".into(), schema: "EVENTS".into(), table: "TRACKS".into(), enable_iceberg: false },
///     destination: "destination-1".into(),
///     instance: "1".into(),
/// };
/// let opened = sidecar.open_channel(&channel, &OpenOptions::discard()).await?;
/// let rows = vec![Row::parse(r#"{"ID":"a1","EVENT":"signed_up"}"#)?];
/// sidecar.append_rows(&opened.handle, rows, "1001").await?;
/// if let Some(status) = sidecar.channel_status(&opened.handle).await? {
///     println!("committed up to {:?}", status.committed);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Sidecar {
    client: HttpClient,
    account: Account,
}

impl Sidecar {
    /// The backend over `client`, opening channels as `account`.
    pub fn new(client: HttpClient, account: Account) -> Self {
        Self { client, account }
    }

    /// The HTTP client.
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    fn request(&self, channel: &ChannelRef) -> CreateChannelRequest {
        CreateChannelRequest {
            rudder_identifier: channel.destination.clone(),
            partition: channel.instance.clone(),
            account: self.account.clone(),
            table: channel.table.clone(),
        }
    }
}

#[async_trait]
impl Backend for Sidecar {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_columns_on_open(true)
            .with_reports_inserted_offset(true)
    }

    async fn open_channel(
        &self,
        channel: &ChannelRef,
        options: &OpenOptions,
    ) -> Result<OpenedChannel> {
        let call = Call::OpenChannel;
        if options.offset_token.is_some() {
            return Err(Error::Unsupported {
                call,
                what: "store a committed offset token when it opens a channel",
            });
        }
        if options.uncommitted == OnUncommitted::Wait {
            return Err(Error::Unsupported {
                call,
                what: "wait for an earlier writer's uncommitted rows when it opens a channel",
            });
        }
        let response = self
            .client
            .create_channel(&self.request(channel))
            .await
            .map_err(|e| from_http(call, e))?;
        if !response.success {
            return Err(refusal(&response));
        }
        let columns = response
            .table_schema
            .iter()
            .map(|(name, info)| info.to_column(name))
            .collect();
        Ok(OpenedChannel {
            handle: ChannelHandle {
                channel: channel.clone(),
                id: response.channel_id,
            },
            status: None,
            columns: Some(columns),
        })
    }

    async fn append(
        &self,
        channel: &ChannelHandle,
        request: &AppendRequest,
    ) -> Result<Appended, AppendError> {
        let call = Call::Append;
        let rows = 0..request.rows.len();
        if rows.is_empty() {
            return Ok(Appended::default());
        }
        // The sidecar takes one offset per insert, however large: the end token of the rows.
        let tokens = request.tokens.tokens(rows.clone());
        let inserted = self
            .client
            .insert(&channel.id, &request.rows, &tokens.end)
            .await
            .map_err(|e| from_http(call, e))?;
        if !inserted.response.success {
            let rows = inserted
                .response
                .errors
                .iter()
                .map(|e| RejectedRow {
                    index: usize::try_from(e.row_index).unwrap_or(usize::MAX),
                    message: e.message.clone(),
                })
                .collect();
            return Err(Error::RowsRejected {
                call,
                code: inserted.response.code,
                rows,
            }
            .into());
        }
        Ok(Appended {
            requests: vec![SentRequest {
                rows,
                tokens,
                body_bytes: inserted.body_bytes,
            }],
        })
    }

    async fn channel_status(&self, channel: &ChannelHandle) -> Result<Option<ChannelStatus>> {
        match self.client.channel_status(&channel.id).await {
            Ok(status) => Ok(Some(from_wire(&status))),
            Err(HttpError::ChannelNotFound { .. }) => Ok(None),
            Err(error) => Err(from_http(Call::ChannelStatus, error)),
        }
    }

    async fn bulk_status(&self, channels: &[ChannelHandle]) -> Result<Vec<Option<ChannelStatus>>> {
        let ids: Vec<String> = channels.iter().map(|c| c.id.clone()).collect();
        let response = self
            .client
            .bulk_status(&ids)
            .await
            .map_err(|e| from_http(Call::BulkStatus, e))?;
        // An id the service lists under `notFound`, or does not mention at all, is a channel it does not
        // know: either way the caller opens it anew.
        Ok(ids
            .iter()
            .map(|id| response.statuses.get(id).map(from_wire))
            .collect())
    }

    async fn drop_channel(&self, channel: &ChannelHandle, options: &DropOptions) -> Result<()> {
        match self
            .client
            .delete_channel(&channel.id, options.wait_for_commit)
            .await
        {
            Ok(()) | Err(HttpError::ChannelNotFound { .. }) => Ok(()),
            Err(error) => Err(from_http(Call::DropChannel, error)),
        }
    }
}

/// A sidecar status as the boundary says it: an empty offset is "none yet".
fn from_wire(status: &StatusResponse) -> ChannelStatus {
    let token = |t: &str| (!t.is_empty()).then(|| t.to_owned());
    ChannelStatus {
        valid: status.valid,
        committed: token(&status.offset),
        progress: Progress::Inserted(token(&status.latest_inserted_offset)),
    }
}

/// The kind of a `success: false` answer to opening a channel, by its code and Snowflake's HTTP status:
/// credentials, role and a missing database are auth-kind; a missing schema or table takes the DDL path; any
/// other refusal with Snowflake HTTP 400 will not get better; the rest may.
fn refusal(response: &ChannelResponse) -> Error {
    let call = Call::OpenChannel;
    let code = response.error_code().unwrap_or(ChannelErrorCode::Unknown);
    let message = format!(
        "{} (Snowflake HTTP {}: {})",
        response.error, response.snowflake_api_http_code, response.snowflake_api_message
    );
    let missing = |object| Error::MissingObject {
        call,
        object,
        code: code.to_string(),
        message: message.clone(),
    };
    match code {
        ChannelErrorCode::Validation
        | ChannelErrorCode::AuthenticationFailed
        | ChannelErrorCode::RoleDoesNotExistOrNotAuthorized
        | ChannelErrorCode::DatabaseDoesNotExistOrNotAuthorized => Error::Auth {
            call,
            code: code.to_string(),
            message,
        },
        ChannelErrorCode::SchemaDoesNotExistOrNotAuthorized => missing(MissingObject::Schema),
        ChannelErrorCode::TableDoesNotExistOrNotAuthorized => missing(MissingObject::Table),
        _ => {
            let source = Refused {
                code: code.to_string(),
                message,
            };
            if response.snowflake_api_http_code == 400 {
                Error::Permanent {
                    call,
                    code: source.code.clone(),
                    source: Box::new(source),
                }
            } else {
                Error::Retryable {
                    call,
                    code: source.code.clone(),
                    source: Box::new(source),
                }
            }
        }
    }
}

/// A refusal to open a channel that is neither auth- nor DDL-kind.
#[derive(Debug, thiserror::Error)]
#[error("the service refused with {code}: {message}")]
struct Refused {
    code: String,
    message: String,
}

/// The boundary's kind of a failed sidecar call. After the client's own retries:
/// - an insert that may have been applied has an unknown outcome;
/// - 404 on a channel is a lost channel: open it again;
/// - a request that cannot even be built will not get better;
/// - everything else (statuses, transport failures, undecodable answers) may pass: retry later.
fn from_http(call: Call, error: HttpError) -> Error {
    let code = match &error {
        HttpError::ChannelNotFound { .. } => "404".to_owned(),
        HttpError::UnexpectedStatus { status, .. } => status.to_string(),
        HttpError::Transport { .. } => "transport".to_owned(),
        HttpError::Timeout { .. } => "timeout".to_owned(),
        HttpError::Decode { .. } => "decode".to_owned(),
        HttpError::InvalidRequest { .. } => "invalid_request".to_owned(),
    };
    if error.is_outcome_unknown() && error.call() == Endpoint::Insert {
        return Error::OutcomeUnknown {
            call,
            code,
            source: Box::new(error),
        };
    }
    match error {
        HttpError::ChannelNotFound { .. } => Error::Reopen {
            call,
            code,
            message: error.to_string(),
        },
        HttpError::InvalidRequest { .. } => Error::Permanent {
            call,
            code,
            source: Box::new(error),
        },
        error => Error::Retryable {
            call,
            code,
            source: Box::new(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Excerpt, sidecar::Delivery};

    #[test]
    fn refusals_are_typed_by_what_to_do() {
        let refused = |code: &str, http: i64| {
            refusal(&ChannelResponse {
                code: code.into(),
                error: "nope".into(),
                snowflake_api_http_code: http,
                snowflake_api_message: "why".into(),
                ..ChannelResponse::default()
            })
        };
        for code in [
            "ERR_VALIDATION_ERROR",
            "ERR_AUTHENTICATION_FAILED",
            "ERR_ROLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        ] {
            assert!(matches!(refused(code, 0), Error::Auth { .. }), "{code}");
        }
        assert_eq!(
            refused("ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED", 0).missing_object(),
            Some(MissingObject::Schema)
        );
        assert_eq!(
            refused("ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED", 0).missing_object(),
            Some(MissingObject::Table)
        );
        assert!(matches!(
            refused("ERR_SCHEMA_CONFLICT", 400),
            Error::Permanent { .. }
        ));
        assert!(matches!(
            refused("ERR_UNKNOWN_ERROR", 500),
            Error::Retryable { .. }
        ));
        let text = refused("ERR_AUTHENTICATION_FAILED", 401).to_string();
        assert!(
            text.contains("ERR_AUTHENTICATION_FAILED") && text.contains("Snowflake HTTP 401: why"),
            "{text}"
        );
    }

    #[test]
    fn http_failures_map_to_what_the_caller_must_do() {
        let lost = |call| HttpError::Timeout {
            call,
            timeout: Duration::from_secs(1),
            delivery: Delivery::MaybeSent,
        };
        assert!(from_http(Call::Append, lost(Endpoint::Insert)).is_outcome_unknown());
        // A status call that timed out after the client's retries is simply not answered.
        assert!(matches!(
            from_http(Call::ChannelStatus, lost(Endpoint::Status)),
            Error::Retryable { .. }
        ));
        let not_found = HttpError::ChannelNotFound {
            call: Endpoint::Insert,
            channel_id: "c".into(),
        };
        assert!(from_http(Call::Append, not_found).is_reopen());
        let status = HttpError::UnexpectedStatus {
            call: Endpoint::CreateChannel,
            status: 503,
            body: Excerpt::new(b"busy"),
            retry_after: None,
        };
        let error = from_http(Call::OpenChannel, status);
        assert_eq!(error.code(), "503");
        assert!(error.to_string().contains("HTTP 503: busy"), "{error}");
        let invalid = HttpError::InvalidRequest {
            call: Endpoint::Insert,
            reason: "x".into(),
        };
        assert!(matches!(
            from_http(Call::Append, invalid),
            Error::Permanent { .. }
        ));
    }
}
