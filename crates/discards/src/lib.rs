//! Type coercion of events against a Snowflake table's schema, and the discard rows written for values that
//! cannot be converted.
//!
//! This crate is a placeholder until its issue lands; see `docs/ARCHITECTURE.md` for where it sits.
