//! The server's settings: one tree, [`Settings`], that defines every option once, with its
//! default, its documentation and its command-line flag.
//!
//! The tree has five sections, each building what it configures: [`Http`] (listening, access,
//! request limits), [`Detection`] (the engine's knobs, [`Detection::engine_config`]),
//! [`Storage`] ([`Storage::store_config`]), [`Shop`] (the demo shop), [`Notify`] (where
//! incidents are sent) and [`Log`]. Values come from the
//! defaults, then the JSON configuration file ([`Settings::from_file`]), then the `AIOPS_*`
//! environment variables, then the flags (`crate::cli`): the variables and the flags are
//! generated from the tree, so an option added here is at once a key of the file, a flag and
//! a variable, and a row of `docs/CONFIGURATION.md`. [`Settings::origins`] remembers what set
//! each value, so that a refusal names what the user wrote.

use std::path::Path;

use aiops_engine::EngineConfig;
use clap::Args;
use serde::{Deserialize, Serialize};

mod detection;
mod error;
mod file;
mod http;
mod human;
mod log;
mod notify;
mod shop;
mod storage;

pub use detection::Detection;
pub use error::{Origins, SettingsError, Source};
pub use http::{Http, IngestLimits};
#[cfg(test)]
pub(crate) use human::render_value;
pub use human::{HumanValueError, format_duration, parse_duration, parse_millis, parse_switch};
pub use log::Log;
pub use notify::{Notify, RESERVED_LABELS, is_label_name, redact_url};
pub use shop::Shop;
pub use storage::Storage;

/// Every option of the server. `Default` gives the documented defaults; tests start from it
/// and change what they need.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listening, access control and request size limits.
    #[command(flatten)]
    pub http: Http,
    /// What counts as an anomaly, and how often the analysis runs.
    #[command(flatten)]
    pub detection: Detection,
    /// The database, retention and the writer's queue.
    #[command(flatten)]
    pub storage: Storage,
    /// The demo shop: chaos injection, instrumentation, checkout, warm-up.
    #[command(flatten)]
    pub shop: Shop,
    /// Where incidents are sent: Alertmanager, webhooks.
    #[command(flatten)]
    pub notify: Notify,
    /// The server's log: its format and filter, reloaded on SIGHUP.
    #[command(flatten)]
    pub log: Log,
    /// What set each value that is not the default; not an option.
    #[serde(skip)]
    #[arg(skip)]
    pub origins: Origins,
}

impl Settings {
    /// The settings of the configuration file at `path` over the defaults, not yet validated.
    /// Besides the tree's own form (`{"detection": {"latency_multiplier": 2}}`), the file may
    /// name any option at the top level (`{"latency_multiplier": 2}`), as earlier versions
    /// did.
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        file::read(path)
    }

    /// Checks every option, naming a refused one, its value, what set it and what it accepts.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.validate_detection()?;
        self.http.validate(&self.origins)?;
        self.storage.validate(&self.origins)?;
        self.shop.validate(&self.origins)?;
        self.notify.validate(&self.origins)?;
        self.log.validate(&self.origins)
    }

    /// Checks the detection options only: all that an offline analysis (`aiops replay`) uses.
    pub fn validate_detection(&self) -> Result<(), SettingsError> {
        self.detection.validate(&self.origins)
    }

    /// The analysis engine's configuration (see [`Detection::engine_config`]).
    pub fn engine_config(&self) -> EngineConfig {
        self.detection.engine_config()
    }

    /// Why chaos injection is off, in the user's terms: "switched off by --no-chaos",
    /// "switched off by `chaos` in the configuration file aiops.json", ...
    pub fn chaos_off_reason(&self) -> String {
        match self.origins.get("chaos") {
            Some(Source::Flag(flag)) if flag.starts_with("--no-") => {
                format!("switched off by {flag}")
            }
            Some(Source::Flag(flag)) => format!("switched off by {flag} off"),
            Some(Source::Env(variable)) => format!("switched off by {variable}=off"),
            Some(source) => format!("switched off by {source}"),
            None => "switched off in the server's settings".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_settings_build_the_engines_default_configuration() {
        assert_eq!(Settings::default().engine_config(), EngineConfig::default());
        assert_eq!(
            Settings::default().validate().map_err(|e| e.to_string()),
            Ok(())
        );
    }
}
