//! The demo's own server, for runs without `--url`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use reqwest::Url;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::startup::{Application, StopHandle};

/// Detection window of the demo's server: long enough to hold a whole scenario's traffic.
const WINDOW: Duration = Duration::from_secs(20);
/// Background analysis interval of the demo's server. Not shorter: each cycle learns from
/// the traffic that arrived since the previous one, and a slice holding only a few requests
/// of a fresh fault is too small to look anomalous on its own, so it would be learned as
/// normal.
const INTERVAL: Duration = Duration::from_secs(5);

/// A server started in-process on a free local port with a temporary database.
#[derive(Debug)]
pub(super) struct LocalServer {
    port: u16,
    stop: StopHandle,
    task: JoinHandle<Result<()>>,
    db: TemporaryDatabase,
}

impl LocalServer {
    pub(super) async fn start() -> Result<Self> {
        let db = TemporaryDatabase::new();
        let mut settings = Settings::default();
        settings.http.bind = "127.0.0.1:0".to_owned();
        settings.storage.db = db.path.clone();
        // The demo warms the shop up itself, so that the report shows it.
        settings.shop.warmup_requests = 0;
        settings.detection.analysis_window = WINDOW;
        settings.detection.analysis_interval = INTERVAL;
        let app = Application::build(settings)
            .await
            .context("starting the demo's own server")?;
        let port = app.port();
        let stop = app.stop_handle();
        let task = tokio::spawn(app.run_until_stopped());
        Ok(LocalServer {
            port,
            stop,
            task,
            db,
        })
    }

    pub(super) fn url(&self) -> Result<Url> {
        Url::parse(&format!("http://127.0.0.1:{}", self.port))
            .context("building the demo server's URL")
    }

    /// Stops serving, waits for the state to be saved, then deletes the database.
    pub(super) async fn stop(self) {
        self.stop.stop().await;
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("The demo's server stopped with an error: {error:#}"),
            Err(error) => eprintln!("The demo's server task failed: {error}"),
        }
        drop(self.db);
    }
}

/// A database file in the system's temporary directory, removed (with its WAL and shared
/// memory files) when dropped.
#[derive(Debug)]
struct TemporaryDatabase {
    path: PathBuf,
}

impl TemporaryDatabase {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let name = format!("aiops-demo-{}-{nanos}.db", std::process::id());
        TemporaryDatabase {
            path: std::env::temp_dir().join(name),
        }
    }
}

impl Drop for TemporaryDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}
