//! The live check of `snowpipe-rest`: the checklist of the REST client's issue, run against a Snowflake
//! account, each item its own named assertion with a ✓ or ✗ line.
//!
//! It creates a schema and a table, opens a channel, appends and waits for the commit, adds a column and
//! appends a row that uses it (the pipe must see it after the reopen), reads the rows back through the SQL
//! API, and drops the schema. Between those it checks what only a real account can confirm: `offset_token`
//! round-trips byte-exact at growing lengths (the report gives the longest accepted) and leaves counters and
//! `created_on_ms` alone; rows discarded by an open never commit later; an open with
//! `fail_on_uncommitted_rows` waits with 409 and then answers the last end token; counters agree with the
//! committed token in every answer; a rejected row's bound is its request's end token; a refused append
//! keeps its continuation token; a dropped channel comes back with a new `created_on_ms`.
//!
//! [`run`] is the whole check; `cargo xtask live` runs it through this crate's binary, which reads the
//! target from `SNOWFLAKE_*` variables ([`target_from_env`]). The same code runs in this crate's tests
//! against the emulator, with the waits that take minutes on an account ([`Options`]) made short.

mod checklist;
pub mod sql;

use std::{fmt, time::Duration};

use snowpipe_api::Secret;

pub use checklist::{
    APPEND_AND_COMMIT, COUNTERS, DISCARDED, DROPPED_COMES_BACK, NEW_COLUMN, OFFSET_TOKEN,
    READ_BACK, REFUSED_KEEPS_TOKEN, REJECTED_BOUND, SCHEMA_AND_TABLE, SCHEMA_DROPPED, WAITING_OPEN,
    run, run_with,
};

/// The account the check runs against, and who it runs as.
#[derive(Debug, Clone)]
pub struct Target {
    /// Account identifier, e.g. `myorg-myaccount`.
    pub account: String,
    /// The user, whose public key is registered.
    pub user: String,
    /// The role; `None`: the user's default role.
    pub role: Option<String>,
    /// The user's private key (PEM).
    pub private_key: Secret,
    /// Its passphrase, empty when the key is not encrypted.
    pub passphrase: Secret,
    /// A database the role may create schemas in.
    pub database: String,
    /// The warehouse the SQL runs on.
    pub warehouse: String,
    /// The account host's base URL; `None`: `https://<account>.snowflakecomputing.com`.
    pub account_url: Option<String>,
}

impl Target {
    /// The account host's base URL, without a trailing slash.
    pub fn account_base(&self) -> String {
        match &self.account_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!(
                "https://{}.snowflakecomputing.com",
                self.account.trim().to_lowercase().replace('_', "-")
            ),
        }
    }
}

/// How long the check waits, and what it tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How long rows discarded by an open get to show up anyway before they are counted: two minutes on
    /// an account.
    pub discard_settle: Duration,
    /// The longest wait for rows to commit.
    pub commit_timeout: Duration,
    /// How often a channel's status is asked while waiting.
    pub poll: Duration,
    /// Lengths of offset tokens tried at an open, in bytes, growing.
    pub token_lengths: Vec<usize>,
    /// Tries at a race the check needs to win (an open right after an append, before it commits) before
    /// the check says it could not be exercised.
    pub attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            discard_settle: Duration::from_secs(120),
            commit_timeout: Duration::from_secs(120),
            poll: Duration::from_millis(500),
            token_lengths: vec![1, 8, 64, 256, 1024, 4096, 16_384, 65_536],
            attempts: 3,
        }
    }
}

/// One item of the checklist and how it went: `Ok` with what was seen, `Err` with why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The item.
    pub name: &'static str,
    /// What was seen.
    pub outcome: Result<String, String>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(seen) => write!(f, "✓ {}: {seen}", self.name),
            Err(why) => write!(f, "✗ {}: {why}", self.name),
        }
    }
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The schema it worked in (dropped at the end).
    pub schema: String,
    /// Each item, in the order run.
    pub checks: Vec<Check>,
    /// The longest offset token an open took and answered byte-exact, in bytes.
    pub longest_offset_token: Option<usize>,
}

impl Report {
    /// Whether every item passed.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.outcome.is_ok())
    }

    /// The item called `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        match self.longest_offset_token {
            Some(bytes) => writeln!(f, "longest offset token accepted: {bytes} bytes")?,
            None => writeln!(f, "longest offset token accepted: none")?,
        }
        let passed = self.checks.iter().filter(|c| c.outcome.is_ok()).count();
        write!(
            f,
            "live check: {passed} of {} passed (schema {})",
            self.checks.len(),
            self.schema
        )
    }
}

/// The variables the binary reads; the first five are required.
pub const VARIABLES: [&str; 7] = [
    "SNOWFLAKE_ACCOUNT",
    "SNOWFLAKE_USER",
    "SNOWFLAKE_PRIVATE_KEY_FILE",
    "SNOWFLAKE_DATABASE",
    "SNOWFLAKE_WAREHOUSE",
    "SNOWFLAKE_ROLE",
    "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
];

