//! Headless Chromium for the console's end-to-end tests: load a page, let its scripts run, and
//! return the DOM (`--dump-dom`), a screenshot (`--screenshot`), and every URL the browser
//! asked for (`--log-net-log`). Each run gets a fresh profile, and background services that
//! would call the internet are switched off, so the requests logged are the page's own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

/// Where Debian installs Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser, when installed. Without it, a test skips, unless `AIOPS_REQUIRE_CHROMIUM=1`
/// (CI installs it), when it fails.
pub fn chromium() -> Option<Browser> {
    let path = std::env::var_os("AIOPS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM));
    if path.exists() {
        return Some(Browser { path });
    }
    assert!(
        std::env::var("AIOPS_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
        "{} is missing but AIOPS_REQUIRE_CHROMIUM=1 (Debian package `chromium`)",
        path.display()
    );
    eprintln!("{} not found; skipping the browser test", path.display());
    None
}

/// A headless Chromium.
#[derive(Debug)]
pub struct Browser {
    path: PathBuf,
}

/// What one page load showed.
#[derive(Debug)]
pub struct Visit {
    /// The DOM after the page's scripts ran.
    pub dom: String,
    /// Every URL the page requested while loading, from the net log.
    pub requested: Vec<String>,
}

impl Browser {
    fn command(&self, profile: &Path) -> Command {
        let mut command = Command::new(&self.path);
        command.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--disable-domain-reliability",
            "--metrics-recording-only",
            // Services that ask Google about a page on the page's behalf (form field
            // predictions, translation): the browser's requests, not the page's.
            "--disable-features=AutofillServerCommunication,Translate,OptimizationHints,MediaRouter",
            "--hide-scrollbars",
            // Scripts get this long (virtual time) to run after the load before the dump.
            "--virtual-time-budget=3000",
        ]);
        command.arg(format!("--user-data-dir={}", profile.display()));
        command
    }

    /// The command for a window of `width` x `height` CSS pixels.
    fn window(&self, profile: &Path, (width, height): (u32, u32)) -> Command {
        let mut command = self.command(profile);
        command.arg(format!("--window-size={width},{height}"));
        command
    }

    /// Loads `url` (on `site`, e.g. `http://127.0.0.1`) and returns its DOM and every URL the
    /// page requested.
    pub fn visit(&self, url: &str, site: &str) -> Visit {
        let profile = TempDir::new().expect("profile directory");
        let log = profile.path().join("net-log.json");
        let output = self
            .window(&profile.path().join("profile"), (1280, 800))
            .arg(format!("--log-net-log={}", log.display()))
            .arg("--dump-dom")
            .arg(url)
            .output()
            .expect("chromium runs");
        assert!(
            output.status.success(),
            "chromium failed on {url}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Chromium finishes the log as it exits; give a slow disk a moment.
        let mut text = String::new();
        for _ in 0..50 {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.trim_end().ends_with('}') {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Visit {
            dom: String::from_utf8_lossy(&output.stdout).into_owned(),
            requested: page_requests(&text, site),
        }
    }

    /// Saves a screenshot of `url` in a window of `size` (width, height) as PNG at `path`.
    pub fn screenshot(&self, url: &str, size: (u32, u32), path: &Path) {
        let profile = TempDir::new().expect("profile directory");
        let output = self
            .window(profile.path(), size)
            .arg(format!("--screenshot={}", path.display()))
            .arg(url)
            .output()
            .expect("chromium runs");
        assert!(
            output.status.success() && path.exists(),
            "no screenshot of {url}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The URLs a page requested, from a Chromium net log: the requests started on behalf of a
/// page whose top frame is on `site` (`http://127.0.0.1`). Chromium keys every request by the
/// site of the page that made it (its network isolation key); the browser's own background
/// requests carry another key (`null null`), so they are told apart from the page's.
pub fn page_requests(log: &str, site: &str) -> Vec<String> {
    let Ok(log) = serde_json::from_str::<serde_json::Value>(log) else {
        return Vec::new();
    };
    let mut urls: Vec<String> = Vec::new();
    for event in log["events"].as_array().into_iter().flatten() {
        let params = &event["params"];
        let (Some(url), Some(key)) = (
            params["url"].as_str(),
            params["network_isolation_key"].as_str(),
        ) else {
            continue;
        };
        if key.split(' ').next() == Some(site) && !urls.iter().any(|known| known == url) {
            urls.push(url.to_owned());
        }
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_requests_are_those_keyed_by_the_page_site() {
        let log = r#"{"events": [
            {"params": {"url": "http://clients2.google.com/time", "network_isolation_key": "null null"}},
            {"params": {"url": "http://127.0.0.1:5000/", "network_isolation_key": "http://127.0.0.1 http://127.0.0.1"}},
            {"params": {"url": "http://cdn.example/x.js", "network_isolation_key": "http://127.0.0.1 http://127.0.0.1"}},
            {"params": {"url": "http://127.0.0.1:5000/"}}
        ]}"#;
        assert_eq!(
            page_requests(log, "http://127.0.0.1"),
            vec!["http://127.0.0.1:5000/", "http://cdn.example/x.js"]
        );
    }
}
