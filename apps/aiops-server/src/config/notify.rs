//! `notify`: where incidents are sent (Alertmanager, webhooks), with which labels, how often,
//! and the receivers' secrets.

use std::fmt;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use super::error::{Origins, SettingsError};
use super::human::{self, format_duration, parse_duration};

/// Labels every alert carries that a static label may not replace.
pub const RESERVED_LABELS: [&str; 6] = [
    "alertname",
    "incident_id",
    "service",
    "endpoint",
    "kind",
    "severity",
];

/// Receivers of incident notifications.
#[derive(Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Notifications")]
pub struct Notify {
    /// Alertmanager to push every active incident to (POST /api/v2/alerts), e.g.
    /// http://127.0.0.1:9093; repeat the flag (or separate with commas) to push to every peer
    /// of a cluster; http only [default: none].
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub alertmanager_url: Vec<String>,

    /// Static label added to every alert and webhook notification, as NAME=VALUE (e.g.
    /// environment=prod); repeatable or comma-separated [default: none].
    #[arg(long, value_name = "NAME=VALUE", value_delimiter = ',')]
    pub alert_label: Vec<String>,

    /// How often active incidents are re-sent to Alertmanager, 1s to 10m; each alert's endsAt
    /// is a lease of four intervals, so alerts of an engine that stopped expire instead of
    /// firing forever [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub resend_interval: Duration,

    /// Webhook that receives Alertmanager's webhook payload (version 4) when an incident opens,
    /// changes root cause or severity, is acknowledged and resolves; repeatable or
    /// comma-separated; http only [default: none].
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub webhook_url: Vec<String>,

    /// Shared secret of the webhooks: each body is signed with HMAC-SHA256 in the header
    /// "X-Aiops-Signature-256: sha256=HEX"; prefer the variable, a flag shows in the process
    /// list [default: none].
    #[arg(long, value_name = "SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// Bearer token the webhooks are called with ("Authorization: Bearer TOKEN")
    /// [default: none].
    #[arg(long, value_name = "TOKEN", hide_env_values = true)]
    pub webhook_token: Option<String>,

    /// The engine's URL as receivers should link to it (each alert's generatorURL is
    /// URL/aiops/incidents/ID); by default the address the server is bound to [default: none].
    #[arg(long, value_name = "URL")]
    pub external_url: Option<String>,
}

impl Default for Notify {
    fn default() -> Self {
        Self {
            alertmanager_url: Vec::new(),
            alert_label: Vec::new(),
            resend_interval: Duration::from_secs(30),
            webhook_url: Vec::new(),
            webhook_secret: None,
            webhook_token: None,
            external_url: None,
        }
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("Notify")
            .field("alertmanager_url", &self.alertmanager_url)
            .field("alert_label", &self.alert_label)
            .field("resend_interval", &self.resend_interval)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &redacted(&self.webhook_secret))
            .field("webhook_token", &redacted(&self.webhook_token))
            .field("external_url", &self.external_url)
            .finish()
    }
}

impl Notify {
    /// The static labels as (name, value) pairs; call after [`validate`](Self::validate).
    pub fn labels(&self) -> Vec<(String, String)> {
        self.alert_label
            .iter()
            .filter_map(|label| label.split_once('='))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect()
    }

    pub(super) fn validate(&self, origins: &Origins) -> Result<(), SettingsError> {
        for url in &self.alertmanager_url {
            check_url("alertmanager_url", url, origins)?;
        }
        for url in &self.webhook_url {
            check_url("webhook_url", url, origins)?;
        }
        if let Some(url) = &self.external_url {
            check_url("external_url", url, origins)?;
        }
        for label in &self.alert_label {
            let valid = label.split_once('=').is_some_and(|(name, _)| {
                let name = name.trim();
                is_label_name(name) && !RESERVED_LABELS.contains(&name)
            });
            if !valid {
                return Err(SettingsError::out_of_range(
                    "alert_label",
                    label,
                    origins,
                    format!(
                        "NAME=VALUE with NAME of letters, digits and _ (not starting with a \
                         digit), other than {}",
                        RESERVED_LABELS.join(", ")
                    ),
                ));
            }
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&self.resend_interval) {
            return Err(SettingsError::out_of_range(
                "resend_interval",
                format_duration(self.resend_interval),
                origins,
                "1s to 10m",
            ));
        }
        for (option, secret) in [
            ("webhook_secret", &self.webhook_secret),
            ("webhook_token", &self.webhook_token),
        ] {
            if secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(SettingsError::out_of_range(
                    option,
                    "\"\"",
                    origins,
                    "a non-empty value",
                ));
            }
        }
        Ok(())
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_url(option: &str, url: &str, origins: &Origins) -> Result<(), SettingsError> {
    let parsed = reqwest::Url::parse(url.trim()).ok();
    let fine = parsed
        .as_ref()
        .is_some_and(|url| url.scheme() == "http" && url.host_str().is_some());
    if fine {
        return Ok(());
    }
    // Never echo credentials a URL may carry.
    let shown = parsed.map_or_else(|| url.to_owned(), |url| redact_url(&url));
    Err(SettingsError::out_of_range(
        option,
        shown,
        origins,
        "an http:// URL such as http://127.0.0.1:9093 (TLS is left to a proxy)",
    ))
}

/// `url` without the user name and password it may carry, for logs and messages.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if !shown.username().is_empty() || shown.password().is_some() {
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notify() -> Notify {
        Notify::default()
    }

    #[test]
    fn labels_must_be_names_other_than_the_reserved_ones() {
        let mut settings = notify();
        settings.alert_label = vec!["environment=prod".into(), " team = payments ".into()];
        assert!(settings.validate(&Origins::default()).is_ok());
        assert_eq!(
            settings.labels(),
            [
                ("environment".to_owned(), "prod".to_owned()),
                ("team".to_owned(), "payments".to_owned())
            ]
        );
        for bad in ["severity=low", "1x=y", "novalue", "=v"] {
            settings.alert_label = vec![bad.into()];
            let error = settings.validate(&Origins::default()).expect_err(bad);
            assert!(error.to_string().contains("alert_label"), "{error}");
        }
    }

    #[test]
    fn urls_must_be_http_and_are_shown_without_credentials() {
        let mut settings = notify();
        settings.alertmanager_url = vec!["http://am-1:9093".into(), "http://am-2:9093/".into()];
        assert!(settings.validate(&Origins::default()).is_ok());
        settings.webhook_url = vec!["ftp://user:hunter2@hooks/x".into()];
        let error = settings
            .validate(&Origins::default())
            .expect_err("not http");
        let message = error.to_string();
        assert!(message.contains("webhook_url"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn secrets_are_redacted_from_debug_output() {
        let mut settings = notify();
        settings.webhook_secret = Some("hunter2".into());
        settings.webhook_token = Some("t0ken".into());
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("t0ken"),
            "{shown}"
        );
    }
}
