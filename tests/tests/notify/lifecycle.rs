//! Acknowledgements, silences and timelines: what they do to notifications, that they survive a
//! restart, and that the API token guards the routes that change them.

use std::time::Duration;

use aiops_e2e::TestApp;
use aiops_server::Settings;
use chrono::{SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Alertmanager, WebhookReceiver, alertmanager_available, eventually};
use super::webhooks::inventory_incident;

const TOKEN: &str = "operator-token";

fn calling(receiver: &WebhookReceiver) -> impl FnOnce(&mut Settings) + use<> {
    let url = receiver.url.clone();
    move |config: &mut Settings| {
        config.notify.webhook_url = vec![url];
        config.notify.resend_interval = Duration::from_secs(1);
    }
}

/// `method path` with a JSON body, through the app's token.
async fn send(app: &TestApp, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    aiops_e2e::json_of(
        app.request(method, path)
            .json(&body)
            .send()
            .await
            .expect("sent"),
    )
    .await
}

fn in_an_hour() -> String {
    (Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn kinds(timeline: &Value) -> Vec<String> {
    timeline["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|event| event["kind"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_acknowledgement_is_shown_notified_and_kept_with_the_timeline_across_a_restart() {
    // Arrange
    let receiver = WebhookReceiver::start();
    let app = TestApp::spawn_with(calling(&receiver)).await;
    let id = inventory_incident(&app).await;
    eventually("the opening is told", || {
        let told = receiver.count(&id, "firing");
        async move { told == 1 }
    })
    .await;

    // Act
    let path = format!("/aiops/incidents/{id}/acknowledge");
    let ack = json!({"by": "alice", "comment": "rolling back"});
    let (status, body) = send(&app, Method::POST, &path, ack.clone()).await;
    let (again, refusal) = send(&app, Method::POST, &path, json!({"by": "bob"})).await;

    // Assert: shown on the incident, in the status filter, and told to the webhook.
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["incident"]["acknowledged"]["by"], "alice", "{body}");
    assert_eq!(body["incident"]["acknowledged"]["comment"], "rolling back");
    assert_eq!(again, StatusCode::CONFLICT, "{refusal}");
    assert!(
        refusal["error"]
            .as_str()
            .is_some_and(|e| e.contains("alice"))
    );
    let (_, listed) = app.get("/aiops/incidents?status=acknowledged").await;
    assert_eq!(listed["incidents"][0]["id"], id.as_str(), "{listed}");
    let (_, listed) = app.get("/aiops/incidents?status=unacknowledged").await;
    assert_eq!(listed["count"], 0, "{listed}");
    let (_, active) = app.get("/aiops/incidents").await;
    assert_eq!(active["active_incidents"][0]["acknowledged"]["by"], "alice");
    eventually("the acknowledgement is told", || {
        let told = receiver
            .alerts_of(&id)
            .iter()
            .any(|alert| alert["annotations"]["acknowledged_by"] == "alice");
        async move { told }
    })
    .await;

    // The incident still resolves; the timeline tells the whole story, in order.
    let (status, body) = app.post(&format!("/aiops/incidents/{id}/resolve")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let timeline_path = format!("/aiops/incidents/{id}/timeline");
    eventually("the resolution's delivery is recorded", || {
        let app = &app;
        let path = timeline_path.clone();
        async move {
            let (_, timeline) = app.get(&path).await;
            kinds(&timeline).iter().filter(|k| *k == "notified").count() == 3
        }
    })
    .await;
    let (status, before) = app.get(&timeline_path).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let story = kinds(&before);
    let at = |kind: &str| story.iter().position(|k| k == kind).expect(kind);
    assert_eq!(story[0], "opened", "{before:#}");
    assert!(at("notified") < at("acknowledged"), "{story:?}");
    assert!(at("acknowledged") < at("resolved"), "{story:?}");
    let notified = &before["events"][at("notified")]["details"];
    assert_eq!(notified["receiver"], "webhook-1", "{notified}");
    assert_eq!(notified["status"], 200, "{notified}");

    // Act: restart.
    let app = app.restart().await;

    // Assert: the same timeline, the acknowledgement kept.
    let (_, after) = app.get(&timeline_path).await;
    assert_eq!(after, before);
    let (_, incident) = app.get(&format!("/aiops/incidents/{id}")).await;
    assert_eq!(incident["acknowledged"]["by"], "alice", "{incident}");
    let (status, _) = app.get("/aiops/incidents/INC-1-999/timeline").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
    receiver.stop().await;
}

#[tokio::test]
async fn a_silence_holds_back_notifications_but_not_the_incident_and_survives_a_restart() {
    // Arrange: a webhook, and Alertmanager when it can run here.
    let receiver = WebhookReceiver::start();
    let alertmanager = if alertmanager_available() {
        Some(Alertmanager::start(&WebhookReceiver::start().url).await)
    } else {
        None
    };
    let app = TestApp::spawn_with({
        let url = receiver.url.clone();
        let am = alertmanager.as_ref().map(|am| am.url.clone());
        move |config: &mut Settings| {
            config.notify.webhook_url = vec![url];
            config.notify.alertmanager_url = am.into_iter().collect();
            config.notify.resend_interval = Duration::from_secs(1);
        }
    })
    .await;
    let (status, silence) = send(
        &app,
        Method::POST,
        "/aiops/silences",
        json!({
            "matchers": [{"name": "endpoint", "value": "/inv.*", "is_regex": true}],
            "ends_at": in_an_hour(),
            "created_by": "alice",
            "comment": "inventory maintenance",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{silence}");
    assert_eq!(silence["state"], "active", "{silence}");
    let silence_id = silence["id"].as_str().expect("an id").to_owned();

    // Act: a fault the silence covers.
    let id = inventory_incident(&app).await;

    // Assert: the incident is there and records the silence; nobody is told.
    let (_, incident) = app.get(&format!("/aiops/incidents/{id}")).await;
    assert_eq!(incident["status"], "active");
    assert_eq!(incident["silenced_by"], json!([silence_id]), "{incident}");
    // Three resend intervals: time for any push that was going to happen.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.calls().len(), 0, "{:?}", receiver.calls());
    if let Some(alertmanager) = &alertmanager {
        assert!(alertmanager.alert_of(&id).await.is_none());
    }
    let (status, body) = app.post(&format!("/aiops/incidents/{id}/resolve")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.calls().len(),
        0,
        "never told, so no resolved notice"
    );
    let (_, timeline) = app.get(&format!("/aiops/incidents/{id}/timeline")).await;
    let story = kinds(&timeline);
    assert!(story.contains(&"silenced".to_owned()), "{story:?}");
    assert!(!story.contains(&"notified".to_owned()), "{story:?}");

    // Silences are listed, survive a restart, and end when deleted.
    let app = app.restart().await;
    let (_, listed) = app.get("/aiops/silences").await;
    assert_eq!(listed["silences"][0]["id"], silence_id.as_str(), "{listed}");
    assert_eq!(listed["silences"][0]["state"], "active", "{listed}");
    let path = format!("/aiops/silences/{silence_id}");
    let (status, expired) = send(&app, Method::DELETE, &path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{expired}");
    assert_eq!(expired["state"], "expired", "{expired}");
    let (_, listed) = app.get("/aiops/silences").await;
    assert_eq!(listed["silences"][0]["state"], "expired", "{listed}");
    let (status, missing) = send(&app, Method::DELETE, "/aiops/silences/nope", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    app.stop().await;
    receiver.stop().await;
}

#[tokio::test]
async fn an_incident_told_before_a_silence_still_gets_its_resolved_notice() {
    // Arrange: an incident the webhook heard of.
    let receiver = WebhookReceiver::start();
    let app = TestApp::spawn_with(calling(&receiver)).await;
    let id = inventory_incident(&app).await;
    eventually("the opening is told", || {
        let told = receiver.count(&id, "firing");
        async move { told == 1 }
    })
    .await;

    // Act: silence it, then resolve it.
    let (status, body) = send(
        &app,
        Method::POST,
        "/aiops/silences",
        json!({
            "matchers": [{"name": "service", "value": "shop"}],
            "ends_at": in_an_hour(),
            "created_by": "alice",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post(&format!("/aiops/incidents/{id}/resolve")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Assert
    eventually("the resolution is told despite the silence", || {
        let told = receiver.count(&id, "resolved");
        async move { told == 1 }
    })
    .await;
    app.stop().await;
    receiver.stop().await;
}

#[tokio::test]
async fn bad_silences_and_acknowledgements_get_400_saying_what_is_accepted() {
    let app = TestApp::spawn().await;
    let past = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let cases = [
        (
            json!({"matchers": [], "ends_at": in_an_hour(), "created_by": "a"}),
            "matchers",
        ),
        (
            json!({"matchers": [{"name": "team", "value": "x"}], "ends_at": in_an_hour(), "created_by": "a"}),
            "service, endpoint, kind, severity",
        ),
        (
            json!({"matchers": [{"name": "kind", "value": "(", "is_regex": true}], "ends_at": in_an_hour(), "created_by": "a"}),
            "regular expression",
        ),
        (
            json!({"matchers": [{"name": "kind", "value": "x"}], "ends_at": past, "created_by": "a"}),
            "after",
        ),
        (
            json!({"matchers": [{"name": "kind", "value": "x"}], "ends_at": "tomorrow", "created_by": "a"}),
            "ISO 8601",
        ),
        (
            json!({"matchers": [{"name": "kind", "value": "x"}], "created_by": "a"}),
            "ends_at",
        ),
        (
            json!({"matchers": [{"name": "kind", "value": "x"}], "ends_at": in_an_hour(), "created_by": " "}),
            "created_by",
        ),
    ];
    for (body, says) in cases {
        let (status, answer) = send(&app, Method::POST, "/aiops/silences", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{body}: {error}");
    }
    let (_, listed) = app.get("/aiops/silences").await;
    assert_eq!(listed["count"], 0, "nothing half-made: {listed}");

    let path = "/aiops/incidents/INC-1-999/acknowledge";
    let (status, answer) = send(&app, Method::POST, path, json!({"by": "alice"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = send(&app, Method::POST, path, json!({"who": "alice"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn the_api_token_guards_acknowledgements_and_silences_and_no_secret_is_echoed() {
    // Arrange
    let app = TestApp::spawn_with(|config| {
        config.http.api_token = Some(TOKEN.to_owned());
        config.notify.webhook_url = vec!["http://127.0.0.1:9/hook".into()];
        config.notify.webhook_secret = Some("hmac-key-never-shown".into());
        config.notify.webhook_token = Some("receiver-token-never-shown".into());
    })
    .await;
    let id = inventory_incident(&app).await;
    let silence = json!({
        "matchers": [{"name": "severity", "value": "critical"}],
        "ends_at": in_an_hour(),
        "created_by": "alice",
    });
    let anonymous = |method: Method, path: &str, body: &Value| {
        app.client
            .request(method, format!("{}{path}", app.address))
            .json(body)
            .send()
    };

    // Act + Assert: without the token, nothing changes.
    let ack = format!("/aiops/incidents/{id}/acknowledge");
    for (method, path, body) in [
        (Method::POST, ack.as_str(), json!({"by": "mallory"})),
        (Method::POST, "/aiops/silences", silence.clone()),
        (Method::DELETE, "/aiops/silences/any", json!({})),
    ] {
        let (status, answer) =
            aiops_e2e::json_of(anonymous(method.clone(), path, &body).await.expect("sent")).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {answer}"
        );
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("API token"))
        );
    }
    let (_, incident) = app.get(&format!("/aiops/incidents/{id}")).await;
    assert_eq!(incident["acknowledged"], Value::Null, "{incident}");
    let (status, listed) = aiops_e2e::json_of(
        anonymous(Method::GET, "/aiops/silences", &json!({}))
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(
        (status, listed["count"].clone()),
        (StatusCode::OK, json!(0))
    );

    // With it, they do.
    let (status, body) = send(&app, Method::POST, &ack, json!({"by": "alice"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(&app, Method::POST, "/aiops/silences", silence).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The receivers' secrets show in no answer.
    for path in [
        "/openapi.json".to_owned(),
        "/metrics".to_owned(),
        "/aiops/metrics".to_owned(),
        "/aiops/silences".to_owned(),
        format!("/aiops/incidents/{id}"),
        format!("/aiops/incidents/{id}/timeline"),
    ] {
        let text = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .unwrap_or_default();
        assert!(!text.contains("never-shown"), "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_fault_back_within_the_reopen_window_reopens_its_incident_and_tells_again() {
    // Arrange: an incident told and resolved, on a server that reopens within 5 minutes.
    let receiver = WebhookReceiver::start();
    let app = TestApp::spawn_with({
        let url = receiver.url.clone();
        move |config: &mut Settings| {
            config.notify.webhook_url = vec![url];
            config.detection.reopen_window = Duration::from_secs(300);
        }
    })
    .await;
    app.learn_baselines().await;
    app.simulate_error("/payment", 1.0).await;
    app.traffic(Method::POST, "/checkout", 20, 5).await;
    app.analyze().await;
    let id = app.active_incidents().await[0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let (status, body) = app.post(&format!("/aiops/incidents/{id}/resolve")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.settle().await;

    // Act: the fault shows in new requests.
    app.traffic(Method::POST, "/checkout", 20, 5).await;
    let report = app.analyze().await;

    // Assert: the same incident, active again, with the reopening in its timeline and told.
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "{report:#}");
    assert_eq!(incidents[0]["id"], id.as_str(), "{report:#}");
    assert_eq!(report["changes"][0]["change"], "reopened", "{report:#}");
    eventually("the reopening is told", || {
        let told = receiver.count(&id, "firing");
        async move { told == 2 }
    })
    .await;
    let (_, timeline) = app.get(&format!("/aiops/incidents/{id}/timeline")).await;
    let story = kinds(&timeline);
    let at = |kind: &str| story.iter().position(|k| k == kind).expect(kind);
    assert!(at("resolved") < at("reopened"), "{story:?}");
    eprintln!(
        "reopen: incident {id}: {} firing, {} resolved",
        receiver.count(&id, "firing"),
        receiver.count(&id, "resolved")
    );
    app.stop().await;
    receiver.stop().await;
}
