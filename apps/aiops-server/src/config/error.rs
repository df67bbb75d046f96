//! Why settings were refused, and where each value came from, so that a message names what
//! the user wrote: the flag, the variable or the file's key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use aiops_engine::EngineConfigError;
use thiserror::Error;

/// Where an option's value came from, when it is not the default.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A command-line flag, by name (`--chaos`, `--no-chaos`).
    Flag(String),
    /// An environment variable, by name (`AIOPS_CHAOS`).
    Env(String),
    /// A key of the configuration file, spelled as it is there (`chaos` or `shop.chaos`).
    File {
        /// The configuration file.
        path: PathBuf,
        /// The key.
        key: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => f.write_str(flag),
            Self::Env(variable) => f.write_str(variable),
            Self::File { path, key } => {
                write!(f, "`{key}` in the configuration file {}", path.display())
            }
        }
    }
}

/// The [`Source`] of every option not left at its default, by option (the key of its field in
/// the settings tree, such as `chaos`). Empty for settings built in code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origins(BTreeMap<String, Source>);

impl Origins {
    /// Records that `option` was set by `source`, replacing what set it before.
    pub fn set(&mut self, option: &str, source: Source) {
        self.0.insert(option.to_owned(), source);
    }

    /// What set `option`, if anything did.
    pub fn get(&self, option: &str) -> Option<&Source> {
        self.0.get(option)
    }
}

/// Why settings were refused. Every message names the file, key, flag or variable at fault and
/// what it accepts; the command line reports them as usage errors (exit status 2).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The configuration file could not be read.
    #[error("cannot read the configuration file {}: {source}", .path.display())]
    Unreadable {
        /// The configuration file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The configuration file is not JSON (TOML or YAML, say, or broken JSON).
    #[error("the configuration file {} must be JSON: {detail}", .path.display())]
    NotJson {
        /// The configuration file.
        path: PathBuf,
        /// The parser's complaint, with its line and column.
        detail: String,
    },
    /// The configuration file holds JSON, but not an object.
    #[error(
        "the configuration file {} must hold a JSON object such as {{\"bind\": \"0.0.0.0:5000\"}}, not {found}",
        .path.display()
    )]
    NotAnObject {
        /// The configuration file.
        path: PathBuf,
        /// What it holds instead (`an array`, `a number`, ...).
        found: &'static str,
    },
    /// A key of the configuration file is not an option.
    #[error(
        "unknown key `{key}` in the configuration file {}{}; accepted: {}",
        .path.display(),
        .suggestion.as_ref().map(|near| format!(" (did you mean `{near}`?)")).unwrap_or_default(),
        .accepted.join(", ")
    )]
    UnknownKey {
        /// The configuration file.
        path: PathBuf,
        /// The key as written, with its section (`detection.latency_multipler`).
        key: String,
        /// The closest accepted key, when one is close.
        suggestion: Option<String>,
        /// Every key accepted where it was found.
        accepted: Vec<String>,
    },
    /// Two keys of the configuration file set the same option.
    #[error(
        "`{first}` and `{second}` in the configuration file {} set the same option; keep one",
        .path.display()
    )]
    SetTwice {
        /// The configuration file.
        path: PathBuf,
        /// The first key, as written.
        first: String,
        /// The second key, as written.
        second: String,
    },
    /// A value of the configuration file has the wrong type or form.
    #[error("invalid `{key}` in the configuration file {}: {detail}", .path.display())]
    InvalidValue {
        /// The configuration file.
        path: PathBuf,
        /// The key as written.
        key: String,
        /// What is wrong, and what is expected.
        detail: String,
    },
    /// An option's value is out of range.
    #[error(
        "invalid {option} {value}{}; accepted: {accepted}",
        .origin.as_ref().map(|origin| format!(" (from {origin})")).unwrap_or_default()
    )]
    OutOfRange {
        /// The option, by its key in the settings tree.
        option: String,
        /// The rejected value, as the settings hold it.
        value: String,
        /// What set it, unless it is set in code.
        origin: Option<Source>,
        /// What the option accepts.
        accepted: String,
    },
    /// The engine refused its configuration for a reason the settings cannot name.
    #[error(transparent)]
    Engine(EngineConfigError),
    /// The parsed command line did not fit the settings.
    #[error("the command line does not fit the settings: {0}")]
    Arguments(#[from] clap::Error),
}

impl SettingsError {
    /// `option` holds `value`, outside what it accepts; names what set it, from `origins`.
    pub(crate) fn out_of_range(
        option: &str,
        value: impl fmt::Display,
        origins: &Origins,
        accepted: impl Into<String>,
    ) -> Self {
        Self::OutOfRange {
            option: option.to_owned(),
            value: value.to_string(),
            origin: origins.get(option).cloned(),
            accepted: accepted.into(),
        }
    }
}
