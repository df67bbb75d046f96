//! Incidents in a real Alertmanager (Debian's 0.25): each of the demo's three scenarios shows
//! up in `GET /api/v2/alerts` with its labels, reaches Alertmanager's webhook receiver, and
//! resolves there when the engine resolves it; an engine killed while firing leaves its alert
//! firing until the lease it gave runs out.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use aiops_e2e::{TestApp, test_config};
use aiops_server::{Application, Settings};
use chrono::{DateTime, FixedOffset, Utc};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

use super::support::{Alertmanager, WebhookReceiver, alertmanager_available, eventually};

/// The resend interval of these tests: alerts lease four of them.
const RESEND: Duration = Duration::from_secs(1);

/// Settings that push to `alertmanager` every [`RESEND`], labelled `environment=e2e`.
fn pushing_to(alertmanager: &Alertmanager) -> impl FnOnce(&mut Settings) + use<> {
    let url = alertmanager.url.clone();
    move |config: &mut Settings| {
        config.notify.alertmanager_url = vec![url];
        config.notify.alert_label = vec!["environment=e2e".into()];
        config.notify.resend_interval = RESEND;
    }
}

/// One of the demo's scenarios: the fault, the traffic, the root cause expected.
struct Scenario {
    title: &'static str,
    inject: &'static str,
    traffic: (Method, &'static str),
    endpoint: &'static str,
    kind: &'static str,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        title: "latency spike in /payment",
        inject: "/simulate/delay?endpoint=/payment&duration=1000",
        traffic: (Method::POST, "/checkout"),
        endpoint: "/payment",
        kind: "latency_spike",
    },
    Scenario {
        title: "error storm in /inventory",
        inject: "/simulate/error?endpoint=/inventory&rate=0.8",
        traffic: (Method::GET, "/inventory"),
        endpoint: "/inventory",
        kind: "error_storm",
    },
    Scenario {
        title: "/payment errors seen through /checkout",
        inject: "/simulate/error?endpoint=/payment&rate=1.0",
        traffic: (Method::POST, "/checkout"),
        endpoint: "/payment",
        kind: "error_storm",
    },
];

/// Runs `scenario` on `app` (baselines learned) and returns its one active incident.
async fn open_incident(app: &TestApp, scenario: &Scenario) -> Value {
    let (status, body) = app.post(scenario.inject).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (method, path) = &scenario.traffic;
    app.traffic(method.clone(), path, 30, 10).await;
    let report = app.analyze().await;
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "{}: {report:#}", scenario.title);
    incidents[0].clone()
}

fn parse_time(value: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time")).expect("RFC 3339")
}

#[tokio::test]
async fn each_scenario_fires_in_alertmanager_reaches_its_receiver_and_resolves_there() {
    if !alertmanager_available() {
        return;
    }
    let receiver = WebhookReceiver::start();
    let alertmanager = Alertmanager::start(&receiver.url).await;

    for scenario in &SCENARIOS {
        // Arrange
        let app = TestApp::spawn_with(pushing_to(&alertmanager)).await;
        app.learn_baselines().await;

        // Act: the fault opens an incident.
        let incident = open_incident(&app, scenario).await;
        let id = incident["id"].as_str().expect("an id").to_owned();

        // Assert: Alertmanager lists it with its labels, and tells its receiver.
        eventually(&format!("{id} in Alertmanager"), || {
            let alertmanager = &alertmanager;
            let id = id.clone();
            async move { alertmanager.alert_of(&id).await.is_some() }
        })
        .await;
        let alert = alertmanager.alert_of(&id).await.expect("listed");
        let labels = &alert["labels"];
        assert_eq!(labels["alertname"], "AiopsIncident", "{alert:#}");
        assert_eq!(labels["service"], "shop", "{alert:#}");
        assert_eq!(labels["endpoint"], scenario.endpoint, "{alert:#}");
        assert_eq!(labels["kind"], scenario.kind, "{alert:#}");
        assert_eq!(labels["severity"], incident["severity"], "{alert:#}");
        assert_eq!(labels["environment"], "e2e", "{alert:#}");
        assert_eq!(alert["status"]["state"], "active", "{alert:#}");
        assert_eq!(
            alert["annotations"]["description"], incident["root_cause"]["description"],
            "{alert:#}"
        );
        assert!(
            alert["generatorURL"]
                .as_str()
                .is_some_and(|url| url.ends_with(&format!("/aiops/incidents/{id}"))),
            "{alert:#}"
        );
        assert!(
            parse_time(&alert["endsAt"]) > Utc::now(),
            "a lease: {alert:#}"
        );
        eventually(&format!("{id} firing at the receiver"), || {
            let firing = receiver.count(&id, "firing");
            async move { firing > 0 }
        })
        .await;

        // Act: the engine resolves it.
        let (status, body) = app.post("/simulate/clear").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = app.post(&format!("/aiops/incidents/{id}/resolve")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let resolved_at = parse_time(&body["incident"]["resolved_at"]);

        // Assert: it resolves in Alertmanager and at the receiver, at the engine's time.
        eventually(&format!("{id} resolved at the receiver"), || {
            let resolved = receiver.count(&id, "resolved");
            async move { resolved > 0 }
        })
        .await;
        let alert = alertmanager.alert_of(&id).await;
        assert!(
            alert
                .as_ref()
                .is_none_or(|alert| parse_time(&alert["endsAt"]) <= Utc::now()),
            "{alert:#?}"
        );
        let notice = receiver
            .alerts_of(&id)
            .into_iter()
            .find(|alert| alert["status"] == "resolved")
            .expect("a resolved notice");
        // The engine states resolutions to the millisecond, the incident view to the second.
        let ended = parse_time(&notice["endsAt"]);
        assert!(
            (ended - resolved_at).num_milliseconds().abs() < 1000,
            "{notice:#}"
        );
        let pushes = pushes_accepted(&app).await;
        assert!(
            pushes >= 2,
            "at least the opening and the resolution: {pushes}"
        );
        eprintln!(
            "scenario {:?}: incident {id}: {pushes} pushes accepted by Alertmanager (changes and \
             re-sends), its receiver got {} firing and {} resolved",
            scenario.title,
            receiver.count(&id, "firing"),
            receiver.count(&id, "resolved"),
        );
        app.stop().await;
    }
    receiver.stop().await;
}

/// `aiops_notifications_sent_total` of the first Alertmanager, from `GET /metrics`.
async fn pushes_accepted(app: &TestApp) -> u64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| {
            line.strip_prefix(
                "aiops_notifications_sent_total{receiver=\"alertmanager-1\",kind=\"alertmanager\"} ",
            )
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Alertmanager counter in\n{text}"))
}

/// The variable that makes [`engine_process`] serve, holding its settings as JSON.
const ENGINE_SETTINGS: &str = "AIOPS_E2E_ENGINE_SETTINGS";

/// Not a test of its own: when started by [`a_killed_engine_leaves_its_alerts_firing_until_their_lease_ends`]
/// with [`ENGINE_SETTINGS`], this process is the engine it kills.
#[test]
fn engine_process() {
    let Ok(settings) = std::env::var(ENGINE_SETTINGS) else {
        return;
    };
    let settings: Settings = serde_json::from_str(&settings).expect("settings");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let application = Application::build(settings).await.expect("builds");
        println!("port={}", application.port());
        application.run_until_stopped().await.expect("serves");
    });
}

