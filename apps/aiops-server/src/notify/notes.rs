//! What the engine remembers about each incident besides the incident itself: who acknowledged
//! it, which silences held back its notifications, whether anyone was told about it, and what
//! it looked like last time, so that the next version of it tells what changed.

use aiops_engine::{Incident, IncidentStatus};
use aiops_storage_sqlite::IncidentEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::alert::LabelSet;

/// Someone took an incident on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// Who.
    pub by: String,
    /// Why, or what they are doing about it.
    pub comment: Option<String>,
    /// When, in Unix nanoseconds.
    pub at_unix_nanos: u64,
}

/// An incident as last seen: what a new version is compared with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Active or resolved.
    pub status: IncidentStatus,
    /// Its severity.
    pub severity: aiops_analyzer::Severity,
    /// Its root cause, as `service endpoint (kind)`.
    pub cause: String,
    /// Raw alerts absorbed.
    pub alert_count: u64,
}

impl Seen {
    /// How `incident` looks now.
    pub fn of(incident: &Incident) -> Self {
        let cause = &incident.root_cause;
        Self {
            status: incident.status,
            severity: incident.severity,
            cause: format!(
                "{} {} ({})",
                cause.service,
                cause.endpoint,
                serde_json::to_value(cause.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            alert_count: incident.alert_count,
        }
    }
}

/// The notes of one incident.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Notes {
    /// Who acknowledged it, once someone has.
    pub acknowledged: Option<Acknowledgement>,
    /// Ids of the silences that held back at least one of its notifications.
    pub silenced_by: Vec<String>,
    /// True once a notification about it went out (was not held back by a silence): it then
    /// gets its resolved notice whatever silences say.
    pub notified: bool,
    /// Its labels, fixed when it was first sent, so that receivers see one alert however its
    /// root cause or severity change.
    pub labels: Option<LabelSet>,
    /// How it looked last time.
    pub seen: Option<Seen>,
}

impl Notes {
    /// The labels fixed for this incident, or `make`'s.
    pub fn labels_or(&self, make: impl FnOnce() -> LabelSet) -> LabelSet {
        self.labels.clone().unwrap_or_else(make)
    }
}

/// What changed from `before` to `now`, as a webhook is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// First seen.
    Opened,
    /// Resolved before, active again.
    Reopened,
    /// The root cause or the severity changed.
    Revised,
    /// Only more anomalies joined.
    Joined,
    /// It resolved.
    Resolved,
    /// Nothing a receiver needs to hear about.
    Unchanged,
}

impl Change {
    /// Whether receivers hear about it.
    pub fn is_news(self) -> bool {
        matches!(
            self,
            Self::Opened | Self::Reopened | Self::Revised | Self::Resolved
        )
    }
}

/// The timeline events from `before` (the incident as last seen, if ever) to `incident` at
/// `now_unix_nanos`, and what kind of change it is.
pub fn changes(
    before: Option<&Seen>,
    incident: &Incident,
    now_unix_nanos: u64,
) -> (Vec<IncidentEvent>, Change) {
    let after = Seen::of(incident);
    let event = |kind: &str, body: serde_json::Value| IncidentEvent {
        incident_id: incident.id.clone(),
        at_unix_nanos: now_unix_nanos,
        kind: kind.to_owned(),
        body,
    };
    let Some(before) = before else {
        let mut events = vec![event(
            "opened",
            json!({"severity": after.severity, "root_cause": after.cause, "title": incident.title}),
        )];
        let mut change = Change::Opened;
        if !incident.is_active() {
            events.push(event("resolved", json!({})));
            change = Change::Resolved;
        }
        return (events, change);
    };
    let mut events = Vec::new();
    let mut change = Change::Unchanged;
    if before.status == IncidentStatus::Resolved && incident.is_active() {
        events.push(event("reopened", json!({})));
        change = Change::Reopened;
    }
    if after.alert_count > before.alert_count {
        let joined = after.alert_count - before.alert_count;
        events.push(event(
            "anomaly_joined",
            json!({"anomalies": joined, "alert_count": after.alert_count}),
        ));
        if change == Change::Unchanged {
            change = Change::Joined;
        }
    }
    if after.cause != before.cause {
        events.push(event(
            "root_cause_changed",
            json!({"from": before.cause, "to": after.cause}),
        ));
        if matches!(change, Change::Unchanged | Change::Joined) {
            change = Change::Revised;
        }
    }
    if after.severity != before.severity {
        events.push(event(
            "severity_changed",
            json!({"from": before.severity, "to": after.severity}),
        ));
        if matches!(change, Change::Unchanged | Change::Joined) {
            change = Change::Revised;
        }
    }
    if before.status == IncidentStatus::Active && !incident.is_active() {
        // An incident folded into another resolves into it.
        let details = match &incident.merged_into {
            Some(into) => json!({"merged_into": into}),
            None => json!({}),
        };
        events.push(event("resolved", details));
        change = Change::Resolved;
    }
    (events, change)
}
