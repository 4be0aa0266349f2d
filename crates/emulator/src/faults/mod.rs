//! Faults a test scripts per endpoint (failures, dropped connections, latency, inserts held in transit)
//! and the call log of what the client called. Every protocol's endpoints are scripted alike.

mod script;

pub use script::{BodyShape, CallRecord, DropMode, Endpoint, Failure};
pub(crate) use script::{Faults, Plan};
