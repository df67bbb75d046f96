//! What the notification tests run against: Debian's real Alertmanager, started on a free
//! loopback port with a configuration and storage of its own, and a webhook receiver that
//! records every call.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;
use tempfile::TempDir;

/// Debian's package `prometheus-alertmanager` installs it here.
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// Whether the real Alertmanager can run here; without it the tests that need it are skipped,
/// unless `AIOPS_REQUIRE_ALERTMANAGER=1` (CI) makes its absence a failure.
pub fn alertmanager_available() -> bool {
    if Path::new(ALERTMANAGER).exists() {
        return true;
    }
    assert!(
        std::env::var("AIOPS_REQUIRE_ALERTMANAGER").as_deref() != Ok("1"),
        "{ALERTMANAGER} is missing but AIOPS_REQUIRE_ALERTMANAGER=1 (Debian package \
         `prometheus-alertmanager`)"
    );
    eprintln!("{ALERTMANAGER} not found; skipping");
    false
}

/// One call a receiver got.
#[derive(Clone, Debug)]
pub struct Call {
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The signature header.
    pub signature: Option<String>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The body as JSON.
    pub json: Value,
}

/// A webhook receiver on a free loopback port that records every call and answers 200.
#[derive(Debug)]
pub struct WebhookReceiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    server: actix_web::dev::ServerHandle,
}

impl WebhookReceiver {
    /// Starts the receiver.
    pub fn start() -> Self {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let recorded = calls.clone();
        let server = HttpServer::new(move || {
            let recorded = recorded.clone();
            App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let recorded = recorded.clone();
                async move {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .map(str::to_owned)
                    };
                    let call = Call {
                        authorization: header("authorization"),
                        signature: header("x-aiops-signature-256"),
                        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        body: body.to_vec(),
                    };
                    recorded.lock().expect("not poisoned").push(call);
                    HttpResponse::Ok().finish()
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("binds");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            calls,
            server: handle,
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("not poisoned").clone()
    }

    /// The alerts of every payload so far that name `incident_id`, with the payload's status.
    pub fn alerts_of(&self, incident_id: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .flat_map(|call| call.json["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|alert| alert["labels"]["incident_id"] == incident_id)
            .collect()
    }

    /// Of those, how many were `status` (`firing` or `resolved`).
    pub fn count(&self, incident_id: &str, status: &str) -> usize {
        self.alerts_of(incident_id)
            .iter()
            .filter(|alert| alert["status"] == status)
            .count()
    }

    /// Stops the receiver.
    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

/// A real Alertmanager on a free loopback port, routing every alert to `receiver` grouped by
/// incident; killed when dropped.
#[derive(Debug)]
pub struct Alertmanager {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    _dir: TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager and waits until it is ready.
    pub async fn start(receiver: &str) -> Self {
        let dir = TempDir::new().expect("temporary directory");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: test\n  group_by: ['incident_id']\n  group_wait: 1s\n  \
                 group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: test\n    \
                 webhook_configs:\n      - url: {receiver}\n        send_resolved: true\n"
            ),
        )
        .expect("config written");
        let port = free_port();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alertmanager starts");
        let alertmanager = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let ready = format!("{}/-/ready", alertmanager.url);
        eventually("Alertmanager is ready", || {
            let request = client.get(&ready).send();
            async move { request.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        alertmanager
    }

    /// `GET /api/v2/alerts`.
    pub async fn alerts(&self) -> Vec<Value> {
        let response = reqwest::get(format!("{}/api/v2/alerts", self.url))
            .await
            .expect("alertmanager answers");
        response
            .json::<Value>()
            .await
            .expect("JSON")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The alert of `incident_id` in `GET /api/v2/alerts`, if listed.
    pub async fn alert_of(&self, incident_id: &str) -> Option<Value> {
        self.alerts()
            .await
            .into_iter()
            .find(|alert| alert["labels"]["incident_id"] == incident_id)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free right now on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until `check` holds, polling; panics naming `what` after a minute (a deadline for a
/// hung test, not a measure of speed).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
