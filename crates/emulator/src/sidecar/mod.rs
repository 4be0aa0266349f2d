//! The sidecar service protocol (`docs/service-protocol.md`): its routes (the router also knows the SQL
//! API's path, which `sql` serves) and handlers, insert bodies read and their rows validated against the
//! channel's schema, and its JSON answers.

mod column_keys;
mod insert_body;
mod service;
mod validate;
#[cfg(test)]
mod validate_props;

pub(crate) use service::{Route, failure_response, route, serve};
