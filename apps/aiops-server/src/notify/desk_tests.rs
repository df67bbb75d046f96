//! The desk's decisions, on an in-memory store with receivers whose deliveries the tests read:
//! who is told what, what silences hold back, what the timelines record.

use std::collections::HashMap;
use std::time::Duration;

use aiops_engine::{Incident, IncidentStatus};
use aiops_storage_sqlite::{Store, StoreConfig};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::alert::AlertStyle;
use super::deliver::{Delivery, ReceiverKind, test_outbox};
use super::desk::{Command, Desk};
use super::silence::{Matcher, Silence};
use crate::clock::now_unix_nanos;

struct Harness {
    desk: Desk,
    alertmanager: mpsc::Receiver<Delivery>,
    webhook: mpsc::Receiver<Delivery>,
    store: Store,
}

impl Harness {
    fn new() -> Self {
        let store = Store::open(StoreConfig::in_memory()).expect("store");
        let (alertmanager_box, alertmanager) =
            test_outbox("alertmanager-1", ReceiverKind::Alertmanager);
        let (webhook_box, webhook) = test_outbox("webhook-1", ReceiverKind::Webhook);
        let desk = Desk {
            style: AlertStyle {
                static_labels: Vec::new(),
                external_url: "http://engine".into(),
            },
            alertmanagers: vec![alertmanager_box],
            webhooks: vec![webhook_box],
            resend_interval: Duration::from_secs(30),
            store: store.clone(),
            notes: HashMap::new(),
            silences: Vec::new(),
            tracked: HashMap::new(),
        };
        Self {
            desk,
            alertmanager,
            webhook,
            store,
        }
    }

    async fn publish(&mut self, incident: &Incident) {
        self.desk
            .handle(Command::Publish(vec![incident.clone()]))
            .await;
    }

    async fn silence_everything(&mut self) -> String {
        let now = now_unix_nanos();
        let silence = Silence {
            id: "maintenance".into(),
            matchers: vec![Matcher {
                name: "service".into(),
                value: "shop".into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at_unix_nanos: now - 1,
            ends_at_unix_nanos: now + 3_600_000_000_000,
            created_by: "ops".into(),
            comment: String::new(),
            created_at_unix_nanos: now,
        };
        let (reply, answer) = oneshot::channel();
        self.desk
            .handle(Command::CreateSilence { silence, reply })
            .await;
        answer.await.expect("answered").expect("stored").id
    }

    /// Deliveries queued so far: (receiver, the alerts' statuses or endsAt, recorded for).
    fn sent(inbox: &mut mpsc::Receiver<Delivery>) -> Vec<(Value, Vec<String>)> {
        let mut sent = Vec::new();
        while let Ok(delivery) = inbox.try_recv() {
            let body: Value = serde_json::from_slice(&delivery.body).expect("JSON");
            sent.push((body, delivery.record_for));
        }
        sent
    }

    fn timeline(&self, id: &str) -> Vec<String> {
        self.store
            .timeline(id)
            .expect("read")
            .into_iter()
            .map(|stored| stored.event.kind)
            .collect()
    }
}

fn incident() -> Incident {
    let mut incident = super::tests::incident();
    incident.first_detected_unix_nanos = now_unix_nanos();
    incident
}

fn resolved(mut incident: Incident) -> Incident {
    incident.status = IncidentStatus::Resolved;
    incident.resolved_at_unix_nanos = Some(now_unix_nanos());
    incident
}

#[tokio::test]
async fn news_goes_to_everyone_and_is_recorded_while_joined_anomalies_only_refresh_alertmanager() {
    let mut harness = Harness::new();
    let opened = incident();

    harness.publish(&opened).await;
    let mut joined = opened.clone();
    joined.alert_count += 1;
    harness.publish(&joined).await;

    let pushes = Harness::sent(&mut harness.alertmanager);
    let calls = Harness::sent(&mut harness.webhook);
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    assert_eq!(
        pushes[0].1,
        vec![opened.id.clone()],
        "the opening is recorded"
    );
    assert!(pushes[1].1.is_empty(), "a refresh is not");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0["status"], "firing");
    assert_eq!(harness.timeline(&opened.id), ["opened", "anomaly_joined"]);
}

#[tokio::test]
async fn a_silenced_incident_is_told_nothing_not_even_its_resolution() {
    let mut harness = Harness::new();
    let silence = harness.silence_everything().await;
    let opened = incident();

    harness.publish(&opened).await;
    harness.desk.resend().await;
    harness.publish(&resolved(opened.clone())).await;

    assert!(Harness::sent(&mut harness.alertmanager).is_empty());
    assert!(Harness::sent(&mut harness.webhook).is_empty());
    assert_eq!(harness.desk.notes[&opened.id].silenced_by, vec![silence]);
    assert_eq!(
        harness.timeline(&opened.id),
        ["opened", "silenced", "resolved"]
    );
}

#[tokio::test]
async fn an_incident_told_before_a_silence_gets_its_resolution_told() {
    let mut harness = Harness::new();
    let opened = incident();
    harness.publish(&opened).await;
    harness.silence_everything().await;

    harness.desk.resend().await;
    let during = Harness::sent(&mut harness.alertmanager);
    harness.publish(&resolved(opened.clone())).await;

    // The opening only: the silence stops the re-sends.
    assert_eq!(during.len(), 1, "{during:?}");
    let pushes = Harness::sent(&mut harness.alertmanager);
    let calls = Harness::sent(&mut harness.webhook);
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_ne!(pushes[0].0[0]["endsAt"], Value::Null);
    assert_eq!(
        calls
            .iter()
            .map(|(body, _)| body["status"].clone())
            .collect::<Vec<_>>(),
        ["firing", "resolved"]
    );
}

#[tokio::test]
async fn resends_renew_active_alerts_unrecorded_and_resolved_ones_for_a_while() {
    let mut harness = Harness::new();
    let opened = incident();
    harness.publish(&opened).await;
    let _ = Harness::sent(&mut harness.alertmanager);

    harness.desk.resend().await;
    let renewed = Harness::sent(&mut harness.alertmanager);
    harness.publish(&resolved(opened.clone())).await;
    let _ = Harness::sent(&mut harness.alertmanager);
    harness.desk.resend().await;
    let still_resolved = Harness::sent(&mut harness.alertmanager);

    assert_eq!(renewed.len(), 1);
    assert!(renewed[0].1.is_empty(), "re-sends are not recorded");
    assert_eq!(renewed[0].0[0]["labels"]["incident_id"], opened.id.as_str());
    assert_eq!(still_resolved.len(), 1, "re-sent as resolved");
    assert_eq!(
        Harness::sent(&mut harness.webhook).len(),
        2,
        "opened, resolved"
    );
}