/// Why no target could be read from the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// Required variables are not set: nothing to check against.
    #[error(
        "live check skipped: set SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_PRIVATE_KEY_FILE, SNOWFLAKE_DATABASE and SNOWFLAKE_WAREHOUSE (optionally SNOWFLAKE_ROLE, SNOWFLAKE_PRIVATE_KEY_PASSPHRASE, SNOWFLAKE_ACCOUNT_URL); missing: {}",
        .0.join(", ")
    )]
    Missing(Vec<&'static str>),
    /// The key file cannot be read.
    #[error("cannot read SNOWFLAKE_PRIVATE_KEY_FILE {path}: {reason}")]
    KeyFile {
        /// The path given.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The target named by the `SNOWFLAKE_*` variables (`var` reads one; empty counts as unset), the key read
/// from its file. `SNOWFLAKE_ACCOUNT_URL` overrides the account host (PrivateLink, or an emulator).
///
/// # Errors
/// [`EnvError::Missing`] naming every required variable not set; [`EnvError::KeyFile`] when the key file
/// cannot be read.
pub fn target_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Target, EnvError> {
    let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let missing: Vec<&'static str> = VARIABLES[..5]
        .iter()
        .copied()
        .filter(|name| get(name).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(EnvError::Missing(missing));
    }
    let required = |name: &str| get(name).unwrap_or_default();
    let path = required("SNOWFLAKE_PRIVATE_KEY_FILE");
    let key = std::fs::read_to_string(&path).map_err(|e| EnvError::KeyFile {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(Target {
        account: required("SNOWFLAKE_ACCOUNT"),
        user: required("SNOWFLAKE_USER"),
        role: get("SNOWFLAKE_ROLE"),
        private_key: Secret::new(key),
        passphrase: Secret::new(get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE").unwrap_or_default()),
        database: required("SNOWFLAKE_DATABASE"),
        warehouse: required("SNOWFLAKE_WAREHOUSE"),
        account_url: get("SNOWFLAKE_ACCOUNT_URL"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn without_the_variables_the_message_names_each_one_missing() {
        let vars: HashMap<&str, &str> = [("SNOWFLAKE_USER", "LOADER"), ("SNOWFLAKE_ACCOUNT", " ")]
            .into_iter()
            .collect();
        let error = target_from_env(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap_err();
        assert_eq!(
            error,
            EnvError::Missing(vec![
                "SNOWFLAKE_ACCOUNT",
                "SNOWFLAKE_PRIVATE_KEY_FILE",
                "SNOWFLAKE_DATABASE",
                "SNOWFLAKE_WAREHOUSE"
            ])
        );
        let line = error.to_string();
        assert!(!line.contains('\n'));
        assert!(line.ends_with(
            "missing: SNOWFLAKE_ACCOUNT, SNOWFLAKE_PRIVATE_KEY_FILE, SNOWFLAKE_DATABASE, SNOWFLAKE_WAREHOUSE"
        ));
    }

    #[test]
    fn the_variables_make_a_target_with_the_key_read_from_its_file() {
        let dir = std::env::temp_dir().join(format!("snowpipe-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key.p8");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        let key_path = key.display().to_string();
        let vars: HashMap<&str, &str> = [
            ("SNOWFLAKE_ACCOUNT", "myorg-acct"),
            ("SNOWFLAKE_USER", "LOADER"),
            ("SNOWFLAKE_PRIVATE_KEY_FILE", key_path.as_str()),
            ("SNOWFLAKE_DATABASE", "DB"),
            ("SNOWFLAKE_WAREHOUSE", "WH"),
            ("SNOWFLAKE_ROLE", ""),
        ]
        .into_iter()
        .collect();
        let target = target_from_env(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(target.private_key.expose(), "-----BEGIN PRIVATE KEY-----\n");
        assert_eq!(target.role, None);
        assert!(target.passphrase.is_empty());
        assert_eq!(
            target.account_base(),
            "https://myorg-acct.snowflakecomputing.com"
        );
        assert!(!format!("{target:?}").contains("BEGIN"));
        std::fs::remove_dir_all(&dir).unwrap();
        let gone = target_from_env(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap_err();
        assert!(matches!(gone, EnvError::KeyFile { .. }), "{gone:?}");
    }

    #[test]
    fn a_report_prints_one_line_per_item_and_the_longest_token() {
        let report = Report {
            schema: "S".into(),
            checks: vec![
                Check {
                    name: SCHEMA_AND_TABLE,
                    outcome: Ok("created".into()),
                },
                Check {
                    name: COUNTERS,
                    outcome: Err("answer 2 disagrees".into()),
                },
            ],
            longest_offset_token: Some(4096),
        };
        assert!(!report.passed());
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("✓ {SCHEMA_AND_TABLE}: created"));
        assert_eq!(lines[1], format!("✗ {COUNTERS}: answer 2 disagrees"));
        assert_eq!(lines[2], "longest offset token accepted: 4096 bytes");
        assert_eq!(lines[3], "live check: 1 of 2 passed (schema S)");
    }
}
