//! Channels for the Snowpipe Streaming upload manager: the channel cache, channel creation with schema and
//! table creation, recreation and deletion, the Snowflake warehouse (DDL) client and the auth backoff.
//!
//! This crate is a placeholder until its issue lands; see `docs/ARCHITECTURE.md` for where it sits.
