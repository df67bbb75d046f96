//! The `aiops` command line: flags with `AIOPS_*` environment fallbacks, resolved into a
//! [`ServerConfig`] (flag or environment, then the `--config` file, then the default).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{FileConfig, ServerConfig, parse_duration, parse_switch};
use crate::tools::demo::DemoArgs;
use crate::tools::replay::ReplayArgs;

/// A self-learning monitor for request-serving systems, with a demo shop to watch it work.
///
/// With no subcommand, `aiops` serves: the demo shop (/health, /inventory, /payment, /checkout),
/// the JSON API (/aiops/*), chaos injection (/simulate/*), and background analysis.
/// Every option can also be set with the environment variable shown, or in a JSON file given
/// with --config; a flag wins over the environment, which wins over the file.
#[derive(Debug, Parser)]
#[command(name = "aiops", version, args_conflicts_with_subcommands = true)]
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
#[allow(clippy::large_enum_variant)] // parsed once at start-up
pub enum Command {
    /// Start the engine, the demo shop and the API (the default).
    Serve(ServeArgs),
    /// Replay an OTLP JSON lines file through the analysis and print the incidents found.
    Replay(ReplayArgs),
    /// Run the quick-reference scenarios against a server and report what the engine found.
    Demo(DemoArgs),
}

/// Options of `aiops serve` (and of `aiops` with no subcommand).
#[derive(Clone, Debug, Default, Args)]
pub struct ServeArgs {
    /// JSON configuration file; its fields are the long option names with `_` for `-`
    /// (e.g. {"latency_multiplier": 2.0, "retention": "12h"}); unknown fields are rejected.
    #[arg(long, env = "AIOPS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long, env = "AIOPS_BIND", value_name = "ADDR")]
    pub bind: Option<String>,

