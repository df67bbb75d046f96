//! An incident as an alert: the labels that identify it, the annotations that describe it, the
//! body of Alertmanager's `POST /api/v2/alerts`, and the webhook payload (version 4) that
//! Alertmanager itself sends to its receivers.

use std::collections::BTreeMap;

use aiops_engine::Incident;
use serde::{Deserialize, Serialize};

use super::notes::Notes;
use crate::views::format::iso_millis;

/// The `alertname` of every incident.
pub const ALERT_NAME: &str = "AiopsIncident";

/// `endsAt` of a firing alert in a webhook payload: Go's zero time, as Alertmanager writes it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Label or annotation names to values, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

/// How alerts are labelled and linked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertStyle {
    /// Static labels added to every alert (`environment=prod`).
    pub static_labels: Vec<(String, String)>,
    /// The engine's URL, for `generatorURL` (no trailing slash).
    pub external_url: String,
}

impl AlertStyle {
    /// The labels of `incident`: stable over its life, so that Alertmanager sees one alert.
    pub fn labels(&self, incident: &Incident) -> LabelSet {
        let mut labels: LabelSet = self.static_labels.iter().cloned().collect();
        let cause = &incident.root_cause;
        // The identity of an incident is its id; the rest says what it is about. Its root
        // cause may be revised early in its life, so the labels take the first one seen.
        labels.insert("alertname".into(), ALERT_NAME.into());
        labels.insert("incident_id".into(), incident.id.clone());
        labels.insert("service".into(), cause.service.clone());
        labels.insert("endpoint".into(), cause.endpoint.clone());
        labels.insert("kind".into(), text_of(&cause.kind));
        labels.insert("severity".into(), text_of(&incident.severity));
        labels
    }

    /// The annotations of `incident`: the facts that change over its life.
    pub fn annotations(&self, incident: &Incident, notes: &Notes) -> LabelSet {
        let cause = &incident.root_cause;
        let mut annotations = LabelSet::new();
        annotations.insert("summary".into(), incident.title.clone());
        annotations.insert("description".into(), cause.description.clone());
        annotations.insert(
            "root_cause".into(),
            format!(
                "{} {} ({})",
                cause.service,
                cause.endpoint,
                text_of(&cause.kind)
            ),
        );
        annotations.insert("confidence".into(), format!("{:.2}", cause.confidence));
        let affected: Vec<String> = incident
            .affected_endpoints
            .iter()
            .map(|endpoint| format!("{} {}", endpoint.service, endpoint.operation))
            .collect();
        annotations.insert("affected_endpoints".into(), affected.join(", "));
        annotations.insert("alert_count".into(), incident.alert_count.to_string());
        annotations.insert("runbook_url".into(), self.incident_url(&incident.id));
        if let Some(ack) = &notes.acknowledged {
            annotations.insert("acknowledged_by".into(), ack.by.clone());
            annotations.insert("acknowledged_at".into(), iso_millis(ack.at_unix_nanos));
            if let Some(comment) = &ack.comment {
                annotations.insert("acknowledgement".into(), comment.clone());
            }
        }
        annotations
    }

    /// Where the engine shows incident `id`.
    pub fn incident_url(&self, id: &str) -> String {
        format!("{}/aiops/incidents/{id}", self.external_url)
    }

    /// The alert Alertmanager receives for `incident`: firing until `ends_at_unix_nanos` (a
    /// lease) while active, resolved at its resolution otherwise.
    pub fn postable(
        &self,
        incident: &Incident,
        notes: &Notes,
        lease_end_unix_nanos: u64,
    ) -> PostableAlert {
        let ends = incident
            .resolved_at_unix_nanos
            .unwrap_or(lease_end_unix_nanos);
        PostableAlert {
            labels: notes.labels_or(|| self.labels(incident)),
            annotations: self.annotations(incident, notes),
            starts_at: iso_millis(incident.first_detected_unix_nanos),
            ends_at: iso_millis(ends),
            generator_url: self.incident_url(&incident.id),
        }
    }

    /// The webhook payload (Alertmanager's version 4) for `incident`, as receiver `receiver`.
    pub fn webhook(&self, incident: &Incident, notes: &Notes, receiver: &str) -> WebhookPayload {
        let labels = notes.labels_or(|| self.labels(incident));
        let annotations = self.annotations(incident, notes);
        let status = if incident.is_active() {
            "firing"
        } else {
            "resolved"
        };
        let alert = WebhookAlert {
            status: status.to_owned(),
            fingerprint: fingerprint(&labels),
            labels: labels.clone(),
            annotations: annotations.clone(),
            starts_at: iso_millis(incident.first_detected_unix_nanos),
            ends_at: incident
                .resolved_at_unix_nanos
                .map_or_else(|| ZERO_TIME.to_owned(), iso_millis),
            generator_url: self.incident_url(&incident.id),
        };
        let group_labels = LabelSet::from([("incident_id".to_owned(), incident.id.clone())]);
        WebhookPayload {
            receiver: receiver.to_owned(),
            status: status.to_owned(),
            alerts: vec![alert],
            group_key: format!("{{}}:{{incident_id=\"{}\"}}", incident.id),
            group_labels,
            common_labels: labels,
            common_annotations: annotations,
            external_url: self.external_url.clone(),
            version: "4".to_owned(),
            truncated_alerts: 0,
        }
    }
}

/// A serde enum's text (`latency_spike`, `critical`).
fn text_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

/// One alert of `POST /api/v2/alerts` (Alertmanager's `postableAlert`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// Identity.
    pub labels: LabelSet,
    /// Description.
    pub annotations: LabelSet,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339: the lease end while firing, the resolution once resolved.
    pub ends_at: String,
    /// The incident in the engine.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// Alertmanager's webhook payload, version 4.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    /// The receiver's name.
    pub receiver: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// The alerts of the group: here the one incident.
    pub alerts: Vec<WebhookAlert>,
    /// The labels the group is keyed by.
    pub group_labels: LabelSet,
    /// Labels all alerts share.
    pub common_labels: LabelSet,
    /// Annotations all alerts share.
    pub common_annotations: LabelSet,
    /// The sender's URL.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// `"4"`.
    pub version: String,
    /// Identifies the group, e.g. `{}:{incident_id="INC-1-1"}`.
    pub group_key: String,
    /// Alerts left out of a large group.
    pub truncated_alerts: u64,
}

/// One alert of a webhook payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Identity.
    pub labels: LabelSet,
    /// Description.
    pub annotations: LabelSet,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; Go's zero time while firing.
    pub ends_at: String,
    /// The incident in the engine.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's fingerprint of the labels.
    pub fingerprint: String,
}

/// Alertmanager's fingerprint of a label set (Prometheus' `LabelSet.Fingerprint`): FNV-1a 64
/// over each name and value in name order, each followed by the byte 0xff, in 16 hex digits.
pub fn fingerprint(labels: &LabelSet) -> String {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let add = |hash: u64, byte: u8| (hash ^ u64::from(byte)).wrapping_mul(PRIME);
    let mut hash = OFFSET;
    for (name, value) in labels {
        for byte in name.bytes() {
            hash = add(hash, byte);
        }
        hash = add(hash, 0xff);
        for byte in value.bytes() {
            hash = add(hash, byte);
        }
        hash = add(hash, 0xff);
    }
    format!("{hash:016x}")
}
