//! The `aiops` command line. Serving takes every option of the settings tree ([`Settings`]) as
//! a flag, and each flag has an environment variable named after it (`--min-error-count`,
//! `AIOPS_MIN_ERROR_COUNT`): a flag wins over its variable, which wins over the `--config`
//! file, which wins over the default.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::config::{Settings, SettingsError, Source};
use crate::tools::demo::DemoArgs;
use crate::tools::healthcheck::HealthcheckArgs;
use crate::tools::replay::ReplayArgs;

#[cfg(test)]
mod reference;

/// A self-learning monitor for request-serving systems, with a demo shop to watch it work.
///
/// With no subcommand, `aiops` serves: the demo shop (/health, /inventory, /payment, /checkout),
/// the JSON API (/aiops/*), chaos injection (/simulate/*), and background analysis.
/// Every option can also be set with the environment variable shown, or in a JSON file given
/// with --config; a flag wins over the environment, which wins over the file.
#[derive(Debug, Parser)]
#[command(
    name = "aiops",
    version = crate::build_info::LONG_VERSION,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options for serving when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The `aiops` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the engine, the demo shop and the API (the default).
    Serve(ServeArgs),
    /// Replay an OTLP JSON lines file through the analysis and print the incidents found.
    Replay(ReplayArgs),
    /// Run the quick-reference scenarios against a server and report what the engine found.
    Demo(DemoArgs),
    /// Print the OpenAPI 3.1 document of the HTTP API (what GET /openapi.json serves) and exit,
    /// to generate clients or validate it without a running server.
    Openapi,
    /// Exit 0 when a running engine answers GET /healthz with 200, 1 otherwise: a container
    /// health check without curl.
    Healthcheck(HealthcheckArgs),
}

/// A flag that switches an option off, whatever else sets the option.
struct OffSwitch {
    flag: &'static str,
    option: &'static str,
    switch_off: fn(&mut Settings),
}

const OFF_SWITCHES: [OffSwitch; 3] = [
    OffSwitch {
        flag: "no-demo",
        option: "demo",
        switch_off: |settings| settings.shop.demo = false,
    },
    OffSwitch {
        flag: "no-chaos",
        option: "chaos",
        switch_off: |settings| settings.shop.chaos = false,
    },
    OffSwitch {
        flag: "no-telemetry",
        option: "telemetry",
        switch_off: |settings| settings.shop.telemetry = false,
    },
];

/// Options of `aiops serve` (and of `aiops` with no subcommand): `--config`, a flag for every
/// option of [`Settings`], and the off switches. They are kept as parsed and resolved into
/// settings by [`ServeArgs::resolve`], once the file is read.
#[derive(Clone, Debug)]
pub struct ServeArgs {
    matches: ArgMatches,
}

impl Args for ServeArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        let command = command.arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help(
                    "JSON configuration file (see docs/CONFIGURATION.md), e.g. \
                     {\"detection\": {\"latency_multiplier\": 2.0}, \"storage\": \
                     {\"retention\": \"12h\"}}; unknown keys are rejected",
                ),
        );
        let command = OFF_SWITCHES.iter().fold(
            Settings::augment_args_for_update(command),
            |command, OffSwitch { flag, option, .. }| {
                command.arg(
                    Arg::new(*flag)
                        .long(*flag)
                        .action(ArgAction::SetTrue)
                        .help_heading("Demo shop")
                        .help(format!(
                            "Same as --{option} off, winning over --{option}, its variable \
                             and the file"
                        )),
                )
            },
        );
        command.mut_args(with_variable)
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self {
            matches: matches.clone(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.matches = matches.clone();
        Ok(())
    }
}

/// Gives an option that takes a value its environment variable: `AIOPS_` and the flag in
/// capitals, `-` as `_`.
fn with_variable(arg: Arg) -> Arg {
    match arg.get_long() {
        Some(long) if arg.get_action().takes_values() && arg.get_env().is_none() => {
            let variable = format!("AIOPS_{}", long.to_ascii_uppercase().replace('-', "_"));
            arg.env(variable)
        }
        _ => arg,
    }
}

