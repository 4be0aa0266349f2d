//! `check`: what a person setting up a destination needs to know before the first upload, one line per
//! check (✓ or ✗ with what to do), writing nothing.
//!
//! Each check is a function of [`Context`] in [`CHECKS`]; one that needs what an earlier one found (the
//! destination, the key) says it was skipped when that failed. Adding a check is adding a function to
//! the list.

use std::{future::Future, pin::Pin, sync::Arc};

use snowpipe_auth::SigningKey;
use snowpipe_channels::{SqlApiConfig, SqlApiWarehouse, WarehouseError, sql};
use snowpipe_manager::{Destination, DestinationConfig};

use crate::{args::GlobalArgs, commands::Report, destination, error::CliError, output, settings};

/// A table name no destination uses: `DESCRIBE TABLE` of it reaches the account and creates nothing.
const PROBE_TABLE: &str = "SNOWPIPE_STREAMING_CHECK_PROBE";

/// What the checks found so far.
struct Context<'a> {
    global: &'a GlobalArgs,
    destination: Option<Destination>,
    config: Option<DestinationConfig>,
    key: Option<Arc<SigningKey>>,
    /// The database can be used by the role (checked through the SQL API).
    reached: bool,
    lines: Vec<String>,
    failed: bool,
}

impl Context<'_> {
    fn pass(&mut self, mut line: String) {
        line.insert_str(0, "✓ ");
        self.lines.push(line);
    }

    fn fail(&mut self, mut line: String) {
        self.failed = true;
        line.insert_str(0, "✗ ");
        self.lines.push(line);
    }

    fn skip(&mut self, what: &str, because: &str) {
        self.lines.push(format!("- {what}: skipped ({because})"));
    }

    fn note(&mut self, mut line: String) {
        line.insert_str(0, "  ");
        self.lines.push(line);
    }
}

type Check = for<'c, 'g> fn(&'c mut Context<'g>) -> Pin<Box<dyn Future<Output = ()> + Send + 'c>>;

/// The checks, in order.
const CHECKS: &[Check] = &[
    |cx| Box::pin(destination_and_settings(cx)),
    |cx| Box::pin(private_key(cx)),
    |cx| Box::pin(account(cx)),
    |cx| Box::pin(ingest_host(cx)),
    |cx| Box::pin(database_and_schema(cx)),
];

/// Runs every check and prints one line each on stdout; `Err` (exit status 1) when any failed.
pub(crate) async fn check(global: &GlobalArgs) -> Result<Report, CliError> {
    let mut cx = Context {
        global,
        destination: None,
        config: None,
        key: None,
        reached: false,
        lines: Vec::new(),
        failed: false,
    };
    for check in CHECKS {
        check(&mut cx).await;
        for line in cx.lines.drain(..) {
            output::text(&line)?;
        }
    }
    if cx.failed {
        return Err(CliError::Failed(
            "some checks failed (✗ above): fix what they say and run check again".to_owned(),
        ));
    }
    Ok(Report::default())
}

async fn destination_and_settings(cx: &mut Context<'_>) {
    let global = cx.global;
    let loaded = destination::load(
        global.destination.as_deref(),
        global.private_key_file.as_deref(),
        "check",
    );
    let destination = match loaded {
        Ok(destination) => destination,
        Err(error) => return cx.fail(format!("destination: {error}")),
    };
    let config = match serde_json::from_value::<DestinationConfig>(destination.config.clone()) {
        Ok(config) => config,
        Err(error) => return cx.fail(format!("destination: the config does not decode: {error}")),
    };
    if let Err(error) = settings::Endpoints::from_options(global)
        .and_then(|endpoints| settings::connection(global, &endpoints))
    {
        return cx.fail(format!("settings: {error}"));
    }
    let role = if config.role.trim().is_empty() {
        "(the user's default role)".to_owned()
    } else {
        config.role.clone()
    };
    cx.pass(format!(
        "destination {}: account {}, user {}, role {role}, database {}, schema {} (namespace {:?}){}",
        destination.id,
        config.account,
        config.user,
        config.database,
        config.schema(),
        config.namespace,
        if config.warehouse.trim().is_empty() {
            "; no warehouse: give `warehouse` for the DDL to run on".to_owned()
        } else {
            format!(", warehouse {}", config.warehouse)
        }
    ));
    cx.destination = Some(destination);
    cx.config = Some(config);
}

