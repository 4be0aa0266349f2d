//! What an emulator starts with: the account, its users (keys and roles), databases, and the service's
//! knobs (commit lag, body limit, memory bounds). Built in code by tests, read from TOML or JSON by the
//! binary.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{demo, store::ident};

/// Default time from insert to commit, as Snowflake's ingest SDK flushes about once a second.
pub const DEFAULT_COMMIT_LAG: Duration = Duration::from_secs(1);
/// Default largest request body (and largest decompressed insert body), in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Default bound on rows buffered (inserted, not committed) per channel, in bytes of JSON.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 128 * 1024 * 1024;
/// Default number of committed rows kept per table for inspection.
pub const DEFAULT_MAX_ROWS_PER_TABLE: usize = 100_000;
/// Default number of calls kept in the call log.
pub const DEFAULT_CALL_LOG_CAPACITY: usize = 10_000;
/// Default lifetime of the REST API's scoped tokens (live accounts are seen to give ~10 min to ~1 h).
pub const DEFAULT_SCOPED_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A Snowflake user: name, registered public keys (PEM or bare base64; Snowflake allows two), the
/// roles granted to it (the first is its default role) and programmatic access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name (an identifier: unquoted is case-insensitive).
    pub name: String,
    /// Registered public keys.
    pub public_keys: Vec<String>,
    /// Granted roles; the first is the default.
    pub roles: Vec<String>,
    /// Programmatic access tokens: the REST API's ingest host takes one in place of a scoped token
    /// (the session then uses the user's default role).
    pub programmatic_access_tokens: Vec<String>,
}

impl User {
    /// A user with no keys and no roles yet.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            public_keys: Vec::new(),
            roles: Vec::new(),
            programmatic_access_tokens: Vec::new(),
        }
    }

    /// Registers a programmatic access token (the secret a person would paste into a client).
    #[must_use]
    pub fn programmatic_access_token(mut self, token: impl Into<String>) -> Self {
        self.programmatic_access_tokens.push(token.into());
        self
    }

    /// Registers a public key.
    #[must_use]
    pub fn public_key(mut self, pem: impl Into<String>) -> Self {
        self.public_keys.push(pem.into());
        self
    }

    /// Grants a role.
    #[must_use]
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }
}

/// A database, the roles that may use it (none listed: every role) and schemas besides `PUBLIC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// Database name.
    pub name: String,
    /// Roles allowed to use it; empty means every role.
    pub roles: Vec<String>,
    /// Schemas created at start, besides `PUBLIC`.
    pub schemas: Vec<String>,
}

impl Database {
    /// A database every role may use, with only its `PUBLIC` schema.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            roles: Vec::new(),
            schemas: Vec::new(),
        }
    }

    /// Restricts the database to `role` (and any other roles added).
    #[must_use]
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Creates `schema` at start.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schemas.push(schema.into());
        self
    }
}

/// Everything an emulator starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmulatorConfig {
    /// The account name clients must present (default [`demo::ACCOUNT`]).
    pub account: String,
    /// Users besides the demo user.
    pub users: Vec<User>,
    /// Databases besides the demo database.
    pub databases: Vec<Database>,
    /// Whether the demo user and database exist (default true).
    pub include_demo: bool,
    /// Time from insert to commit; zero commits during the insert call.
    pub commit_lag: Duration,
    /// Largest request body, compressed or not; larger requests get 413.
    pub body_limit: usize,
    /// Bound on a channel's buffered rows (JSON bytes); past it the oldest rows commit early, as the
    /// SDK flushes a full buffer, or — when commits are stalled — inserts get 503.
    pub max_buffered_bytes_per_channel: usize,
    /// Committed rows kept per table for inspection (older rows are counted, not kept).
    pub max_rows_per_table: usize,
    /// Calls kept in the call log.
    pub call_log_capacity: usize,
    /// Lifetime of the REST API's scoped tokens (the `exp` of each, from its issue).
    pub scoped_token_lifetime: Duration,
    /// `GET /v2/streaming/hostname` answers `{"hostname": "..."}` (as documented) instead of bare
    /// text (as live accounts do).
    pub hostname_as_json: bool,
    /// `POST /oauth/token` answers `{"token": "..."}` (as documented) instead of bare text.
    pub token_as_json: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            account: demo::ACCOUNT.to_owned(),
            users: Vec::new(),
            databases: Vec::new(),
            include_demo: true,
            commit_lag: DEFAULT_COMMIT_LAG,
            body_limit: DEFAULT_BODY_LIMIT,
            max_buffered_bytes_per_channel: DEFAULT_MAX_BUFFERED_BYTES,
            max_rows_per_table: DEFAULT_MAX_ROWS_PER_TABLE,
            call_log_capacity: DEFAULT_CALL_LOG_CAPACITY,
            scoped_token_lifetime: DEFAULT_SCOPED_TOKEN_LIFETIME,
            hostname_as_json: false,
            token_as_json: false,
        }
    }
}

