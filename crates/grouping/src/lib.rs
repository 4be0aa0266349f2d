//! Reading event files for the Snowpipe Streaming upload manager: decoding lines, partitioning events by
//! table, table schemas, splitting by insert request size and ordering.
//!
//! This crate is a placeholder until its issue lands; see `docs/ARCHITECTURE.md` for where it sits.