async fn private_key(cx: &mut Context<'_>) {
    let Some(config) = &cx.config else {
        return cx.skip("private key", "no usable destination");
    };
    let encrypted = !config.private_key_passphrase.expose().is_empty();
    match SigningKey::from_pem(config.private_key.expose(), &config.private_key_passphrase) {
        Ok(key) => {
            let user = snowflake_ident(&config.user);
            cx.pass(format!(
                "private key: read{}; public key fingerprint {}",
                if encrypted { " and decrypted with the passphrase" } else { "" },
                key.fingerprint()
            ));
            cx.note(format!(
                "register it (as a user admin, once): ALTER USER {user} SET RSA_PUBLIC_KEY='{}';",
                key.public_key_base64()
            ));
            cx.note(format!(
                "Snowflake then shows the same fingerprint: DESC USER {user} (RSA_PUBLIC_KEY_FP)"
            ));
            cx.key = Some(Arc::new(key));
        }
        Err(error) => cx.fail(format!(
            "private key: {error}; give the user's PKCS#8 private key in PEM (privateKey, or --private-key-file){}",
            if encrypted { " and its passphrase (privateKeyPassphrase)" } else { "" }
        )),
    }
}

/// A user name as `ALTER USER` takes it: bare when Snowflake would read it as given (upper case), quoted
/// otherwise.
fn snowflake_ident(name: &str) -> String {
    let upper = name.to_uppercase();
    let bare = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if bare { upper } else { sql::quote_ident(name) }
}

/// The SQL API client of the destination, with the command's timeout and retries.
fn warehouse(cx: &Context<'_>) -> Result<(SqlApiWarehouse, String), String> {
    let Some(config) = &cx.config else {
        return Err("no usable destination".to_owned());
    };
    let mut sql = SqlApiConfig::for_destination(config);
    let account_url = cx
        .global
        .account_url
        .clone()
        .or_else(|| cx.global.sql_api_url.clone());
    sql.base_url.clone_from(&account_url);
    sql.timeout = cx.global.request_timeout;
    sql.retry = snowpipe_manager::RetryConfig {
        max_retries: cx.global.retry_max.min(2),
        min_delay: cx.global.retry_wait_min,
        max_delay: cx.global.retry_wait_max,
        ..snowpipe_manager::RetryConfig::default()
    };
    let url = account_url.unwrap_or_else(|| {
        format!(
            "https://{}.snowflakecomputing.com",
            config.account.trim().to_lowercase()
        )
    });
    SqlApiWarehouse::new(sql)
        .map(|w| (w, url))
        .map_err(|e| format!("cannot set up the SQL API client: {e}"))
}

async fn account(cx: &mut Context<'_>) {
    if cx.key.is_none() {
        return cx.skip("account", "no usable key");
    }
    let (warehouse, url) = match warehouse(cx) {
        Ok(pair) => pair,
        Err(error) => return cx.fail(format!("account: {error}")),
    };
    let Some(config) = cx.config.clone() else {
        return;
    };
    let probe = sql::describe_table(&config.schema(), PROBE_TABLE);
    match warehouse.run_statement(&probe).await {
        Ok(_) | Err(WarehouseError::ObjectMissing { .. } | WarehouseError::Rejected { .. }) => {
            cx.reached = true;
            cx.pass(format!(
                "account: the SQL API at {url} accepted a key-pair token for user {} with role {}",
                config.user,
                if config.role.is_empty() { "(default)" } else { &config.role }
            ));
        }
        Err(WarehouseError::Unauthorized { status, code, message }) => cx.fail(format!(
            "account: {url} refused the token for user {} (HTTP {status}, code {code}): {message}; check the account identifier and the user, that the public key above is registered (ALTER USER above), and that role {} is granted to the user",
            config.user, config.role
        )),
        Err(WarehouseError::Transport(error)) => cx.fail(format!(
            "account: cannot reach the SQL API at {url}: {error}; check --sql-api-url (default https://<account>.snowflakecomputing.com) and the account identifier"
        )),
        Err(error) => cx.fail(format!("account: the SQL API at {url} answered: {error}")),
    }
}

