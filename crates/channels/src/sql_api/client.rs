//! [`SqlApiWarehouse`]: the [`Warehouse`] over `POST /api/v2/statements`.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, Once, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use backon::Retryable;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use snowpipe_api::{
    Column, RetryConfig, Secret,
    https::{self, ClientOptions, HttpsClient},
    retry::{Sleep, TokioSleep},
};
use snowpipe_auth::{SigningKey, Token, TokenCache, key_pair_jwt};
use snowpipe_grouping::Schema;

use crate::{Clock, SystemClock, Warehouse, WarehouseError, sql};

/// Settings of [`SqlApiWarehouse`]: the destination's account and credentials, and transport settings.
#[derive(Debug, Clone)]
pub struct SqlApiConfig {
    /// Account identifier, e.g. `myorg-myaccount` or `xy12345.us-east-2.aws`.
    pub account: String,
    /// User the statements run as.
    pub user: String,
    /// Role the statements run with.
    pub role: String,
    /// Warehouse the statements run on.
    pub warehouse: String,
    /// Database the statements run in.
    pub database: String,
    /// PKCS#8 PEM private key of the user.
    pub private_key: Secret,
    /// Its passphrase, empty when the key is not encrypted.
    pub private_key_passphrase: Secret,
    /// Whether tables are Iceberg tables (their own column types).
    pub iceberg: bool,
    /// Base URL; `https://<account>.snowflakecomputing.com` when `None`.
    pub base_url: Option<String>,
    /// Longest time one HTTP exchange may take.
    pub timeout: Duration,
    /// Longest time to wait for an asynchronous statement to finish.
    pub statement_timeout: Duration,
    /// Retries of transport failures, 408, 429 and 5xx (the statements are all `IF NOT EXISTS`, so repeating
    /// one is harmless).
    pub retry: RetryConfig,
    /// How to wait between attempts and polls.
    pub sleep: Arc<dyn Sleep>,
    /// Time for token claims.
    pub clock: Arc<dyn Clock>,
}

impl SqlApiConfig {
    /// Settings with the defaults for everything but the destination's own values.
    pub fn new(
        account: &str,
        user: &str,
        role: &str,
        warehouse: &str,
        database: &str,
        private_key: Secret,
    ) -> Self {
        Self {
            account: account.to_owned(),
            user: user.to_owned(),
            role: role.to_owned(),
            warehouse: warehouse.to_owned(),
            database: database.to_owned(),
            private_key,
            private_key_passphrase: Secret::default(),
            iceberg: false,
            base_url: None,
            timeout: Duration::from_secs(60),
            statement_timeout: Duration::from_secs(120),
            retry: RetryConfig::default(),
            sleep: Arc::new(TokioSleep),
            clock: Arc::new(SystemClock),
        }
    }

    /// Settings for a destination: its account, user, role, warehouse, database, key and Iceberg flag, with
    /// the defaults for the rest.
    pub fn for_destination(config: &crate::DestinationConfig) -> Self {
        let mut settings = Self::new(
            &config.account,
            &config.user,
            &config.role,
            &config.warehouse,
            &config.database,
            config.private_key.clone(),
        );
        settings.private_key_passphrase = config.private_key_passphrase.clone();
        settings.iceberg = config.enable_iceberg;
        settings
    }

    fn base_url(&self) -> String {
        match &self.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!(
                "https://{}.snowflakecomputing.com",
                self.account.trim().to_lowercase()
            ),
        }
    }
}

/// Runs DDL through Snowflake's SQL API v2 with key-pair authentication.
///
/// The key is read on first use, and a token is reused until five minutes before it expires
/// (`snowpipe-auth`'s [`TokenCache`]). Statements answered `202` are polled until they finish.
pub struct SqlApiWarehouse {
    config: SqlApiConfig,
    base: String,
    client: HttpsClient,
    key: Mutex<Option<Arc<SigningKey>>>,
    tokens: TokenCache,
}

impl std::fmt::Debug for SqlApiWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlApiWarehouse")
            .field("base", &self.base)
            .field("account", &self.config.account)
            .field("user", &self.config.user)
            .finish_non_exhaustive()
    }
}

/// What Snowflake says about a statement.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StatementAnswer {
    code: Option<String>,
    sql_state: Option<String>,
    message: Option<String>,
    statement_status_url: Option<String>,
    statement_handle: Option<String>,
}

