//! A small client of Snowflake's SQL API v2 for what the check needs beyond the channel layer's DDL
//! (`snowpipe_channels::SqlApiWarehouse`): reading rows back (`SELECT`) and dropping the schema. Key-pair
//! JWT per statement, asynchronous statements polled, every partition of a result read.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use snowpipe_api::https::{self, ClientOptions, HttpsClient};
use snowpipe_auth::{SigningKey, key_pair_jwt};

use crate::Target;

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The key cannot be used, or no TLS.
    #[error("cannot set up the SQL API client: {0}")]
    Setup(String),
    /// Snowflake answered an error.
    #[error("SQL API answered HTTP {status} ({code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Snowflake's code.
        code: String,
        /// Snowflake's message.
        message: String,
    },
    /// No answer, or one that cannot be read.
    #[error("SQL API: {0}")]
    Transport(String),
}

/// Rows a statement answered: column names and values (text or null).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// One entry per row, one value per column.
    pub data: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// The value of `column` in row `row`.
    pub fn get(&self, row: usize, column: &str) -> Option<&str> {
        let at = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))?;
        self.data.get(row)?.get(at)?.as_deref()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Answer {
    code: Option<String>,
    message: Option<String>,
    statement_handle: Option<String>,
    statement_status_url: Option<String>,
    result_set_meta_data: Option<Meta>,
    data: Vec<Vec<Option<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Meta {
    row_type: Vec<Column>,
    partition_info: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Column {
    name: String,
}

/// Runs statements as the target's user, role, warehouse and database.
pub struct Sql {
    client: HttpsClient,
    base: String,
    key: SigningKey,
    account: String,
    user: String,
    role: Option<String>,
    warehouse: String,
    database: String,
    timeout: Duration,
}

impl std::fmt::Debug for Sql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sql")
            .field("base", &self.base)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Sql {
    /// A client for the target's account host.
    ///
    /// # Errors
    /// The key cannot be read, or TLS cannot be set up.
    pub fn new(target: &Target, timeout: Duration) -> Result<Self, SqlError> {
        let key = SigningKey::from_pem(target.private_key.expose(), &target.passphrase)
            .map_err(|e| SqlError::Setup(e.to_string()))?;
        let client = https::client(&ClientOptions::default().connect_timeout(timeout))
            .map_err(|e| SqlError::Setup(e.to_string()))?;
        Ok(Self {
            client,
            base: target.account_base(),
            key,
            account: target.account.clone(),
            user: target.user.clone(),
            role: target.role.clone(),
            warehouse: target.warehouse.clone(),
            database: target.database.clone(),
            timeout,
        })
    }

    /// Runs one statement and reads every row it answers.
    ///
    /// # Errors
    /// Snowflake refused it, or no answer came within the timeout.
    pub async fn query(&self, statement: &str) -> Result<Rows, SqlError> {
        let mut body = serde_json::json!({
            "statement": statement,
            "timeout": self.timeout.as_secs(),
            "database": self.database,
            "warehouse": self.warehouse,
        });
        if let Some(role) = &self.role {
            body["role"] = role.clone().into();
        }
        let started = Instant::now();
        let mut answer = self
            .send(
                Method::POST,
                "/api/v2/statements",
                Some(Bytes::from(body.to_string())),
            )
            .await?;
        // 202: still running; its status URL answers 200 once done.
        while let Some(url) = answer.1 {
            if started.elapsed() > self.timeout {
                return Err(SqlError::Transport(format!(
                    "`{statement}` still running after {:?}",
                    self.timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            answer = self.send(Method::GET, &url, None).await?;
        }
        let first = answer.0;
        let meta = first.result_set_meta_data.unwrap_or_default();
        let mut rows = Rows {
            columns: meta.row_type.into_iter().map(|c| c.name).collect(),
            data: first.data,
        };
        let handle = first.statement_handle.unwrap_or_default();
        for partition in 1..meta.partition_info.len() {
            let (more, _) = self
                .send(
                    Method::GET,
                    &format!("/api/v2/statements/{handle}?partition={partition}"),
                    None,
                )
                .await?;
            rows.data.extend(more.data);
        }
        Ok(rows)
    }

    /// One request: the answer, and the URL to poll when the statement is still running.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(Answer, Option<String>), SqlError> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let jwt = key_pair_jwt(&self.key, &self.account, &self.user, SystemTime::now())
            .map_err(|e| SqlError::Setup(e.to_string()))?;
        let mut request = Request::new(Full::new(body.unwrap_or_default()));
        *request.method_mut() = method;
        *request.uri_mut() = url
            .parse()
            .map_err(|e| SqlError::Transport(format!("bad URL {url}: {e}")))?;
        let headers = request.headers_mut();
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", jwt.value()))
            .map_err(|_| SqlError::Setup("the JWT is not a header value".to_owned()))?;
        bearer.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, bearer);
        headers.insert(
            "X-Snowflake-Authorization-Token-Type",
            HeaderValue::from_static("KEYPAIR_JWT"),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("snowpipe-live/", env!("CARGO_PKG_VERSION"))),
        );
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| SqlError::Transport(format!("{}: {e}", https::describe(&e))))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), 64 << 20)
                .collect()
                .await
                .map_err(|e| SqlError::Transport(e.to_string()))?
                .to_bytes();
            Ok::<_, SqlError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| SqlError::Transport(format!("no answer within {:?}", self.timeout)))??;
        let answer: Answer = serde_json::from_slice(&body).unwrap_or_default();
        match status {
            StatusCode::OK => Ok((answer, None)),
            StatusCode::ACCEPTED => {
                let next = answer
                    .statement_status_url
                    .clone()
                    .or_else(|| {
                        answer
                            .statement_handle
                            .as_ref()
                            .map(|h| format!("/api/v2/statements/{h}"))
                    })
                    .ok_or_else(|| SqlError::Transport("202 without a status URL".to_owned()))?;
                Ok((answer, Some(next)))
            }
            other => Err(SqlError::Refused {
                status: other.as_u16(),
                code: answer.code.unwrap_or_default(),
                message: answer
                    .message
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect()),
            }),
        }
    }
}
