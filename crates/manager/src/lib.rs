//! The Snowpipe Streaming upload manager: upload a batch of events, poll its import and report, job by job,
//! what landed, what must be retried and what never will.
//!
//! This crate is a placeholder until its issue lands; see `docs/ARCHITECTURE.md` for where it sits.