    /// SQLite database file; ":memory:" keeps nothing after exit [default: ./aiops.db].
    #[arg(long, env = "AIOPS_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Latency spike when the window mean exceeds this multiple of the baseline [default: 3.0].
    /// Lower is more sensitive.
    #[arg(
        long,
        env = "AIOPS_LATENCY_MULTIPLIER",
        value_name = "X",
        help_heading = "Detection"
    )]
    pub latency_multiplier: Option<f64>,

    /// Error storm when the window error rate exceeds this share, 0 to 1 [default: 0.2].
    #[arg(
        long,
        env = "AIOPS_ERROR_RATE_THRESHOLD",
        value_name = "RATE",
        help_heading = "Detection"
    )]
    pub error_rate_threshold: Option<f64>,

    /// Requests an endpoint needs before its baseline is used [default: 10].
    #[arg(
        long,
        env = "AIOPS_MIN_SAMPLES_FOR_BASELINE",
        value_name = "N",
        help_heading = "Detection"
    )]
    pub min_samples_for_baseline: Option<u64>,

    /// How much recent traffic each analysis looks at, e.g. 30s or 2m [default: 30s].
    #[arg(long, env = "AIOPS_ANALYSIS_WINDOW", value_name = "DURATION", value_parser = parse_duration, help_heading = "Detection")]
    pub analysis_window: Option<Duration>,

    /// How often analysis runs in the background, e.g. 5s [default: 5s].
    #[arg(long, env = "AIOPS_ANALYSIS_INTERVAL", value_name = "DURATION", value_parser = parse_duration, help_heading = "Detection")]
    pub analysis_interval: Option<Duration>,

    /// Between cycles, look for new anomalies every second and run the cycle at once when one
    /// shows, so detection does not wait for the interval; learning, root cause analysis and
    /// incident upkeep still run once per interval [default: on].
    #[arg(long, env = "AIOPS_EARLY_DETECTION", value_name = "on|off", value_parser = parse_switch, help_heading = "Detection")]
    pub early_detection: Option<bool>,

    /// Smallest absolute latency increase (ms) that can be a spike, so that tiny baselines with
    /// jitter do not alert [default: 20].
    #[arg(
        long,
        env = "AIOPS_MIN_LATENCY_INCREASE_MS",
        value_name = "MS",
        help_heading = "Detection"
    )]
    pub min_latency_increase_ms: Option<f64>,

    /// Fewest requests in a window that can show a latency spike [default: 5].
    #[arg(
        long,
        env = "AIOPS_MIN_LATENCY_SAMPLES",
        value_name = "N",
        help_heading = "Detection"
    )]
    pub min_latency_samples: Option<u64>,

    /// Fewest failing (or timed-out) requests in a window that can be an error storm (or a
    /// timeout anomaly) [default: 5].
    #[arg(
        long,
        env = "AIOPS_MIN_ERROR_COUNT",
        value_name = "N",
        help_heading = "Detection"
    )]
    pub min_error_count: Option<u64>,

    /// A request slower than this many milliseconds counts as a timeout [default: 5000].
    #[arg(
        long,
        env = "AIOPS_TIMEOUT_MS",
        value_name = "MS",
        help_heading = "Detection"
    )]
    pub timeout_ms: Option<f64>,

    /// Half-life of baseline adaptation to slow drift, e.g. 10m [default: 30m].
    #[arg(long, env = "AIOPS_BASELINE_HALF_LIFE", value_name = "DURATION", value_parser = parse_duration, help_heading = "Detection")]
    pub baseline_half_life: Option<Duration>,

    /// Healthy analysis cycles after which an incident resolves itself; 0 never [default: 3].
    #[arg(
        long,
        env = "AIOPS_AUTO_RESOLVE_CYCLES",
        value_name = "N",
        help_heading = "Detection"
    )]
    pub auto_resolve_cycles: Option<u32>,

    /// How long spans are kept in the database, e.g. 24h or 7d [default: 24h].
    #[arg(long, env = "AIOPS_RETENTION", value_name = "DURATION", value_parser = parse_duration, help_heading = "Storage")]
    pub retention: Option<Duration>,

    /// Spans that may wait for the database writer before new ones are dropped and counted
    /// [default: 65536].
    #[arg(
        long,
        env = "AIOPS_SPAN_QUEUE_CAPACITY",
        value_name = "N",
        help_heading = "Storage"
    )]
    pub span_queue_capacity: Option<usize>,

    /// Chaos injection through /simulate/*: on or off [default: on].
    #[arg(long, env = "AIOPS_CHAOS", value_name = "on|off", value_parser = parse_switch, help_heading = "Demo shop")]
    pub chaos: Option<bool>,

    /// Same as --chaos off; wins over --chaos and AIOPS_CHAOS.
    #[arg(long, help_heading = "Demo shop")]
    pub no_chaos: bool,

    /// Seed for chaos decisions, so that "fail 50%" fails the same requests every run.
    #[arg(
        long,
        env = "AIOPS_CHAOS_SEED",
        value_name = "N",
        help_heading = "Demo shop"
    )]
    pub chaos_seed: Option<u64>,

    /// Record demo-shop requests as spans: on or off [default: on].
    #[arg(long, env = "AIOPS_TELEMETRY", value_name = "on|off", value_parser = parse_switch, help_heading = "Demo shop")]
    pub telemetry: Option<bool>,

    /// Same as --telemetry off, winning over --telemetry and AIOPS_TELEMETRY (the shop serves
    /// unmonitored; for performance baselines).
    #[arg(long, help_heading = "Demo shop")]
    pub no_telemetry: bool,

    /// How long /checkout waits for /payment and /inventory before answering 504 [default: 2s].
    #[arg(long, env = "AIOPS_CHECKOUT_TIMEOUT", value_name = "DURATION", value_parser = parse_duration, help_heading = "Demo shop")]
    pub checkout_timeout: Option<Duration>,

    /// Healthy requests sent to each shop endpoint at start so baselines exist before the
    /// first fault; 0 turns the warm-up off [default: 20].
    #[arg(
        long,
        env = "AIOPS_WARMUP_REQUESTS",
        value_name = "N",
        help_heading = "Demo shop"
    )]
    pub warmup_requests: Option<u32>,

    /// When set, POST /aiops/* and POST /simulate/* need "Authorization: Bearer <TOKEN>".
    #[arg(
        long,
        env = "AIOPS_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        help_heading = "HTTP"
    )]
    pub api_token: Option<String>,

    /// Largest request body accepted, in bytes [default: 1048576].
    #[arg(
        long,
        env = "AIOPS_MAX_BODY_BYTES",
        value_name = "BYTES",
        help_heading = "HTTP"
    )]
    pub max_body_bytes: Option<usize>,

    /// Largest OTLP request body accepted on POST /v1/traces as sent (compressed or not), in
    /// bytes [default: 8388608].
    #[arg(
        long,
        env = "AIOPS_OTLP_MAX_BODY_BYTES",
        value_name = "BYTES",
        help_heading = "HTTP"
    )]
    pub otlp_max_body_bytes: Option<usize>,

    /// Largest OTLP request body accepted once gzip-decompressed, in bytes [default: 33554432].
    #[arg(
        long,
        env = "AIOPS_OTLP_MAX_DECOMPRESSED_BYTES",
        value_name = "BYTES",
        help_heading = "HTTP"
    )]
    pub otlp_max_decompressed_bytes: Option<usize>,

    /// HTTP worker threads; 0 means one per CPU core [default: 0].
    #[arg(long, env = "AIOPS_WORKERS", value_name = "N", help_heading = "HTTP")]
    pub workers: Option<usize>,
}

impl ServeArgs {
    /// Resolves flags, environment, the `--config` file and defaults into a validated
    /// configuration, or a message naming the bad option and what it accepts.
    pub fn resolve(&self) -> Result<ServerConfig, String> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let mut config = ServerConfig::default();
        let duration = |value: &Option<crate::config::DurationValue>| {
            value.as_ref().map(|value| value.to_duration()).transpose()
        };

        if let Some(bind) = self.bind.clone().or(file.bind) {
            config.bind = bind;
        }
        if let Some(db) = self.db.clone().or(file.db) {
            config.db = db;
        }