/// On REST: the ingest host's discovery and the scoped token exchange, as the first upload does them.
async fn ingest_host(cx: &mut Context<'_>) {
    if cx.global.backend != crate::args::BackendArg::Rest {
        return;
    }
    if cx.key.is_none() {
        return cx.skip("ingest host", "no usable key");
    }
    let Some(destination) = cx.destination.clone() else {
        return;
    };
    let connection = match settings::Endpoints::from_options(cx.global)
        .and_then(|endpoints| settings::connection(cx.global, &endpoints))
    {
        Ok(connection) => connection,
        Err(error) => return cx.fail(format!("ingest host: {error}")),
    };
    match snowpipe_manager::check_rest_access(&destination, &connection).await {
        Ok(Some(url)) => cx.pass(format!(
            "ingest host: {url} (discovered unless --ingest-url gave it) issued a scoped token for the key pair"
        )),
        Ok(None) => {}
        Err(error) => cx.fail(format!(
            "ingest host: {}; check the account identifier, that the user's role may use the database, and --ingest-url for PrivateLink",
            one_line(&error)
        )),
    }
}

async fn database_and_schema(cx: &mut Context<'_>) {
    if !cx.reached {
        return cx.skip("database and schema", "the account was not reached");
    }
    let (warehouse, _) = match warehouse(cx) {
        Ok(pair) => pair,
        Err(error) => return cx.fail(format!("database: {error}")),
    };
    let Some(config) = cx.config.clone() else {
        return;
    };
    let (database, schema) = (&config.database, config.schema());
    let role = if config.role.is_empty() {
        "(default)"
    } else {
        config.role.as_str()
    };
    // Read only: the schemas the role can see in the database, or "does not exist or not authorized".
    let statement = format!("SHOW SCHEMAS IN DATABASE {}", sql::quote_ident(database));
    match warehouse.run_statement(&statement).await {
        Ok(answer) => {
            cx.pass(format!("database {database}: role {role} can use it"));
            match column_values(&answer, "name") {
                Some(names) if names.contains(&schema) => cx.pass(format!(
                    "schema {database}.{schema}: exists and role {role} sees it; the first upload creates its tables (role {role} needs CREATE TABLE on it)"
                )),
                Some(_) => cx.pass(format!(
                    "schema {database}.{schema}: does not exist yet; the first upload creates it (role {role} needs CREATE SCHEMA on database {database})"
                )),
                None => cx.fail(format!(
                    "schema {database}.{schema}: the answer to {statement} has no `name` column"
                )),
            }
        }
        Err(WarehouseError::ObjectMissing { message, .. }) => cx.fail(format!(
            "database {database}: role {role} cannot use it ({}); create it, or GRANT USAGE ON DATABASE {database} TO ROLE {role}",
            one_line(&message)
        )),
        Err(WarehouseError::Unauthorized { message, .. }) => cx.fail(format!(
            "database {database}: role {role} is refused ({}); GRANT USAGE ON DATABASE {database} TO ROLE {role}",
            one_line(&message)
        )),
        Err(error) => cx.fail(format!("database {database}: {statement}: {error}")),
    }
}

/// Snowflake's message on one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The values of one column of a SQL API answer (`resultSetMetaData.rowType` names the columns, `data`
/// holds the rows); `None` when the answer has no such column.
fn column_values(answer: &[u8], column: &str) -> Option<Vec<String>> {
    let answer: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let at = answer["resultSetMetaData"]["rowType"]
        .as_array()?
        .iter()
        .position(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(column))
        })?;
    Some(
        answer["data"]
            .as_array()?
            .iter()
            .filter_map(|row| row.get(at).and_then(|v| v.as_str()).map(str::to_owned))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_written_as_alter_user_takes_them() {
        assert_eq!(snowflake_ident("rudder_loader"), "RUDDER_LOADER");
        assert_eq!(snowflake_ident("a-b"), "\"a-b\"");
        let answer = br#"{"resultSetMetaData":{"rowType":[{"name":"created_on"},{"name":"name"}]},"data":[[null,"RAW"],[null,"PUBLIC"]]}"#;
        assert_eq!(column_values(answer, "name").unwrap(), ["RAW", "PUBLIC"]);
        assert_eq!(column_values(answer, "owner"), None);
    }
}