#[tokio::test]
async fn a_killed_engine_leaves_its_alerts_firing_until_their_lease_ends() {
    if !alertmanager_available() {
        return;
    }
    // Arrange: an engine in a process of its own, pushing to Alertmanager.
    let receiver = WebhookReceiver::start();
    let alertmanager = Alertmanager::start(&receiver.url).await;
    let dir = TempDir::new().expect("temporary directory");
    let mut settings = test_config(&dir);
    pushing_to(&alertmanager)(&mut settings);
    let mut engine = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "notify::alertmanager::engine_process",
            "--exact",
            "--nocapture",
        ])
        .env(
            ENGINE_SETTINGS,
            serde_json::to_string(&settings).expect("JSON"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the engine starts");
    let stdout = engine.stdout.take().expect("stdout");
    let port = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("port=").map(str::to_owned))
        .expect("the engine names its port");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let post = |path: &str| client.post(format!("{base}{path}")).send();
    for path in ["/checkout", "/inventory", "/health"] {
        for _ in 0..20 {
            let method = if path == "/checkout" {
                Method::POST
            } else {
                Method::GET
            };
            let response = client
                .request(method, format!("{base}{path}"))
                .send()
                .await
                .expect("served");
            assert!(response.status().is_success());
        }
    }
    settle().await;
    assert!(
        post("/aiops/analyze")
            .await
            .expect("analyzed")
            .status()
            .is_success()
    );
    assert!(
        post("/simulate/error?endpoint=/payment&rate=1.0")
            .await
            .expect("set")
            .status()
            .is_success()
    );
    for _ in 0..20 {
        post("/checkout").await.expect("served");
    }
    settle().await;
    let report: Value = post("/aiops/analyze")
        .await
        .expect("analyzed")
        .json()
        .await
        .expect("JSON");
    let id = report["active_incidents"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an incident: {report:#}"))
        .to_owned();
    eventually(&format!("{id} in Alertmanager"), || {
        let alertmanager = &alertmanager;
        let id = id.clone();
        async move { alertmanager.alert_of(&id).await.is_some() }
    })
    .await;

    // Act: kill -9 while the incident fires.
    engine.kill().expect("killed");
    engine.wait().expect("reaped");
    let killed_at = Utc::now();

    // Assert: still firing in Alertmanager, until the end of the last lease the engine gave.
    let alert = alertmanager.alert_of(&id).await.expect("still listed");
    assert_eq!(alert["status"]["state"], "active", "{alert:#}");
    let lease_end = parse_time(&alert["endsAt"]);
    assert!(lease_end > killed_at, "{alert:#}");
    eventually(&format!("{id} expired at the receiver"), || {
        let resolved = receiver.count(&id, "resolved");
        async move { resolved > 0 }
    })
    .await;
    let told_at = Utc::now();
    assert!(told_at >= lease_end, "resolved before its lease ended");
    let notice = receiver
        .alerts_of(&id)
        .into_iter()
        .find(|alert| alert["status"] == "resolved")
        .expect("a resolved notice");
    assert_eq!(parse_time(&notice["endsAt"]), lease_end, "{notice:#}");
    eprintln!(
        "kill -9: lease ended {:.1}s after the kill",
        (lease_end.with_timezone(&Utc) - killed_at).num_milliseconds() as f64 / 1000.0
    );
    receiver.stop().await;
}

/// Waits for the current second of live statistics to end (see `TestApp::settle`).
async fn settle() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let rest = Duration::from_nanos(u64::from(1_000_000_000 - now.subsec_nanos()));
    tokio::time::sleep(rest + Duration::from_millis(20)).await;
}