        let analyzer = &mut config.analyzer;
        set(
            &mut analyzer.latency_multiplier,
            self.latency_multiplier.or(file.latency_multiplier),
        );
        set(
            &mut analyzer.error_rate_threshold,
            self.error_rate_threshold.or(file.error_rate_threshold),
        );
        set(
            &mut analyzer.min_samples_for_baseline,
            self.min_samples_for_baseline
                .or(file.min_samples_for_baseline),
        );
        set(
            &mut analyzer.min_latency_increase_ms,
            self.min_latency_increase_ms
                .or(file.min_latency_increase_ms),
        );
        set(
            &mut analyzer.min_latency_samples,
            self.min_latency_samples.or(file.min_latency_samples),
        );
        set(
            &mut analyzer.min_error_count,
            self.min_error_count.or(file.min_error_count),
        );
        set(
            &mut analyzer.timeout_ms,
            self.timeout_ms.or(file.timeout_ms),
        );
        let window = self.analysis_window.or(duration(&file.analysis_window)?);
        set(
            &mut analyzer.analysis_window_secs,
            window.map(|d| d.as_secs_f64()),
        );
        let interval = self
            .analysis_interval
            .or(duration(&file.analysis_interval)?);
        set(
            &mut analyzer.analysis_interval_secs,
            interval.map(|d| d.as_secs_f64()),
        );
        let half_life = self
            .baseline_half_life
            .or(duration(&file.baseline_half_life)?);
        set(
            &mut analyzer.baseline_half_life_secs,
            half_life.map(|d| d.as_secs_f64()),
        );

        set(
            &mut config.auto_resolve_cycles,
            self.auto_resolve_cycles.or(file.auto_resolve_cycles),
        );
        set(
            &mut config.retention,
            self.retention.or(duration(&file.retention)?),
        );
        set(
            &mut config.span_queue_capacity,
            self.span_queue_capacity.or(file.span_queue_capacity),
        );
        let chaos = if self.no_chaos {
            Some(false)
        } else {
            self.chaos.or(file.chaos)
        };
        set(&mut config.chaos_enabled, chaos);
        config.chaos_seed = self.chaos_seed.or(file.chaos_seed);
        let telemetry = if self.no_telemetry {
            Some(false)
        } else {
            self.telemetry.or(file.telemetry)
        };
        set(&mut config.telemetry_enabled, telemetry);
        set(
            &mut config.early_detection,
            self.early_detection.or(file.early_detection),
        );
        set(
            &mut config.checkout_timeout,
            self.checkout_timeout.or(duration(&file.checkout_timeout)?),
        );
        set(
            &mut config.warmup_requests,
            self.warmup_requests.or(file.warmup_requests),
        );
        config.api_token = self.api_token.clone().or(file.api_token);
        set(
            &mut config.max_body_bytes,
            self.max_body_bytes.or(file.max_body_bytes),
        );
        set(
            &mut config.ingest.max_body_bytes,
            self.otlp_max_body_bytes.or(file.otlp_max_body_bytes),
        );
        set(
            &mut config.ingest.max_decompressed_bytes,
            self.otlp_max_decompressed_bytes
                .or(file.otlp_max_decompressed_bytes),
        );
        set(&mut config.workers, self.workers.or(file.workers));
        config.validate()?;
        Ok(config)
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("aiops").chain(args.iter().copied()))
            .expect("arguments parse")
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
        let config = cli.serve.resolve().expect("valid");
        assert_eq!(config.analyzer.latency_multiplier, 2.0);
        assert_eq!(config.retention, Duration::from_secs(12 * 3600));
        assert!(!config.chaos_enabled);
        assert_eq!(config.bind, "127.0.0.1:5000");
    }

    #[test]
    fn invalid_knobs_are_rejected_with_the_accepted_range() {
        let cli = parse(&["--error-rate-threshold", "1.5"]);
        let error = cli.serve.resolve().expect_err("out of range");
        assert!(
            error.contains("error_rate_threshold") || error.contains("error rate"),
            "{error}"
        );
        let error = parse(&["--retention", "10s"])
            .serve
            .resolve()
            .expect_err("too short");
        assert!(error.contains("accepted"), "{error}");
    }

    #[test]
    fn off_switches_win_over_the_environment_and_the_on_flags() {
        let config = parse(&[
            "--chaos",
            "on",
            "--no-chaos",
            "--telemetry",
            "on",
            "--no-telemetry",
        ])
        .serve
        .resolve()
        .expect("valid");
        assert!(!config.chaos_enabled);
        assert!(!config.telemetry_enabled);
    }

    #[test]
    fn serve_subcommand_takes_the_same_options() {
        let cli = parse(&["serve", "--bind", "0.0.0.0:8080", "--telemetry", "off"]);
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve subcommand expected");
        };
        let config = args.resolve().expect("valid");
        assert_eq!(config.bind, "0.0.0.0:8080");
        assert!(!config.telemetry_enabled);
    }
}
