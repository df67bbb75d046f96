//! `log`: how the server's log is written and how much of it, the options a SIGHUP reloads
//! while the server runs.

use clap::Args;
use serde::{Deserialize, Serialize};

use super::error::{Origins, SettingsError};
use crate::logging::LogFormat;

/// The server's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Log")]
pub struct Log {
    /// How the log is written: text, or json (one object per line with the line's fields,
    /// e.g. incident, title, severity and root_cause on incident events); reloaded on SIGHUP
    /// [default: text].
    #[arg(long, value_name = "text|json", value_parser = parse_log_format)]
    pub log_format: LogFormat,

    /// Which lines are written: a level (error, warn, info, debug, trace) or a filter as
    /// RUST_LOG takes it (info,aiops_server::actor=debug); RUST_LOG, when set, wins; reloaded
    /// on SIGHUP [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log_level: String,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
        }
    }
}

impl Log {
    pub(super) fn validate(&self, origins: &Origins) -> Result<(), SettingsError> {
        let filter = self.log_level.trim();
        let valid = !filter.is_empty()
            && filter.split(',').all(|directive| {
                let level = directive.rsplit('=').next().unwrap_or("").trim();
                let named = directive.contains('=');
                ["off", "error", "warn", "info", "debug", "trace"]
                    .contains(&level.to_ascii_lowercase().as_str())
                    || (!named && !level.is_empty() && !level.contains(char::is_whitespace))
            });
        if valid {
            Ok(())
        } else {
            Err(SettingsError::out_of_range(
                "log_level",
                &self.log_level,
                origins,
                "a level (off, error, warn, info, debug, trace) or module=level directives \
                 separated by commas",
            ))
        }
    }
}

/// Parses a `--log-format` value.
pub fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    LogFormat::from_name(text.trim()).ok_or_else(|| {
        format!(
            "invalid log format {text:?}; accepted: {}",
            LogFormat::NAMES.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_filters_are_accepted_and_nonsense_is_not() {
        for good in [
            "info",
            "DEBUG",
            "warn,aiops_server::actor=debug",
            "actix_server",
        ] {
            let log = Log {
                log_level: good.to_owned(),
                ..Log::default()
            };
            assert!(log.validate(&Origins::default()).is_ok(), "{good}");
        }
        for bad in ["", "aiops=loud", "info, debug x", "very loud"] {
            let log = Log {
                log_level: bad.to_owned(),
                ..Log::default()
            };
            assert!(log.validate(&Origins::default()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn log_formats_are_text_and_json() {
        assert_eq!(parse_log_format("json"), Ok(LogFormat::Json));
        assert!(parse_log_format("xml").is_err());
    }
}
