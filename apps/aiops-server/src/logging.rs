//! The server's log: plain text (`env_logger`'s format) or, with `--log-format json`, one JSON
//! object per line for log collectors.
//!
//! Log lines follow one convention: structured fields first (`key=value`, a value with spaces
//! or quotes written as a quoted, escaped string), then a capitalised sentence. The JSON format
//! keeps that split: each field becomes a member of the object, the sentence `message`, beside
//! `ts` (RFC 3339, UTC, milliseconds), `level` and `target`.

use std::io::Write;
use std::sync::{OnceLock, RwLock};

use aiops_engine::{Incident, IncidentChange};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `[2026-01-20T10:30:15Z INFO aiops_server::actor] incident=... Incident opened.`
    #[default]
    Text,
    /// `{"ts":"2026-01-20T10:30:15.250Z","level":"INFO","target":"aiops_server::actor","incident":"...","message":"Incident opened."}`
    Json,
}

impl LogFormat {
    /// The names `--log-format` accepts.
    pub const NAMES: [&'static str; 2] = ["text", "json"];

    /// The format a `--log-format` value names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// The process's logger: an `env_logger` logger that [`reconfigure`] replaces while the
/// server runs (SIGHUP), so that the format and the filter change without a restart.
struct Switchable {
    current: RwLock<env_logger::Logger>,
}

impl log::Log for Switchable {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.current
            .read()
            .is_ok_and(|logger| logger.enabled(metadata))
    }

    fn log(&self, record: &log::Record<'_>) {
        if let Ok(logger) = self.current.read() {
            logger.log(record);
        }
    }

    fn flush(&self) {
        if let Ok(logger) = self.current.read() {
            logger.flush();
        }
    }
}

static LOGGER: OnceLock<Switchable> = OnceLock::new();

/// Starts logging at `default_level` (`RUST_LOG` overrides it) in `format`.
pub fn init(format: LogFormat, default_level: &str) {
    let logger = build(format, default_level);
    let max_level = logger.filter();
    let switchable = LOGGER.get_or_init(|| Switchable {
        current: RwLock::new(logger),
    });
    if log::set_logger(switchable).is_ok() {
        log::set_max_level(max_level);
    }
}

/// Writes the log in `format` at `default_level` (`RUST_LOG` still wins) from now on; false
/// when logging was not started by [`init`].
pub fn reconfigure(format: LogFormat, default_level: &str) -> bool {
    let Some(switchable) = LOGGER.get() else {
        return false;
    };
    let logger = build(format, default_level);
    let max_level = logger.filter();
    match switchable.current.write() {
        Ok(mut current) => {
            *current = logger;
            log::set_max_level(max_level);
            true
        }
        Err(_) => false,
    }
}

fn build(format: LogFormat, default_level: &str) -> env_logger::Logger {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let line = json_line(
                &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                record.level().as_str(),
                record.target(),
                &record.args().to_string(),
            );
            writeln!(buf, "{line}")
        });
    }
    builder.build()
}

/// One log record as a JSON object: `ts`, `level`, `target`, the leading `key=value` fields of
/// `text`, and the rest of `text` as `message`.
pub fn json_line(ts: &str, level: &str, target: &str, text: &str) -> String {
    let mut object = Map::new();
    object.insert("ts".into(), ts.into());
    object.insert("level".into(), level.into());
    object.insert("target".into(), target.into());
    let mut rest = text.trim_start();
    while let Some((key, value, after)) = leading_field(rest) {
        if !object.contains_key(key) {
            object.insert(key.to_owned(), value);
        }
        rest = after.trim_start();
    }
    object.insert("message".into(), rest.into());
    Value::Object(object).to_string()
}

/// The `key=value` at the start of `text`, and what follows it; `None` when `text` does not
/// start with one.
fn leading_field(text: &str) -> Option<(&str, Value, &str)> {
    let (key, after_key) = text.split_once('=')?;
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    if let Some(quoted) = after_key.strip_prefix('"') {
        // A string written with `{:?}`: up to the first quote not escaped.
        let mut escaped = false;
        for (index, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    let literal = &after_key[..index + 2];
                    let value = serde_json::from_str::<String>(literal)
                        .unwrap_or_else(|_| literal[1..literal.len() - 1].to_owned());
                    return Some((key, value.into(), &quoted[index + 1..]));
                }
                _ => escaped = false,
            }
        }
        return None;
    }
    let end = after_key.find(' ').unwrap_or(after_key.len());
    let (value, after) = after_key.split_at(end);
    if after.is_empty() {
        // A line that is all fields has no sentence: the last token is the message.
        return None;
    }
    Some((key, value.into(), after))
}

/// The log target of incident events (`RUST_LOG=aiops_server::incidents=info` keeps them).
const INCIDENTS: &str = "aiops_server::incidents";

/// One log line per incident change, with what an operator reads first: the incident's id,
/// severity, title and root cause.
pub fn incident_change(change: &IncidentChange, incident: Option<&Incident>) {
    let what = match change {
        IncidentChange::Opened { .. } => "opened",
        IncidentChange::Updated { .. } => "updated",
        IncidentChange::Resolved { .. } => "resolved",
        IncidentChange::Reopened { .. } => "reopened",
    };
    match incident {
        Some(incident) => {
            let cause = &incident.root_cause;
            log::info!(
                target: INCIDENTS,
                "incident={} change={what} severity={} title={:?} root_cause={:?} root_cause_service={:?} root_cause_endpoint={:?} Incident {what}.",
                incident.id,
                incident.severity.as_str(),
                incident.title,
                cause.description,
                cause.service,
                cause.endpoint,
            );
        }
        None => log::info!(
            target: INCIDENTS,
            "incident={} change={what} Incident {what}.",
            change.id()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Value {
        serde_json::from_str(&json_line("T", "INFO", "aiops", text)).expect("a JSON object")
    }

    #[test]
    fn fields_become_members_and_the_sentence_the_message() {
        let line = parsed(
            r#"incident=INC-1-1 severity=high title="Latency spike on \"/payment\"" rows=3 Incident opened."#,
        );
        assert_eq!(
            line,
            serde_json::json!({
                "ts": "T", "level": "INFO", "target": "aiops",
                "incident": "INC-1-1", "severity": "high",
                "title": "Latency spike on \"/payment\"", "rows": "3",
                "message": "Incident opened."
            })
        );
    }

    #[test]
    fn a_line_without_fields_is_all_message() {
        assert_eq!(parsed("Stopped.")["message"], "Stopped.");
        assert_eq!(
            parsed("Listening on a=b")["message"],
            "Listening on a=b",
            "a field only counts at the start"
        );
        assert_eq!(
            parsed(r#"broken="never closed"#)["message"],
            r#"broken="never closed"#
        );
    }
}