/// A statement's result set: column names (`resultSetMetaData.rowType`) and rows of the first partition,
/// every value a string or null (`jsonv2`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ResultSet {
    result_set_meta_data: Option<ResultMeta>,
    data: Vec<Vec<Option<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ResultMeta {
    row_type: Vec<RowType>,
    partition_info: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RowType {
    name: String,
}

enum Progress {
    /// The statement finished; its answer.
    Done(Bytes),
    Pending(String),
}

/// Starts, once per process and on a thread of its own, the entropy gathering that aws-lc does the first
/// time anything asks it for randomness.
///
/// That first request costs tens of milliseconds (aws-lc's CPU-jitter entropy source). The first JWT signature
/// (RSA blinding) would pay it on the first upload's path, after the batch is read; started here, it overlaps
/// reading the batch instead. Should the thread not start, the first signature simply pays as before.
fn warm_up_randomness() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("aws-lc-entropy".to_owned())
            .spawn(|| {
                // Only the side effect matters: the random generator is seeded for the whole process.
                let _ = SystemRandom::new().fill(&mut [0_u8; 1]);
            });
    });
}

impl SqlApiWarehouse {
    /// A client for the destination; nothing is checked or sent until the first statement.
    pub fn new(config: SqlApiConfig) -> Result<Self, WarehouseError> {
        warm_up_randomness();
        let options = ClientOptions::default()
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .idle(2, Duration::from_secs(90));
        let client =
            https::client(&options).map_err(|e| WarehouseError::Transport(e.to_string()))?;
        let base = config.base_url();
        Ok(Self {
            config,
            base,
            client,
            key: Mutex::default(),
            tokens: TokenCache::default(),
        })
    }

    fn signing_key(&self) -> Result<Arc<SigningKey>, WarehouseError> {
        let mut key = self.key.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = key.as_ref() {
            return Ok(Arc::clone(key));
        }
        let parsed = Arc::new(SigningKey::from_pem(
            self.config.private_key.expose(),
            &self.config.private_key_passphrase,
        )?);
        *key = Some(Arc::clone(&parsed));
        Ok(parsed)
    }

    async fn token(&self) -> Result<Arc<Token>, WarehouseError> {
        let now = self.config.clock.system_time();
        self.tokens
            .get_or_refresh(now, || async {
                let key = self.signing_key()?;
                Ok(key_pair_jwt(
                    &key,
                    &self.config.account,
                    &self.config.user,
                    now,
                )?)
            })
            .await
    }

    async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), WarehouseError> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let mut request = Request::new(Full::new(body.unwrap_or_default()));
        *request.method_mut() = method;
        *request.uri_mut() = url
            .parse()
            .map_err(|e| WarehouseError::Transport(format!("bad SQL API URL {url}: {e}")))?;
        let bearer = format!("Bearer {}", self.token().await?.value());
        let headers = request.headers_mut();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&bearer)
                .map_err(|_| WarehouseError::Transport("token is not a header value".to_owned()))?,
        );
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
            HeaderValue::from_static(concat!("snowpipe-channels/", env!("CARGO_PKG_VERSION"))),
        );
        let origin = https::origin(request.uri());
        let failed = |e: &(dyn std::error::Error + 'static)| {
            WarehouseError::Transport(format!(
                "SQL API at {origin}: {}: {e}; check the account and the SQL API URL",
                https::describe(e)
            ))
        };
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| failed(&e))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), 1 << 20)
                .collect()
                .await
                .map_err(|e| failed(e.as_ref()))?
                .to_bytes();
            Ok((status, body))
        };
        match tokio::time::timeout(self.config.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(WarehouseError::Transport(format!(
                "SQL API at {}: no answer within {:?}",
                https::origin(&url.parse().unwrap_or_default()),
                self.config.timeout
            ))),
        }
    }

    async fn attempt(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Progress, WarehouseError> {
        let (status, body) = self.send(method, path, body).await?;
        classify(status, &body)
    }

    /// Submits a statement and waits for it to finish; returns its answer.
    async fn execute(&self, statement: String) -> Result<Bytes, WarehouseError> {
        let body = serde_json::json!({
            "statement": statement,
            "timeout": self.config.statement_timeout.as_secs(),
            "database": self.config.database,
            "warehouse": self.config.warehouse,
            "role": self.config.role,
        });
        let body = Bytes::from(body.to_string());
        tracing::debug!(statement = %statement, database = %self.config.database, "running DDL");
        let submit = || self.attempt(Method::POST, "/api/v2/statements", Some(body.clone()));
        let mut url = match self.with_retries(submit).await? {
            Progress::Done(answer) => return Ok(answer),
            Progress::Pending(url) => url,
        };
        let started = self.config.clock.now();
        let mut wait = Duration::from_millis(50);
        loop {
            if self.config.clock.now().duration_since(started) > self.config.statement_timeout {
                return Err(WarehouseError::Transport(format!(
                    "statement still running after {:?}: {statement}",
                    self.config.statement_timeout
                )));
            }
            self.config.sleep.sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
            match self
                .with_retries(|| self.attempt(Method::GET, &url, None))
                .await?
            {
                Progress::Done(answer) => return Ok(answer),
                Progress::Pending(next) => url = next,
            }
        }
    }

    async fn with_retries<'a, F, Fut>(&'a self, attempt: F) -> Result<Progress, WarehouseError>
    where
        F: FnMut() -> Fut + Send + 'a,
        Fut: Future<Output = Result<Progress, WarehouseError>> + Send + 'a,
    {
        let sleep = Arc::clone(&self.config.sleep);
        let retrying = attempt
            .retry(self.config.retry.delays())
            .sleep(move |delay| sleep.sleep(delay))
            .when(is_retryable)
            .notify(
                |error, delay| tracing::warn!(%error, ?delay, "retrying Snowflake SQL API call"),
            );
        // Named as `Send` for the same reason as in snowpipe-api's client (rust-lang/rust#102211).
        let retrying: Pin<Box<dyn Future<Output = Result<Progress, WarehouseError>> + Send + 'a>> =
            Box::pin(retrying);
        retrying.await
    }
}

