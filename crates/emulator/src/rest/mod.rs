//! Snowflake's Snowpipe Streaming REST API (`docs/rest-protocol.md` in the shared docs), written from
//! that page rather than from any client's types: the account host (hostname discovery, the scoped
//! token exchange) and the ingest host (open, append, drop, bulk status) on the emulator's one port.
//! Channels and their commits live in the store beside the sidecar's; rows land in the same tables.

mod answers;
mod routes;
mod service;

pub(crate) use answers::{failure_response, reject_response};
pub(crate) use routes::{Route, route};
pub(crate) use service::{Answered, append_limit, log_request, serve};

/// The largest append body as received (after compression), in bytes; one byte more is 413.
pub const MAX_APPEND_BYTES: usize = 4_194_304;
