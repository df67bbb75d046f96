//! The body of every 4xx and 5xx answer.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Every 4xx and 5xx answer: what was wrong and what is accepted. Routes add fields that help
/// fix the request (`parameter`, `accepted`, `limit_bytes`, `allowed_methods`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"error": "invalid status \"open\"; accepted: active, resolved, all",
    "parameter": "status", "accepted": ["active", "resolved", "all"]}))]
pub struct ErrorBody {
    /// What was wrong and what is accepted.
    pub error: String,
    /// Fields that help fix the request, beside `error`.
    #[serde(flatten)]
    pub details: BTreeMap<String, Value>,
}