/// Whether a failed SQL API call is worth another attempt: the statements are idempotent, so any
/// transport failure, 408, 429 or 5xx is.
fn is_retryable(error: &WarehouseError) -> bool {
    match error {
        WarehouseError::Transport(_) => true,
        WarehouseError::Unexpected { status, .. } => {
            matches!(status, 408 | 429) || (500..600).contains(status)
        }
        _ => false,
    }
}

/// Maps an answer of the SQL API to progress or an error kind, by status and Snowflake's code.
fn classify(status: StatusCode, body: &[u8]) -> Result<Progress, WarehouseError> {
    let answer: StatementAnswer = serde_json::from_slice(body).unwrap_or_default();
    let code = answer.code.clone().unwrap_or_default();
    let message = answer.message.clone().unwrap_or_default();
    match status.as_u16() {
        200 => Ok(Progress::Done(Bytes::copy_from_slice(body))),
        202 => {
            let url = answer
                .statement_status_url
                .or_else(|| {
                    answer
                        .statement_handle
                        .map(|h| format!("/api/v2/statements/{h}"))
                })
                .ok_or_else(|| WarehouseError::Unexpected {
                    status: 202,
                    body: excerpt(body),
                })?;
            Ok(Progress::Pending(url))
        }
        status @ (401 | 403) => Err(WarehouseError::Unauthorized {
            status,
            code,
            message,
        }),
        status @ (400 | 422) => {
            let sql_state = answer.sql_state.unwrap_or_default();
            Err(if code == "002003" {
                WarehouseError::ObjectMissing { code, message }
            } else if code == "003001" || sql_state == "42501" || code.starts_with("390") {
                // Insufficient privileges, or a token/authentication problem reported in the body.
                WarehouseError::Unauthorized {
                    status,
                    code,
                    message,
                }
            } else {
                WarehouseError::Rejected {
                    status,
                    code,
                    sql_state,
                    message,
                }
            })
        }
        status => Err(WarehouseError::Unexpected {
            status,
            body: excerpt(body),
        }),
    }
}

fn excerpt(body: &[u8]) -> String {
    snowpipe_api::Excerpt::new(body).to_string()
}

impl SqlApiWarehouse {
    /// Runs one statement as the destination's user and role, in its database, and answers the SQL API's
    /// answer (the JSON body). For diagnostics (`snowpipe-streaming check`); the manager itself goes through
    /// [`Warehouse`]. Errors are typed as for every statement.
    pub async fn run_statement(&self, statement: &str) -> Result<Bytes, WarehouseError> {
        self.execute(statement.to_owned()).await
    }
}

#[async_trait]
impl Warehouse for SqlApiWarehouse {
    async fn create_schema(&self, schema: &str) -> Result<(), WarehouseError> {
        self.execute(sql::create_schema(schema)).await.map(drop)
    }

