//! Channel status: committed and latest inserted offsets, one channel at a time or in bulk.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::nullable::or_default;

/// Where a channel stands: what Snowflake has committed and what it has been handed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    /// Whether the call succeeded.
    #[serde(deserialize_with = "or_default", default)]
    pub success: bool,
    /// Whether the channel can still commit; an invalid channel never will and must be opened anew.
    #[serde(deserialize_with = "or_default", default)]
    pub valid: bool,
    /// The latest committed offset token; empty when nothing was committed yet.
    #[serde(deserialize_with = "or_default", default)]
    pub offset: String,
    /// The latest inserted offset token; empty when nothing was inserted yet.
    #[serde(deserialize_with = "or_default", default)]
    pub latest_inserted_offset: String,
}

/// Statuses of many channels in one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkStatusResponse {
    /// Whether the call succeeded.
    #[serde(deserialize_with = "or_default", default)]
    pub success: bool,
    /// Status per channel id that the service knows.
    #[serde(deserialize_with = "or_default", default)]
    pub statuses: BTreeMap<String, StatusResponse>,
    /// Channel ids the service does not know (it restarted since they were opened).
    #[serde(deserialize_with = "or_default", default)]
    pub not_found: Vec<String>,
}