/// Why a configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is neither valid TOML nor valid JSON of the expected shape.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A duration that does not parse (`250ms`, `1s`, `2m`, `0`).
    #[error("invalid duration `{0}`: use e.g. 0, 250ms, 1s, 1.5s, 2m")]
    Duration(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    account: Option<String>,
    include_demo: Option<bool>,
    commit_lag: Option<String>,
    body_limit: Option<usize>,
    max_buffered_bytes_per_channel: Option<usize>,
    max_rows_per_table: Option<usize>,
    call_log_capacity: Option<usize>,
    scoped_token_lifetime: Option<String>,
    hostname_as_json: Option<bool>,
    token_as_json: Option<bool>,
    #[serde(default)]
    users: Vec<FileUser>,
    #[serde(default)]
    databases: Vec<FileDatabase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    name: String,
    #[serde(default)]
    public_keys: Vec<String>,
    public_key: Option<String>,
    /// Relative to the configuration file.
    public_key_file: Option<PathBuf>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    programmatic_access_tokens: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabase {
    name: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    schemas: Vec<String>,
}

impl EmulatorConfig {
    /// Reads a configuration file: JSON when it ends in `.json` or starts with `{`, TOML otherwise.
    /// `public_key_file` paths are taken relative to the file.
    ///
    /// # Errors
    /// [`ConfigError`] when a file cannot be read or the text does not parse.
    ///
    /// # Example (TOML)
    /// ```toml
    /// account = "MYACCOUNT"
    /// commit_lag = "250ms"
    ///
    /// [[users]]
    /// name = "LOADER"
    /// public_key_file = "loader.pub"
    /// roles = ["LOADER_ROLE"]
    ///
    /// [[databases]]
    /// name = "ANALYTICS"
    /// roles = ["LOADER_ROLE"]
    /// schemas = ["RAW"]
    /// ```
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
            || text.trim_start().starts_with('{');
        let file: FileConfig = if json {
            serde_json::from_str(&text).map_err(|e| ConfigError::Parse(e.to_string()))?
        } else {
            toml::from_str(&text).map_err(|e| ConfigError::Parse(e.to_string()))?
        };
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_parsed(file, base)
    }

    fn from_parsed(file: FileConfig, base: &Path) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(account) = file.account {
            config.account = account;
        }
        if let Some(v) = file.include_demo {
            config.include_demo = v;
        }
        if let Some(lag) = file.commit_lag {
            config.commit_lag = parse_duration(&lag)?;
        }
        if let Some(v) = file.body_limit {
            config.body_limit = v;
        }
        if let Some(v) = file.max_buffered_bytes_per_channel {
            config.max_buffered_bytes_per_channel = v;
        }
        if let Some(v) = file.max_rows_per_table {
            config.max_rows_per_table = v;
        }
        if let Some(v) = file.call_log_capacity {
            config.call_log_capacity = v;
        }
        if let Some(lifetime) = file.scoped_token_lifetime {
            config.scoped_token_lifetime = parse_duration(&lifetime)?;
        }
        if let Some(v) = file.hostname_as_json {
            config.hostname_as_json = v;
        }
        if let Some(v) = file.token_as_json {
            config.token_as_json = v;
        }
        for u in file.users {
            let mut user = User {
                name: u.name,
                public_keys: u.public_keys,
                roles: u.roles,
                programmatic_access_tokens: u.programmatic_access_tokens,
            };
            user.public_keys.extend(u.public_key);
            if let Some(p) = u.public_key_file {
                let p = base.join(p);
                let pem = std::fs::read_to_string(&p).map_err(|source| ConfigError::Io {
                    path: p.clone(),
                    source,
                })?;
                user.public_keys.push(pem);
            }
            config.users.push(user);
        }
        for d in file.databases {
            config.databases.push(Database {
                name: d.name,
                roles: d.roles,
                schemas: d.schemas,
            });
        }
        Ok(config)
    }

    /// The account as clients name it in JWTs and channel requests (see [`account_key`]).
    pub(crate) fn account_name(&self) -> String {
        account_key(&self.account)
    }
}