impl ServeArgs {
    /// The settings: the `--config` file's (or the defaults), overlaid by the variables, then
    /// the flags, then the off switches, and validated. Each value set on the way records
    /// where it came from, for the messages that name it.
    pub fn resolve(&self) -> Result<Settings, SettingsError> {
        let mut settings = match self.matches.get_one::<PathBuf>("config") {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        settings.update_from_arg_matches(&self.matches)?;
        let command = Self::augment_args(clap::Command::new("aiops"));
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let source = match (self.matches.value_source(id), arg.get_long(), arg.get_env()) {
                (Some(ValueSource::CommandLine), Some(long), _) => {
                    Source::Flag(format!("--{long}"))
                }
                (Some(ValueSource::EnvVariable), _, Some(variable)) => {
                    Source::Env(variable.to_string_lossy().into_owned())
                }
                _ => continue,
            };
            settings.origins.set(id, source);
        }
        for switch in OFF_SWITCHES {
            if self.matches.get_flag(switch.flag) {
                (switch.switch_off)(&mut settings);
                let source = Source::Flag(format!("--{}", switch.flag));
                settings.origins.set(switch.option, source);
            }
        }
        settings.validate()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("aiops").chain(args.iter().copied()))
            .expect("arguments parse")
    }

    fn resolve(args: &[&str]) -> Result<Settings, SettingsError> {
        parse(args).serve.resolve()
    }

    fn config_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temporary file");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("written");
        file
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serving_is_the_default_and_flags_override_defaults() {
        let cli = parse(&[
            "--latency-multiplier",
            "2",
            "--retention",
            "12h",
            "--no-chaos",
        ]);
        assert!(cli.command.is_none());
        let settings = cli.serve.resolve().expect("valid");
        assert_eq!(settings.detection.latency_multiplier, 2.0);
        assert_eq!(settings.storage.retention, Duration::from_secs(12 * 3600));
        assert!(!settings.shop.chaos);
        assert_eq!(settings.http.bind, "127.0.0.1:5000");
    }

    #[test]
    fn every_option_has_a_variable_named_after_its_flag() {
        let command = Cli::command();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if !arg.get_action().takes_values() {
                continue;
            }
            let expected = format!("AIOPS_{}", long.to_ascii_uppercase().replace('-', "_"));
            assert_eq!(arg.get_env().and_then(|v| v.to_str()), Some(&*expected));
        }
    }

    #[test]
    fn millisecond_flags_take_milliseconds() {
        let settings =
            resolve(&["--timeout-ms", "1500", "--min-latency-increase-ms", "50"]).expect("valid");
        assert_eq!(settings.detection.timeout, Duration::from_millis(1500));
        assert_eq!(
            settings.detection.min_latency_increase,
            Duration::from_millis(50)
        );
        assert_eq!(settings.engine_config().analyzer.timeout_ms, 1500.0);
    }

    #[test]
    fn a_flag_wins_over_the_file_and_the_file_over_the_default() {
        let file = config_file(r#"{"latency_multiplier": 4, "detection": {"min_error_count": 9}}"#);
        let path = file.path().to_str().expect("utf-8 path");
        let settings = resolve(&["--config", path, "--latency-multiplier", "2"]).expect("valid");
        assert_eq!(settings.detection.latency_multiplier, 2.0);
        assert_eq!(settings.detection.min_error_count, 9);
        assert_eq!(settings.detection.min_latency_samples, 5);
        assert_eq!(
            settings.origins.get("latency_multiplier"),
            Some(&Source::Flag("--latency-multiplier".into()))
        );
    }

    #[test]
    fn off_switches_win_over_the_on_flags() {
        let settings = resolve(&[
            "--chaos",
            "on",
            "--no-chaos",
            "--telemetry",
            "on",
            "--no-telemetry",
        ])
        .expect("valid");
        assert!(!settings.shop.chaos);
        assert!(!settings.shop.telemetry);
        assert_eq!(settings.chaos_off_reason(), "switched off by --no-chaos");
    }

    #[test]
    fn the_demo_is_switched_off_by_no_demo_or_demo_off() {
        assert!(resolve(&[]).expect("valid").shop.demo);
        assert!(!resolve(&["--no-demo"]).expect("valid").shop.demo);
        assert!(!resolve(&["--demo", "off"]).expect("valid").shop.demo);
        let file = config_file(r#"{"shop": {"demo": "off"}}"#);
        let path = file.path().to_str().expect("utf-8 path");
        assert!(!resolve(&["--config", path]).expect("valid").shop.demo);
    }

    #[test]
    fn chaos_switched_off_in_the_file_names_the_file_setting() {
        let file = config_file(r#"{"chaos": false}"#);
        let path = file.path().to_str().expect("utf-8 path");
        let settings = resolve(&["--config", path]).expect("valid");
        assert!(!settings.shop.chaos);
        assert_eq!(
            settings.chaos_off_reason(),
            format!("switched off by `chaos` in the configuration file {path}")
        );
        let settings = resolve(&["--chaos", "off"]).expect("valid");
        assert_eq!(settings.chaos_off_reason(), "switched off by --chaos off");
    }

    #[test]
    fn a_refused_value_names_the_option_what_set_it_and_what_it_accepts() {
        let error = resolve(&["--retention", "10s"]).expect_err("too short");
        assert_eq!(
            error.to_string(),
            "invalid retention 10s (from --retention); accepted: at least 1m (e.g. 24h)"
        );
        let error = resolve(&["--error-rate-threshold", "1.5"]).expect_err("out of range");
        assert_eq!(
            error.to_string(),
            "invalid error_rate_threshold 1.5 (from --error-rate-threshold); accepted: a number \
             in (0, 1]"
        );
        let error = resolve(&["--analysis-interval", "1m"]).expect_err("longer than the window");
        assert_eq!(
            error.to_string(),
            "invalid analysis_interval 1m (from --analysis-interval); accepted: at most the \
             analysis window (30s)"
        );
    }

    #[test]
    fn serve_subcommand_takes_the_same_options() {
        let cli = parse(&["serve", "--bind", "0.0.0.0:8080", "--telemetry", "off"]);
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve subcommand expected");
        };
        let settings = args.resolve().expect("valid");
        assert_eq!(settings.http.bind, "0.0.0.0:8080");
        assert!(!settings.shop.telemetry);
    }

    #[test]
    fn receiver_flags_repeat_and_take_comma_separated_lists() {
        let settings = resolve(&[
            "--alertmanager-url",
            "http://am-1:9093,http://am-2:9093",
            "--alertmanager-url",
            "http://am-3:9093",
            "--alert-label",
            "environment=prod",
            "--resend-interval",
            "10s",
        ])
        .expect("valid");
        assert_eq!(
            settings.notify.alertmanager_url,
            ["http://am-1:9093", "http://am-2:9093", "http://am-3:9093"]
        );
        assert_eq!(
            settings.notify.labels(),
            [("environment".to_owned(), "prod".to_owned())]
        );
        assert_eq!(settings.notify.resend_interval, Duration::from_secs(10));
    }

    #[test]
    fn a_malformed_flag_value_is_a_usage_error() {
        let error = Cli::try_parse_from(["aiops", "--analysis-window", "soon"])
            .expect_err("not a duration");
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("accepted"), "{error}");
    }
}
