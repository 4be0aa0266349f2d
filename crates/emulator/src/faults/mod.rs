//! Faults a test scripts per endpoint (failures, dropped connections, latency, inserts held in transit)
//! and the call log of what the client called.

mod script;

pub use script::{CallRecord, DropMode, Endpoint, Failure};
pub(crate) use script::{Faults, Plan};
