//! The incident lifecycle: open, deduplicate, resolve (by hand or automatically), and never
//! let evidence from before a resolution bring an incident back.

mod book;
mod grouping;
mod lifecycle;
mod merge;

use aiops_analyzer::{Anomaly, Severity};
use aiops_telemetry_core::EndpointKey;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use self::book::{
    DEFAULT_AUTO_RESOLVE_CYCLES, DEFAULT_MAX_RESOLVED_INCIDENTS, DEFAULT_REVISE_WINDOW_NANOS,
    IncidentBook, MIN_CONFIDENCE_TO_OPEN,
};
pub use self::grouping::MIN_CONFIDENCE_TO_REVISE;
pub use self::lifecycle::Damping;
use aiops_rca::RootCause;

use crate::evidence::IncidentEvidence;

/// Whether an incident is still going on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Open: its root cause is (or recently was) producing anomalies.
    Active,
    /// Closed by hand or after its endpoints stayed healthy.
    Resolved,
}

/// One problem, however many alerts it raised: a root cause and everything it affected.
///
/// Times are Unix nanoseconds; presenting them (ISO 8601 in the HTTP API) is the caller's job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `INC-<unix seconds of opening>-<sequence>`, e.g. `INC-1737404800-1`.
    pub id: String,
    /// The most severe anomaly the incident has absorbed.
    pub severity: Severity,
    /// A headline such as `Latency spike detected in /payment`.
    pub title: String,
    /// Active or resolved.
    pub status: IncidentStatus,
    /// Where the problem started, as of the latest evidence. Its `first_failing_span` is the
    /// earliest one seen over the incident's life.
    pub root_cause: RootCause,
    /// The root-cause endpoint first, then every endpoint it affected, in order of discovery.
    pub affected_endpoints: Vec<EndpointKey>,
    /// The latest anomaly of each kind on each affected endpoint, most severe first.
    pub anomalies: Vec<Anomaly>,
    /// When the incident was opened.
    pub first_detected_unix_nanos: u64,
    /// When new evidence last updated it (or it was resolved).
    pub last_updated_unix_nanos: u64,
    /// When it was resolved, if it was.
    pub resolved_at_unix_nanos: Option<u64>,
    /// How many raw anomalies (alerts) it absorbed over its life.
    pub alert_count: u64,
    /// The incident this one was folded into, when a revised root cause showed both were
    /// one problem (it is then resolved, and the other carries its evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// What logs, exceptions, versions and attributes say: the changes near its start, a
    /// deployment to blame, the attributes that explain it (refreshed while it is active).
    #[serde(default)]
    pub evidence: IncidentEvidence,
}

impl Incident {
    /// True while the incident is open.
    pub fn is_active(&self) -> bool {
        self.status == IncidentStatus::Active
    }
}

/// What [`IncidentBook::apply`] or a resolution did to one incident.
///
/// Serialized as `{"change": "opened", "id": "INC-1737404800-1"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum IncidentChange {
    /// A new incident was opened.
    Opened {
        /// Its id.
        id: String,
    },
    /// An active incident absorbed new anomalies with the same root cause.
    Updated {
        /// Its id.
        id: String,
    },
    /// An incident was resolved.
    Resolved {
        /// Its id.
        id: String,
    },
    /// A resolved incident whose cause returned within the reopen window became active again.
    Reopened {
        /// Its id.
        id: String,
    },
}

impl IncidentChange {
    /// The id of the incident that changed.
    pub fn id(&self) -> &str {
        match self {
            Self::Opened { id }
            | Self::Updated { id }
            | Self::Resolved { id }
            | Self::Reopened { id } => id,
        }
    }
}

/// Why an incident could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IncidentError {
    /// No incident has this id (or it was resolved long ago and is no longer kept in memory).
    #[error("incident: no incident has id {id:?}")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The incident was already resolved.
    #[error("incident: {id} is already resolved")]
    AlreadyResolved {
        /// The incident's id.
        id: String,
        /// When it was resolved, in Unix nanoseconds.
        resolved_at_unix_nanos: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_pinned() {
        assert_eq!(
            IncidentError::NotFound {
                id: "INC-1-9".into()
            }
            .to_string(),
            "incident: no incident has id \"INC-1-9\""
        );
        assert_eq!(
            IncidentError::AlreadyResolved {
                id: "INC-1-1".into(),
                resolved_at_unix_nanos: 5
            }
            .to_string(),
            "incident: INC-1-1 is already resolved"
        );
    }

    #[test]
    fn changes_serialize_with_a_change_tag() {
        let change = IncidentChange::Opened {
            id: "INC-1737404800-1".into(),
        };
        let json = serde_json::to_value(&change).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"change": "opened", "id": "INC-1737404800-1"})
        );
        assert_eq!(change.id(), "INC-1737404800-1");
    }

    #[test]
    fn status_serializes_in_lower_case() {
        assert_eq!(
            serde_json::to_value(IncidentStatus::Resolved).expect("serializes"),
            serde_json::json!("resolved")
        );
    }
}
