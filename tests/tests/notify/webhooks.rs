//! Webhooks: Alertmanager's payload (version 4), signed and authorised, once per piece of news
//! (opened, acknowledged, resolved), with secrets never echoed.

use aiops_e2e::TestApp;
use aiops_server::Settings;
use aiops_server::notify::signature;
use reqwest::StatusCode;

use super::support::{WebhookReceiver, eventually};

const SECRET: &str = "shared-hmac-secret";
const TOKEN: &str = "receiver-bearer-token";

fn calling(receiver: &WebhookReceiver) -> impl FnOnce(&mut Settings) + use<> {
    let url = receiver.url.clone();
    move |config: &mut Settings| {
        config.notify.webhook_url = vec![url];
        config.notify.webhook_secret = Some(SECRET.into());
        config.notify.webhook_token = Some(TOKEN.into());
        config.notify.alert_label = vec!["environment=e2e".into()];
    }
}

/// Errors on /inventory until an incident opens; returns its id.
pub async fn inventory_incident(app: &TestApp) -> String {
    app.learn_baselines().await;
    app.simulate_error("/inventory", 0.8).await;
    app.traffic(reqwest::Method::GET, "/inventory", 30, 5).await;
    let report = app.analyze().await;
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "{report:#}");
    incidents[0]["id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn webhooks_get_signed_v4_payloads_when_an_incident_opens_and_resolves() {
    // Arrange
    let receiver = WebhookReceiver::start();
    let app = TestApp::spawn_with(calling(&receiver)).await;

    // Act
    let id = inventory_incident(&app).await;
    eventually("the opening is told", || {
        let told = receiver.count(&id, "firing");
        async move { told == 1 }
    })
    .await;
    let (status, body) = app.post(&format!("/aiops/incidents/{id}/resolve")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("the resolution is told", || {
        let told = receiver.count(&id, "resolved");
        async move { told == 1 }
    })
    .await;

    // Assert: two calls, each signed with the secret and carrying the token.
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    for call in &calls {
        assert_eq!(
            call.signature.as_deref(),
            Some(signature(SECRET, &call.body).as_str())
        );
        assert_eq!(
            call.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        let payload = &call.json;
        assert_eq!(payload["version"], "4");
        assert_eq!(payload["receiver"], "webhook-1");
        assert_eq!(
            payload["groupKey"],
            format!("{{}}:{{incident_id=\"{id}\"}}")
        );
        assert_eq!(payload["commonLabels"]["environment"], "e2e");
        assert_eq!(payload["alerts"][0]["labels"]["endpoint"], "/inventory");
        assert_eq!(
            payload["alerts"][0]["fingerprint"].as_str().map(str::len),
            Some(16)
        );
    }
    assert_eq!(calls[0].json["status"], "firing");
    assert_eq!(calls[0].json["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(calls[1].json["status"], "resolved");
    assert_ne!(calls[1].json["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");

    // The secrets show nowhere in the engine's answers.
    for path in ["/openapi.json", "/metrics", "/aiops/metrics"] {
        let (_, text) = text_of(&app, path).await;
        assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{path}");
    }
    let metrics = text_of(&app, "/metrics").await.1;
    assert!(
        metrics
            .contains("aiops_notifications_sent_total{receiver=\"webhook-1\",kind=\"webhook\"} 2"),
        "{metrics}"
    );
    eprintln!("webhook: incident {id}: 1 firing, 1 resolved");
    app.stop().await;
    receiver.stop().await;
}

async fn text_of(app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .expect("answered");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}
