//! The destination's configuration, and the Snowflake schema name derived from its namespace.

use serde::{Deserialize, Serialize};
use snowpipe_api::Secret;

/// A destination's `config` object, field for field as the batch router sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationConfig {
    /// Account identifier.
    #[serde(default)]
    pub account: String,
    /// Warehouse the DDL runs on.
    #[serde(default)]
    pub warehouse: String,
    /// Database of the tables.
    #[serde(default)]
    pub database: String,
    /// Snowflake user.
    #[serde(default)]
    pub user: String,
    /// Role of the user.
    #[serde(default)]
    pub role: String,
    /// PKCS#8 PEM private key.
    #[serde(default)]
    pub private_key: Secret,
    /// Passphrase of the key, if encrypted.
    #[serde(default)]
    pub private_key_passphrase: Secret,
    /// Namespace; the schema name is derived from it (see [`schema_name`]).
    #[serde(default)]
    pub namespace: String,
    /// Whether tables are Iceberg tables.
    #[serde(default)]
    pub enable_iceberg: bool,
}

impl DestinationConfig {
    /// The Snowflake schema the destination's tables live in.
    pub fn schema(&self) -> String {
        schema_name(&self.namespace)
    }
}

/// Snowflake's reserved keywords: a schema named like one gets a leading `_`.
const RESERVED: &[&str] = &[
    "ACCOUNT",
    "ALL",
    "ALTER",
    "AND",
    "ANY",
    "AS",
    "BETWEEN",
    "BY",
    "CASE",
    "CAST",
    "CHECK",
    "COLUMN",
    "CONNECT",
    "CONNECTION",
    "CONSTRAINT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "DATABASE",
    "DELETE",
    "DISTINCT",
    "DROP",
    "ELSE",
    "EXISTS",
    "FALSE",
    "FOLLOWING",
    "FOR",
    "FROM",
    "FULL",
    "GRANT",
    "GROUP",
    "GSCLUSTER",
    "HAVING",
    "ILIKE",
    "IN",
    "INCREMENT",
    "INNER",
    "INSERT",
    "INTERSECT",
    "INTO",
    "IS",
    "ISSUE",
    "JOIN",
    "LATERAL",
    "LEFT",
    "LIKE",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "MINUS",
    "NATURAL",
    "NOT",
    "NULL",
    "OF",
    "ON",
    "OR",
    "ORDER",
    "ORGANIZATION",
    "QUALIFY",
    "REGEXP",
    "REVOKE",
    "RIGHT",
    "RLIKE",
    "ROW",
    "ROWS",
    "SAMPLE",
    "SCHEMA",
    "SELECT",
    "SET",
    "SOME",
    "START",
    "TABLE",
    "TABLESAMPLE",
    "THEN",
    "TO",
    "TRIGGER",
    "TRUE",
    "TRY_CAST",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USING",
    "VALUES",
    "VIEW",
    "WHEN",
    "WHENEVER",
    "WHERE",
    "WITH",
];

/// Longest schema name kept.
const MAX_SCHEMA_CHARS: usize = 127;

/// The schema name for a namespace: runs of ASCII letters and digits become words joined with `_`, the result
/// is snake-cased, `_` goes before a leading digit, an empty name becomes `stringempty`, `_` goes before a
/// reserved word, and the whole is upper-cased (Snowflake's case for unquoted names).
///
/// ```
/// use snowpipe_channels::schema_name;
/// assert_eq!(schema_name("rudder-events"), "RUDDER_EVENTS");
/// assert_eq!(schema_name("myNamespace"), "MY_NAMESPACE");
/// assert_eq!(schema_name("1st"), "_1_ST");
/// assert_eq!(schema_name("  "), "STRINGEMPTY");
/// assert_eq!(schema_name("table"), "_TABLE");
/// ```
pub fn schema_name(namespace: &str) -> String {
    let words: Vec<&str> = namespace
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut name = to_snake(&words.join("_"));
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    if name.is_empty() {
        name = "stringempty".to_owned();
    }
    if RESERVED.contains(&name.to_ascii_uppercase().as_str()) {
        name.insert(0, '_');
    }
    name.truncate(MAX_SCHEMA_CHARS);
    name.to_ascii_uppercase()
}

/// Snake case as the Go `strcase` package writes it (which the model implementation uses, so schemas match):
/// a `_` where letter case changes or letters meet digits, acronyms kept whole (`JSONData` → `json_data`).
fn to_snake(s: &str) -> String {
    let bytes = s.trim().as_bytes();
    let mut out = String::with_capacity(bytes.len() + 4);
    for (i, &v) in bytes.iter().enumerate() {
        let (v_cap, v_low, v_num) = (
            v.is_ascii_uppercase(),
            v.is_ascii_lowercase(),
            v.is_ascii_digit(),
        );
        let lower = v.to_ascii_lowercase() as char;
        if let Some(&next) = bytes.get(i + 1) {
            let (n_cap, n_low, n_num) = (
                next.is_ascii_uppercase(),
                next.is_ascii_lowercase(),
                next.is_ascii_digit(),
            );
            if (v_cap && (n_low || n_num))
                || (v_low && (n_cap || n_num))
                || (v_num && (n_cap || n_low))
            {
                if v_cap && n_low && i > 0 && bytes[i - 1].is_ascii_uppercase() {
                    out.push('_');
                }
                out.push(lower);
                if v_low || v_num || n_num {
                    out.push('_');
                }
                continue;
            }
        }
        if matches!(v, b' ' | b'_' | b'-' | b'.') {
            out.push('_');
        } else {
            out.push(lower);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_follow_the_namespace_rules() {
        let check = |input: &str, expect: &str| assert_eq!(schema_name(input), expect, "{input:?}");
        check("rudderstack", "RUDDERSTACK");
        check("RUDDER_EVENTS", "RUDDER_EVENTS");
        check("my namespace!!", "MY_NAMESPACE");
        check("JSONData", "JSON_DATA");
        check("camelCaseName", "CAMEL_CASE_NAME");
        check("version2", "VERSION_2");
        check("2024 events", "_2024_EVENTS");
        check("", "STRINGEMPTY");
        check("!!!", "STRINGEMPTY");
        check("select", "_SELECT");
        check("schéma", "SCH_MA");
        check(&"a".repeat(300), &"A".repeat(127));
    }

    #[test]
    fn config_reads_the_routers_field_names_and_hides_secrets() {
        let config: DestinationConfig = serde_json::from_str(
            r#"{"account":"acct","warehouse":"WH","database":"DB","user":"U","role":"R","privateKey":"KEY",
                "privateKeyPassphrase":"PASS","namespace":"ns","enableIceberg":true,"extra":1}"#,
        )
        .unwrap();
        assert_eq!(config.private_key.expose(), "KEY");
        assert!(config.enable_iceberg);
        assert_eq!(config.schema(), "NS");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("KEY\"") && !shown.contains("PASS"),
            "{shown}"
        );
    }
}
