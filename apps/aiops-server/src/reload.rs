//! SIGHUP: the configuration read again (file, variables and flags, as at start), and what
//! may change while the server runs applied at once.
//!
//! Live: the log's format and filter (`log_format`, `log_level`), swapped in the logger
//! without losing a line. Every other option shapes something built once at start (the
//! listener, the database, the engine's windows, the notification desk's receivers), so a
//! change to one is named in the log as needing a restart and the running value is kept. A
//! file that no longer reads or validates changes nothing: the error is logged and the
//! server goes on as it was. A reload never stops the server.

use serde_json::Value;

use crate::config::{Settings, SettingsError};
use crate::logging;

/// The options a reload applies while the server runs.
pub const LIVE_OPTIONS: [&str; 2] = ["log_format", "log_level"];

/// Resolves the settings again the way they were resolved at start.
pub type Resolve = Box<dyn Fn() -> Result<Settings, SettingsError> + Send + Sync>;

/// The running settings and how to read them again.
pub struct Reloader {
    resolve: Resolve,
    running: Settings,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Options changed and applied.
    pub applied: Vec<String>,
    /// Options changed that apply only at start: not applied.
    pub needs_restart: Vec<String>,
}

impl Reloader {
    /// A reloader of the server started with `running`.
    pub fn new(running: Settings, resolve: Resolve) -> Self {
        Self { resolve, running }
    }

    /// Reads the configuration again, applies what may change live and logs what happened;
    /// on an error, changes nothing.
    pub fn reload(&mut self) -> Result<Reloaded, SettingsError> {
        let fresh = match (self.resolve)() {
            Ok(settings) => settings,
            Err(error) => {
                log::error!(
                    "error={:?} Could not reload the configuration; the running configuration is kept.",
                    error.to_string()
                );
                return Err(error);
            }
        };
        let mut outcome = Reloaded::default();
        for option in changed_options(&self.running, &fresh) {
            if LIVE_OPTIONS.contains(&option.as_str()) {
                outcome.applied.push(option);
            } else {
                outcome.needs_restart.push(option);
            }
        }
        if !outcome.applied.is_empty() {
            logging::reconfigure(fresh.log.log_format, &fresh.log.log_level);
            self.running.log = fresh.log.clone();
            self.running.origins = fresh.origins.clone();
        }
        log::info!(
            "signal=SIGHUP applied={:?} Reloaded the configuration.",
            outcome.applied.join(",")
        );
        if !outcome.needs_restart.is_empty() {
            log::warn!(
                "options={:?} The configuration changes options read only at start; they keep their running values until a restart.",
                outcome.needs_restart.join(",")
            );
        }
        Ok(outcome)
    }
}

/// The options whose values differ between `old` and `new`, by name, in the tree's order.
pub fn changed_options(old: &Settings, new: &Settings) -> Vec<String> {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut changed = Vec::new();
    for (section, old_options) in &old {
        let (Value::Object(old_options), Some(Value::Object(new_options))) =
            (old_options, new.get(section))
        else {
            continue;
        };
        for (option, value) in old_options {
            if new_options.get(option) != Some(value) {
                changed.push(option.clone());
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::LogFormat;

    #[test]
    fn changed_options_are_named_by_option() {
        let old = Settings::default();
        let mut new = Settings::default();
        new.log.log_format = LogFormat::Json;
        new.detection.latency_multiplier = 2.5;
        assert_eq!(
            changed_options(&old, &new),
            vec!["latency_multiplier".to_owned(), "log_format".to_owned()]
        );
        assert!(changed_options(&old, &old.clone()).is_empty());
    }

    #[test]
    fn a_reload_applies_the_log_and_keeps_the_rest_for_a_restart() {
        let mut fresh = Settings::default();
        fresh.log.log_level = "debug".to_owned();
        fresh.storage.retention = std::time::Duration::from_secs(3600);
        let mut reloader = Reloader::new(Settings::default(), Box::new(move || Ok(fresh.clone())));
        let outcome = reloader.reload().expect("reloads");
        assert_eq!(outcome.applied, vec!["log_level".to_owned()]);
        assert_eq!(outcome.needs_restart, vec!["retention".to_owned()]);
        assert_eq!(reloader.running.log.log_level, "debug");
        assert_eq!(
            reloader.running.storage.retention,
            Settings::default().storage.retention,
            "the running value is kept"
        );
        // Read again, the same file changes nothing more to apply.
        let again = reloader.reload().expect("reloads");
        assert!(again.applied.is_empty());
    }

    #[test]
    fn a_configuration_that_does_not_resolve_changes_nothing() {
        let mut reloader = Reloader::new(
            Settings::default(),
            Box::new(|| {
                Err(SettingsError::out_of_range(
                    "log_level",
                    "loud",
                    &Default::default(),
                    "a level",
                ))
            }),
        );
        assert!(reloader.reload().is_err());
        assert_eq!(reloader.running, Settings::default());
    }
}