/// Reduces an account identifier to the part Snowflake compares, as clients put it in JWTs: upper case,
/// without `.snowflakecomputing.com`; for a locator with region or cloud (`xy12345.us-east-2.aws`) only the
/// locator; for a global name (`xy12345-ab.global`) the part before the `-`. `myorg-myaccount` stays whole.
pub(crate) fn account_key(account: &str) -> String {
    let account = account.trim();
    let account = account
        .strip_suffix(".snowflakecomputing.com")
        .unwrap_or(account);
    let base = if account.contains(".global") {
        account.split('-').next().unwrap_or(account)
    } else {
        account.split('.').next().unwrap_or(account)
    };
    ident::resolve(base)
}

/// Parses a duration: `0`, `250ms`, `1s`, `1.5s`, `2m`, `1h`, `500us`; a bare number is seconds.
///
/// # Errors
/// [`ConfigError::Duration`] for anything else.
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    let t = text.trim();
    let bad = || ConfigError::Duration(text.to_owned());
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_keys() {
        assert_eq!(account_key("demo"), "DEMO");
        assert_eq!(account_key("xy12345.us-east-2.aws"), "XY12345");
        assert_eq!(
            account_key("xy12345-ab.global.snowflakecomputing.com"),
            "XY12345"
        );
        assert_eq!(account_key("myorg-myaccount"), "MYORG-MYACCOUNT");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration(" 3 ").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn reads_toml_and_json_files() {
        let dir =
            std::env::temp_dir().join(format!("snowpipe-emulator-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("k.pub"), demo::PUBLIC_KEY_PEM).unwrap();
        let toml_path = dir.join("c.toml");
        std::fs::write(
            &toml_path,
            "account = \"ACME\"\ncommit_lag = \"0\"\ninclude_demo = false\n[[users]]\nname = \"u\"\npublic_key_file = \"k.pub\"\nroles = [\"R\"]\n[[databases]]\nname = \"D\"\nschemas = [\"RAW\"]\n",
        )
        .unwrap();
        let c = EmulatorConfig::from_file(&toml_path).unwrap();
        assert_eq!(c.account, "ACME");
        assert_eq!(c.commit_lag, Duration::ZERO);
        assert!(!c.include_demo);
        assert_eq!(
            c.users[0].public_keys,
            vec![demo::PUBLIC_KEY_PEM.to_owned()]
        );
        assert_eq!(c.databases[0].schemas, vec!["RAW".to_owned()]);
        let json_path = dir.join("c.json");
        std::fs::write(
            &json_path,
            r#"{"users": [{"name": "u", "public_key": "x", "roles": ["R"], "programmatic_access_tokens": ["pat"]}], "body_limit": 10, "scoped_token_lifetime": "10m", "token_as_json": true}"#,
        )
        .unwrap();
        let c = EmulatorConfig::from_file(&json_path).unwrap();
        assert_eq!(c.body_limit, 10);
        assert_eq!(c.users[0].public_keys, vec!["x".to_owned()]);
        assert_eq!(
            c.users[0].programmatic_access_tokens,
            vec!["pat".to_owned()]
        );
        assert_eq!(c.scoped_token_lifetime, Duration::from_secs(600));
        assert!(c.token_as_json && !c.hostname_as_json);
        std::fs::write(&json_path, r#"{"unknown": 1}"#).unwrap();
        assert!(matches!(
            EmulatorConfig::from_file(&json_path),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            EmulatorConfig::from_file(&dir.join("missing.toml")),
            Err(ConfigError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