    async fn create_table(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), WarehouseError> {
        self.execute(sql::create_table(
            schema,
            table,
            columns.iter(),
            self.config.iceberg,
        ))
        .await
        .map(drop)
    }

    async fn add_columns(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), WarehouseError> {
        self.execute(sql::add_columns(
            schema,
            table,
            columns.iter(),
            self.config.iceberg,
        ))
        .await
        .map(drop)
    }

    async fn describe_table(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<Vec<Column>>, WarehouseError> {
        match self.execute(sql::describe_table(schema, table)).await {
            Ok(answer) => columns_of(&answer).map(Some),
            // Snowflake's "does not exist or not authorized": the caller creates the table.
            Err(WarehouseError::ObjectMissing { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// The columns in a `DESCRIBE TABLE` answer: its `name`, `type` and `null?` result columns, found by name.
fn columns_of(answer: &[u8]) -> Result<Vec<Column>, WarehouseError> {
    let unexpected = |reason: &str| WarehouseError::Unexpected {
        status: 200,
        body: format!("{reason}: {}", excerpt(answer)),
    };
    let result: ResultSet = serde_json::from_slice(answer)
        .map_err(|e| unexpected(&format!("cannot read the result of DESCRIBE TABLE ({e})")))?;
    let meta = result
        .result_set_meta_data
        .ok_or_else(|| unexpected("DESCRIBE TABLE answered no result set"))?;
    if meta.partition_info.len() > 1 {
        // Thousands of rows per partition: no table has that many columns.
        return Err(unexpected("DESCRIBE TABLE answered in several partitions"));
    }
    let index = |name: &str| {
        meta.row_type
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| unexpected(&format!("DESCRIBE TABLE answered no `{name}` column")))
    };
    let (name, ty, null) = (index("name")?, index("type")?, index("null?")?);
    let cell = |row: &[Option<String>], i: usize| row.get(i).cloned().flatten();
    result
        .data
        .iter()
        .map(|row| {
            Ok(Column {
                name: cell(row, name).ok_or_else(|| unexpected("a column without a name"))?,
                data_type: cell(row, ty).unwrap_or_default(),
                scale: None,
                nullable: cell(row, null).is_none_or(|n| n.eq_ignore_ascii_case("Y")),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailureKind;

    fn kind(status: u16, body: &str) -> Result<&'static str, FailureKind> {
        match classify(StatusCode::from_u16(status).unwrap(), body.as_bytes()) {
            Ok(Progress::Done(_)) => Ok("done"),
            Ok(Progress::Pending(_)) => Ok("pending"),
            Err(e) => Err(e.kind()),
        }
    }

    #[test]
    fn answers_map_to_kinds_by_status_and_code() {
        assert_eq!(kind(200, r#"{"code":"090001"}"#), Ok("done"));
        assert_eq!(kind(202, r#"{"statementHandle":"h1"}"#), Ok("pending"));
        assert_eq!(kind(202, "{}"), Err(FailureKind::Retry));
        assert_eq!(
            kind(
                401,
                r#"{"code":"390144","message":"JWT token is invalid."}"#
            ),
            Err(FailureKind::Auth)
        );
        assert_eq!(kind(403, ""), Err(FailureKind::Auth));
        assert_eq!(
            kind(
                422,
                r#"{"code":"003001","sqlState":"42501","message":"Insufficient privileges"}"#
            ),
            Err(FailureKind::Auth)
        );
        assert_eq!(
            kind(422, r#"{"code":"002003","sqlState":"02000"}"#),
            Err(FailureKind::Abort)
        );
        assert_eq!(
            kind(
                422,
                r#"{"code":"001003","sqlState":"42000","message":"syntax error"}"#
            ),
            Err(FailureKind::Abort)
        );
        assert_eq!(kind(400, "not json"), Err(FailureKind::Abort));
        assert_eq!(kind(503, "busy"), Err(FailureKind::Retry));
        assert_eq!(kind(429, ""), Err(FailureKind::Retry));
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(is_retryable(&WarehouseError::Transport("reset".into())));
        assert!(is_retryable(&WarehouseError::Unexpected {
            status: 503,
            body: String::new()
        }));
        assert!(is_retryable(&WarehouseError::Unexpected {
            status: 408,
            body: String::new()
        }));
        assert!(!is_retryable(&WarehouseError::Unexpected {
            status: 404,
            body: String::new()
        }));
        let unauthorized = WarehouseError::Unauthorized {
            status: 401,
            code: String::new(),
            message: String::new(),
        };
        assert!(!is_retryable(&unauthorized));
    }
}
