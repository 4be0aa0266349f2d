//! How databases, schemas, pipes and channels are written in the ingest host's URLs.
//!
//! Path segments follow Snowflake's identifier rules: an unquoted segment resolves upper-cased, a segment
//! in double quotes is taken exactly. A name that an unquoted segment would resolve to itself (upper case,
//! letters, digits, `_` and `$`, not starting with a digit) goes bare, as every client of the API sends it;
//! any other name goes in quotes, so `"events"` or `"my table"` reach the object of that exact name instead
//! of `EVENTS` or an error. Either way the segment is percent-encoded.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use snowpipe_api::{ChannelRef, TableRef};

/// Everything but RFC 3986's unreserved characters is encoded, so no name can end a segment early, start a
/// query, or be normalised away (`.`, `..`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// The suffix Snowflake gives every table's default pipe.
const DEFAULT_PIPE_SUFFIX: &str = "-STREAMING";

/// Whether `name`, unquoted, resolves to exactly `name`.
pub(crate) fn is_plain(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '$')
}

/// A path segment naming the object called exactly `name`.
pub(crate) fn segment(name: &str) -> String {
    if is_plain(name) {
        utf8_percent_encode(name, SEGMENT).to_string()
    } else {
        quoted(name)
    }
}

fn quoted(name: &str) -> String {
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    utf8_percent_encode(&quoted, SEGMENT).to_string()
}

/// The name of a table's default pipe, as status answers spell it.
pub fn pipe_name(table: &str) -> String {
    format!("{table}{DEFAULT_PIPE_SUFFIX}")
}

/// The default pipe of `table` as a path segment: bare `TRACKS-STREAMING` for a plain table name (the
/// service resolves it to the pipe of `TRACKS`), quoted `"Tracks-STREAMING"` for any other.
pub(crate) fn pipe_segment(table: &str) -> String {
    if is_plain(table) {
        utf8_percent_encode(&pipe_name(table), SEGMENT).to_string()
    } else {
        quoted(&pipe_name(table))
    }
}

/// The path of a table's default pipe: `databases/{db}/schemas/{schema}/pipes/{pipe}`.
pub(crate) fn pipe_path(table: &TableRef) -> String {
    format!(
        "databases/{}/schemas/{}/pipes/{}",
        segment(&table.database),
        segment(&table.schema),
        pipe_segment(&table.table)
    )
}

/// The channel's name on the service: [`ChannelRef::name`], a plain identifier, so one spelling serves
/// the path (where case would not matter) and bulk status (where it does).
pub fn channel_name(channel: &ChannelRef) -> String {
    channel.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_go_bare_and_others_quoted_and_encoded() {
        assert_eq!(segment("ANALYTICS"), "ANALYTICS");
        assert_eq!(segment("RUDDER_2$X"), "RUDDER_2%24X");
        assert_eq!(segment("events"), "%22events%22");
        assert_eq!(segment("My Table"), "%22My%20Table%22");
        assert_eq!(segment("A\"B"), "%22A%22%22B%22");
        assert_eq!(segment("1ST"), "%221ST%22");
        assert_eq!(segment("a/b?c#d"), "%22a%2Fb%3Fc%23d%22");
        assert_eq!(segment(".."), "%22%2E%2E%22");
        assert_eq!(segment("ÉTÉ"), "%22%C3%89T%C3%89%22");
    }

    #[test]
    fn the_default_pipe_is_bare_for_plain_tables_and_quoted_otherwise() {
        assert_eq!(pipe_segment("TRACKS"), "TRACKS-STREAMING");
        assert_eq!(pipe_segment("Tracks"), "%22Tracks-STREAMING%22");
        assert_eq!(pipe_name("Tracks"), "Tracks-STREAMING");
        let table = TableRef {
            database: "DB".into(),
            schema: "my schema".into(),
            table: "T".into(),
            enable_iceberg: false,
        };
        assert_eq!(
            pipe_path(&table),
            "databases/DB/schemas/%22my%20schema%22/pipes/T-STREAMING"
        );
    }
}
