//! End-to-end test helpers: [`TestApp`] starts the real server on port 0 with its own
//! temporary database, and offers one method per route.
//!
//! Analysis cycles are driven by `POST /aiops/analyze` ([`TestApp::analyze`]): the background
//! interval is set far beyond any test's length, so what a test sees never depends on timing.

pub mod browser;
pub mod otlp_system;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aiops_server::{Application, Settings, StopHandle};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::{JoinHandle, JoinSet};

/// The request body limit the test servers use, small enough to exceed cheaply.
pub const TEST_MAX_BODY_BYTES: usize = 4096;

/// A configuration for tests: port 0, a database in `dir`, cycles only on demand (no early
/// detection either), no warm-up,
/// reproducible chaos.
pub fn test_config(dir: &TempDir) -> Settings {
    let mut config = Settings::default();
    config.http.bind = "127.0.0.1:0".to_owned();
    config.http.workers = 2;
    config.http.max_body_bytes = TEST_MAX_BODY_BYTES;
    config.storage.db = dir.path().join("aiops.db");
    config.shop.warmup_requests = 0;
    config.shop.chaos_seed = Some(7);
    config.shop.checkout_timeout = Duration::from_secs(2);
    // One window holds the whole test; cycles run only when a test asks for one.
    config.detection.analysis_window = Duration::from_secs(600);
    config.detection.analysis_interval = Duration::from_secs(600);
    config.detection.early_detection = false;
    config
}

/// A running server and a client for it.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The bound port.
    pub port: u16,
    /// A plain client (no token added).
    pub client: reqwest::Client,
    /// The database file.
    pub db_path: PathBuf,
    config: Settings,
    token: Option<String>,
    stop: StopHandle,
    server: JoinHandle<anyhow::Result<()>>,
    dir: Arc<TempDir>,
}

impl TestApp {
    /// Starts a server with [`test_config`].
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server with [`test_config`] changed by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = Arc::new(TempDir::new().expect("temporary directory"));
        let mut config = test_config(&dir);
        adjust(&mut config);
        Self::start(config, dir).await
    }

    async fn start(config: Settings, dir: Arc<TempDir>) -> Self {
        let application = Application::build(config.clone())
            .await
            .expect("the server builds");
        let port = application.port();
        let stop = application.stop_handle();
        let server = tokio::spawn(application.run_until_stopped());
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            db_path: config.storage.db.clone(),
            token: config.http.api_token.clone(),
            config,
            stop,
            server,
            dir,
        }
    }

    /// Stops the server gracefully and waits until it has persisted its state.
    pub async fn stop(self) -> (Settings, Arc<TempDir>) {
        self.stop.stop().await;
        self.server
            .await
            .expect("server task")
            .expect("server stopped cleanly");
        (self.config, self.dir)
    }

    /// Stops the server and starts a new one on the same database.
    pub async fn restart(self) -> Self {
        let (mut config, dir) = self.stop().await;
        config.http.bind = "127.0.0.1:0".to_owned();
        Self::start(config, dir).await
    }

    /// A request to `path` with the API token, if the server has one.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.address));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends `method path` and returns the status and the JSON body (`Null` if not JSON).
    pub async fn call(&self, method: Method, path: &str) -> (StatusCode, Value) {
        json_of(
            self.request(method, path)
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path).await
    }

    /// `GET path`, with its body as text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .request(Method::GET, path)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        (status, response.text().await.expect("response body"))
    }

    /// `POST path` without a body.
    pub async fn post(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::POST, path).await
    }

    /// `POST /checkout`.
    pub async fn checkout(&self) -> (StatusCode, Value) {
        self.post("/checkout").await
    }

    /// Sends `count` requests `method path`, `concurrency` at a time; returns their statuses.
    pub async fn traffic(
        &self,
        method: Method,
        path: &str,
        count: usize,
        concurrency: usize,
    ) -> Vec<StatusCode> {
        let mut statuses = Vec::with_capacity(count);
        let mut tasks = JoinSet::new();
        for _ in 0..count {
            if tasks.len() >= concurrency.max(1)
                && let Some(done) = tasks.join_next().await
            {
                statuses.push(done.expect("request task"));
            }
            let request = self.request(method.clone(), path);
            tasks.spawn(async move { request.send().await.expect("request sent").status() });
        }
        while let Some(done) = tasks.join_next().await {
            statuses.push(done.expect("request task"));
        }
        statuses
    }

    /// Healthy traffic on every shop endpoint, then one cycle: baselines are ready after it.
    pub async fn learn_baselines(&self) {
        for status in self.traffic(Method::POST, "/checkout", 20, 4).await {
            assert_eq!(status, StatusCode::OK, "healthy checkout");
        }
        self.traffic(Method::GET, "/inventory", 20, 4).await;
        self.traffic(Method::GET, "/health", 20, 4).await;
        let report = self.analyze().await;
        assert_eq!(
            report["anomalies"].as_array().map(Vec::len),
            Some(0),
            "healthy traffic is not anomalous: {report:#}"
        );
    }

    /// Waits until the server has recorded `count` spans in all (requests still being served
    /// are recorded when they finish). Panics after 30 s.
    pub async fn wait_for_spans(&self, count: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ingested = self.metrics().await["spans"]["ingested"]
                .as_u64()
                .unwrap_or(0);
            if ingested >= count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {ingested} of {count} spans recorded"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `POST /simulate/delay?endpoint=&duration=`, which must succeed.
    pub async fn simulate_delay(&self, endpoint: &str, duration_ms: u64) {
        let (status, body) = self
            .post(&format!(
                "/simulate/delay?endpoint={endpoint}&duration={duration_ms}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// `POST /simulate/error?endpoint=&rate=`, which must succeed.
    pub async fn simulate_error(&self, endpoint: &str, rate: f64) {
        let (status, body) = self
            .post(&format!("/simulate/error?endpoint={endpoint}&rate={rate}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// `GET /simulate/status`'s `active_simulations`.
    pub async fn active_simulations(&self) -> Value {
        let (status, body) = self.get("/simulate/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["active_simulations"].clone()
    }

    /// Waits for the current one-second bucket of live statistics to end.
    ///
    /// The engine learns only from buckets that have ended, and evidence in the bucket of a
    /// resolution is old evidence. Tests run faster than a second, so they wait for the next
    /// bucket before a cycle and after a resolution, never for a result.
    pub async fn settle(&self) {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let rest = Duration::from_nanos(u64::from(1_000_000_000 - since_epoch.subsec_nanos()));
        tokio::time::sleep(rest + Duration::from_millis(20)).await;
    }

    /// `POST /aiops/analyze`: one analysis cycle now, once the current bucket has ended.
    pub async fn analyze(&self) -> Value {
        self.settle().await;
        let (status, body) = self.post("/aiops/analyze").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `GET /aiops/incidents`'s `active_incidents`.
    pub async fn active_incidents(&self) -> Vec<Value> {
        let (status, body) = self.get("/aiops/incidents").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["active_incidents"]
            .as_array()
            .cloned()
            .expect("active_incidents is an array")
    }

    /// `GET /aiops/metrics`.
    pub async fn metrics(&self) -> Value {
        let (status, body) = self.get("/aiops/metrics").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// The status and JSON body of `response` (`Null` when the body is not JSON).
pub async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("response body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The affected endpoints of an incident, as strings.
pub fn affected(incident: &Value) -> Vec<String> {
    incident["affected_endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|value| value.as_str().map(str::to_owned))
        .collect()
}
