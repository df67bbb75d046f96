//! SIGHUP to a running `aiops`: the configuration file is read again, the log's format and
//! filter change at once, options read only at start are named as needing a restart, a broken
//! file changes nothing, and the server never exits on it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// The running server and its log, line by line.
struct Server {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(config: &Path, db: &Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aiops"));
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("AIOPS_")) {
            command.env_remove(name);
        }
        let mut child = command
            .env_remove("RUST_LOG")
            .args([
                "--config",
                path(config),
                "--bind",
                "127.0.0.1:0",
                "--no-demo",
            ])
            .args(["--db", path(db)])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("aiops starts");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first log line from now on that contains `text`.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no log line with {text:?}; the log: {:#?}", self.seen);
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `GET path` on `port`; the status line.
fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("sends");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("reads");
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn sighup_reloads_the_log_settings_names_the_rest_and_never_stops_the_server() {
    // Arrange: a server logging text at info.
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("aiops.json");
    std::fs::write(&config, r#"{"log": {"log_format": "text"}}"#).expect("written");
    let mut server = Server::start(&config, &dir.path().join("aiops.db"));
    let listening = server.wait_for("Listening.");
    let port: u16 = listening
        .split("address=127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|port| port.parse().ok())
        .expect("the bound port");
    assert!(listening.starts_with('['), "text: {listening}");

    // Act: JSON logs, and a detection knob that applies only at start.
    std::fs::write(
        &config,
        r#"{"log": {"log_format": "json"}, "detection": {"latency_multiplier": 2.5}}"#,
    )
    .expect("written");
    server.signal("HUP");

    // Assert: the reload is logged as JSON, naming what it applied and what waits.
    let reloaded = server.wait_for("Reloaded the configuration.");
    let line: serde_json::Value = serde_json::from_str(&reloaded).expect("a JSON log line");
    assert_eq!(line["applied"], "log_format", "{line}");
    let restart = server.wait_for("read only at start");
    let line: serde_json::Value = serde_json::from_str(&restart).expect("a JSON log line");
    assert_eq!(line["options"], "latency_multiplier", "{line}");

    // A file that does not validate changes nothing and stops nothing.
    std::fs::write(&config, r#"{"log": {"log_level": "very loud"}}"#).expect("written");
    server.signal("HUP");
    let refused = server.wait_for("Could not reload the configuration");
    let line: serde_json::Value = serde_json::from_str(&refused).expect("still JSON");
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains("log_level")),
        "{line}"
    );
    assert!(get(port, "/healthz").contains("200"), "still serving");

    // SIGTERM still stops it gracefully.
    server.signal("TERM");
    server.wait_for("Stopped.");
    let status = server.child.wait().expect("exits");
    assert!(status.success(), "{status}");
}
