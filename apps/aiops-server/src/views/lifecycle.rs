//! What happens to incidents besides detection: acknowledgements, timelines and silences.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::incident::Incident;

/// Someone took the incident on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Acknowledged {
    /// Who.
    pub by: String,
    /// What they said, if anything.
    pub comment: Option<String>,
    /// ISO 8601, to the millisecond.
    pub at: String,
}

/// `POST /aiops/incidents/{id}/acknowledge`'s body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeRequest {
    /// Who takes the incident on, e.g. `alice`: not blank, at most 1000 characters.
    #[schema(
        example = "alice",
        min_length = 1,
        max_length = 1000,
        pattern = "[^\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub by: String,
    /// Optional note, e.g. `rolling back the payment release`, at most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub comment: Option<String>,
}

/// `POST /aiops/incidents/{id}/acknowledge`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Acknowledgement {
    /// `Incident INC-... acknowledged by alice`.
    pub message: String,
    /// The incident, acknowledged.
    pub incident: Incident,
}

/// One event of an incident's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct TimelineEvent {
    /// Order of the event in the timeline (increasing, not consecutive).
    pub sequence: u64,
    /// ISO 8601, to the millisecond.
    pub at: String,
    /// `opened`, `anomaly_joined`, `root_cause_changed`, `severity_changed`, `acknowledged`,
    /// `silenced`, `notified`, `resolved` or `reopened`.
    #[schema(example = "notified")]
    pub kind: String,
    /// The event's details: for `notified`, `receiver`, HTTP `status` or `error`, and
    /// `attempts`; for changes, `from` and `to`; for `acknowledged`, `by` and `comment`; for
    /// `silenced`, `silence_id`.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// `GET /aiops/incidents/{id}/timeline`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Timeline {
    /// The incident.
    pub incident_id: String,
    /// Its events, oldest first; never rewritten.
    pub events: Vec<TimelineEvent>,
    /// How many.
    pub count: usize,
}

/// One condition of a silence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceMatcher {
    /// `service`, `endpoint`, `kind` or `severity`.
    #[schema(example = "endpoint", pattern = "^(?:service|endpoint|kind|severity)$")]
    pub name: String,
    /// A value, or a regular expression anchored at both ends.
    #[schema(example = "/payment")]
    pub value: String,
    /// `value` is a regular expression (default false).
    #[serde(default)]
    pub is_regex: bool,
    /// Matches when equal (default true); false: when not equal.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// `POST /aiops/silences`'s body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// At least one; all must match.
    #[schema(min_items = 1)]
    pub matchers: Vec<SilenceMatcher>,
    /// ISO 8601 (RFC 3339); default now.
    #[serde(default)]
    #[schema(example = "2026-01-20T22:00:00Z", format = DateTime)]
    pub starts_at: Option<String>,
    /// ISO 8601 (RFC 3339), after `starts_at` and in the future.
    #[schema(example = "2026-01-20T23:00:00Z", format = DateTime)]
    pub ends_at: String,
    /// Who makes it: not blank, at most 1000 characters.
    #[schema(
        example = "alice",
        min_length = 1,
        max_length = 1000,
        pattern = "[^\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub created_by: String,
    /// Why, e.g. `payment release window`, at most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub comment: String,
}

/// A silence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct SilenceView {
    /// Its id (a UUID).
    pub id: String,
    /// `pending`, `active` or `expired`.
    #[schema(example = "active")]
    pub state: String,
    /// All must match.
    pub matchers: Vec<SilenceMatcher>,
    /// ISO 8601.
    pub starts_at: String,
    /// ISO 8601.
    pub ends_at: String,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// ISO 8601.
    pub created_at: String,
}

/// `GET /aiops/silences`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct SilenceList {
    /// Pending and active silences, and those expired within the last 24 hours, by end.
    pub silences: Vec<SilenceView>,
    /// How many.
    pub count: usize,
}
