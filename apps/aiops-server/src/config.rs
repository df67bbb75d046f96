//! The server's typed configuration, the optional JSON configuration file, and the duration
//! syntax shared by flags, environment variables and the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aiops_analyzer::Config as AnalyzerConfig;
use aiops_engine::EngineConfig;
use serde::Deserialize;

/// Everything the server needs to start, resolved from flags, environment and file.
///
/// `Default` gives the documented defaults; tests start from it and change what they need.
#[derive(Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port (see `Application::port`).
    pub bind: String,
    /// SQLite database file (`:memory:` keeps everything in memory).
    pub db: PathBuf,
    /// Detection knobs, including the analysis window and interval.
    pub analyzer: AnalyzerConfig,
    /// Healthy cycles after which an incident resolves itself (0: never).
    pub auto_resolve_cycles: u32,
    /// How long spans are kept in the database.
    pub retention: Duration,
    /// How often old spans are purged.
    pub retention_interval: Duration,
    /// Whether `/simulate/*` may inject faults.
    pub chaos_enabled: bool,
    /// Seed for chaos decisions, for reproducible runs.
    pub chaos_seed: Option<u64>,
    /// When set, mutating API routes need `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// Whether demo-shop requests are recorded as spans.
    pub telemetry_enabled: bool,
    /// Whether the analysis actor looks for new anomalies every second between cycles and runs
    /// the cycle at once when it finds one (only matters when the interval is longer than 1 s).
    pub early_detection: bool,
    /// How long `/checkout` waits for `/payment` and `/inventory`.
    pub checkout_timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Size limits of OTLP ingest (`POST /v1/traces`), as sent and decompressed.
    pub ingest: IngestLimits,
    /// HTTP worker threads (0: one per CPU core).
    pub workers: usize,
    /// Spans that may wait for the database writer before new ones are dropped.
    pub span_queue_capacity: usize,
    /// Healthy requests the server sends to each demo-shop endpoint right after starting, so
    /// baselines exist before the first fault is injected (0: none).
    pub warmup_requests: u32,
    /// Whether the server stops by itself on SIGINT / SIGTERM (the binary: yes; tests: no).
    pub handle_signals: bool,
}

impl ServerConfig {
    /// Checks every option, the analyzer's and the engine's included; the error names the
    /// option and what it accepts.
    pub fn validate(&self) -> Result<(), String> {
        let config = self;
        config
            .engine_config()
            .validate()
            .map_err(|err| err.to_string())?;
        if config.retention < Duration::from_secs(60) {
            return Err(format!(
                "invalid retention {:?}; accepted: at least 1m (e.g. 24h)",
                config.retention
            ));
        }
        if config.span_queue_capacity == 0 {
            return Err("invalid span-queue-capacity 0; accepted: an integer of at least 1".into());
        }
        if config.checkout_timeout.is_zero() || config.checkout_timeout > Duration::from_secs(300) {
            return Err(format!(
                "invalid checkout-timeout {:?}; accepted: more than 0 and at most 5m",
                config.checkout_timeout
            ));
        }
        if !(1024..=1 << 30).contains(&config.max_body_bytes) {
            return Err(format!(
                "invalid max-body-bytes {}; accepted: 1024 to 1073741824",
                config.max_body_bytes
            ));
        }
        config.ingest.validate()?;
        if config.workers > 1024 {
            return Err(format!(
                "invalid workers {}; accepted: 0 to 1024",
                config.workers
            ));
        }
        if config.warmup_requests > 10_000 {
            return Err(format!(
                "invalid warmup-requests {}; accepted: 0 to 10000",
                config.warmup_requests
            ));
        }
        if config
            .api_token
            .as_deref()
            .is_some_and(|token| token.trim().is_empty())
        {
            return Err("invalid api-token: it is empty; accepted: a non-empty token".into());
        }
        Ok(())
    }

    /// The analysis engine's configuration.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            analyzer: self.analyzer.clone(),
            auto_resolve_cycles: self.auto_resolve_cycles,
            live_bucket_secs: self.analyzer.analysis_window_secs.min(1.0),
            ..EngineConfig::default()
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:5000".to_owned(),
            db: PathBuf::from("./aiops.db"),
            analyzer: AnalyzerConfig::default(),
            auto_resolve_cycles: EngineConfig::default().auto_resolve_cycles,
            retention: Duration::from_secs(24 * 3600),
            retention_interval: Duration::from_secs(60),
            chaos_enabled: true,
            chaos_seed: None,
            api_token: None,
            telemetry_enabled: true,
            early_detection: true,
            checkout_timeout: Duration::from_secs(2),
            max_body_bytes: 1024 * 1024,
            ingest: IngestLimits::default(),
            workers: 0,
            span_queue_capacity: 65_536,
            warmup_requests: 20,
            handle_signals: false,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("db", &self.db)
            .field("analyzer", &self.analyzer)
            .field("auto_resolve_cycles", &self.auto_resolve_cycles)
            .field("retention", &self.retention)
            .field("chaos_enabled", &self.chaos_enabled)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("telemetry_enabled", &self.telemetry_enabled)
            .field("early_detection", &self.early_detection)
            .field("checkout_timeout", &self.checkout_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("ingest", &self.ingest)
            .field("workers", &self.workers)
            .field("warmup_requests", &self.warmup_requests)
            .finish_non_exhaustive()
    }
}

/// How large an OTLP request may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestLimits {
    /// Largest body accepted as sent (compressed, when it is), in bytes.
    pub max_body_bytes: usize,
    /// Largest body accepted once decompressed, in bytes.
    pub max_decompressed_bytes: usize,
}

impl Default for IngestLimits {
    /// 8 MiB as sent, 32 MiB decompressed: several times the largest batch an OpenTelemetry
    /// Collector sends with its default batch sizes.
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_decompressed_bytes: 32 * 1024 * 1024,
        }
    }
}

impl IngestLimits {
    /// Checks the limits, naming the option and what it accepts.
    pub fn validate(&self) -> Result<(), String> {
        const RANGE: std::ops::RangeInclusive<usize> = 1024..=1 << 30;
        if !RANGE.contains(&self.max_body_bytes) {
            return Err(format!(
                "invalid otlp-max-body-bytes {}; accepted: 1024 to 1073741824",
                self.max_body_bytes
            ));
        }
        if !RANGE.contains(&self.max_decompressed_bytes)
            || self.max_decompressed_bytes < self.max_body_bytes
        {
            return Err(format!(
                "invalid otlp-max-decompressed-bytes {}; accepted: at least \
                 otlp-max-body-bytes ({}) and at most 1073741824",
                self.max_decompressed_bytes, self.max_body_bytes
            ));
        }
        Ok(())
    }
}

/// Largest value accepted for durations, so that arithmetic on nanoseconds never overflows.
const MAX_DURATION_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// The optional JSON configuration file (`--config FILE`). Every field is optional; flags and
/// environment variables win over the file, which wins over the defaults. Unknown fields are
/// rejected so that a typo never silently does nothing.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See `--bind`.
    pub bind: Option<String>,
    /// See `--db`.
    pub db: Option<PathBuf>,
    /// See `--latency-multiplier`.
    pub latency_multiplier: Option<f64>,
    /// See `--error-rate-threshold`.
    pub error_rate_threshold: Option<f64>,
    /// See `--min-samples-for-baseline`.
    pub min_samples_for_baseline: Option<u64>,
    /// See `--analysis-window`.
    pub analysis_window: Option<DurationValue>,
    /// See `--analysis-interval`.
    pub analysis_interval: Option<DurationValue>,
    /// See `--early-detection`.
    pub early_detection: Option<bool>,
    /// See `--min-latency-increase-ms`.
    pub min_latency_increase_ms: Option<f64>,
    /// See `--min-latency-samples`.
    pub min_latency_samples: Option<u64>,
    /// See `--min-error-count`.
    pub min_error_count: Option<u64>,
    /// See `--timeout-ms`.
    pub timeout_ms: Option<f64>,
    /// See `--baseline-half-life`.
    pub baseline_half_life: Option<DurationValue>,
    /// See `--auto-resolve-cycles`.
    pub auto_resolve_cycles: Option<u32>,
    /// See `--retention`.
    pub retention: Option<DurationValue>,
    /// See `--chaos`.
    pub chaos: Option<bool>,
    /// See `--chaos-seed`.
    pub chaos_seed: Option<u64>,
    /// See `--api-token`.
    pub api_token: Option<String>,
    /// See `--telemetry`.
    pub telemetry: Option<bool>,
    /// See `--checkout-timeout`.
    pub checkout_timeout: Option<DurationValue>,
    /// See `--max-body-bytes`.
    pub max_body_bytes: Option<usize>,
    /// See `--otlp-max-body-bytes`.
    pub otlp_max_body_bytes: Option<usize>,
    /// See `--otlp-max-decompressed-bytes`.
    pub otlp_max_decompressed_bytes: Option<usize>,
    /// See `--workers`.
    pub workers: Option<usize>,
    /// See `--span-queue-capacity`.
    pub span_queue_capacity: Option<usize>,
    /// See `--warmup-requests`.
    pub warmup_requests: Option<u32>,
}

impl FileConfig {
    /// Reads and parses `path`; the error names the file and what was wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read config file {}: {err}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|err| format!("invalid config file {}: {err}", path.display()))
    }
}

/// The analysis engine's configuration described by the configuration file at `path` (the
/// defaults without one): the detection knobs of the file over the defaults, validated. Options
/// that only concern serving are ignored. For `aiops replay`, which analyses without serving.
pub fn engine_config_from_file(path: Option<&Path>) -> Result<EngineConfig, String> {
    let file = path.map(FileConfig::load).transpose()?.unwrap_or_default();
    let secs = |value: &Option<DurationValue>| {
        value
            .as_ref()
            .map(|value| value.to_duration().map(|duration| duration.as_secs_f64()))
            .transpose()
    };
    let mut config = ServerConfig::default();
    let analyzer = &mut config.analyzer;
    let knobs = [
        (&mut analyzer.latency_multiplier, file.latency_multiplier),
        (
            &mut analyzer.error_rate_threshold,
            file.error_rate_threshold,
        ),
        (
            &mut analyzer.min_latency_increase_ms,
            file.min_latency_increase_ms,
        ),
        (&mut analyzer.timeout_ms, file.timeout_ms),
        (
            &mut analyzer.analysis_window_secs,
            secs(&file.analysis_window)?,
        ),
        (
            &mut analyzer.analysis_interval_secs,
            secs(&file.analysis_interval)?,
        ),
        (
            &mut analyzer.baseline_half_life_secs,
            secs(&file.baseline_half_life)?,
        ),
    ];
    for (slot, value) in knobs {
        if let Some(value) = value {
            *slot = value;
        }
    }
    let counts = [
        (
            &mut analyzer.min_samples_for_baseline,
            file.min_samples_for_baseline,
        ),
        (&mut analyzer.min_latency_samples, file.min_latency_samples),
        (&mut analyzer.min_error_count, file.min_error_count),
    ];
    for (slot, value) in counts {
        if let Some(value) = value {
            *slot = value;
        }
    }
    if let Some(cycles) = file.auto_resolve_cycles {
        config.auto_resolve_cycles = cycles;
    }
    let engine = config.engine_config();
    engine.validate().map_err(|err| err.to_string())?;
    Ok(engine)
}

/// A duration in the configuration file: a number of seconds, or a string such as `"500ms"`,
/// `"30s"`, `"2m"`, `"24h"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum DurationValue {
    /// Seconds.
    Seconds(f64),
    /// Text with a unit.
    Text(String),
}

impl DurationValue {
    /// The duration, or a message saying what is accepted.
    pub fn to_duration(&self) -> Result<Duration, String> {
        match self {
            Self::Seconds(secs) => seconds(*secs, &secs.to_string()),
            Self::Text(text) => parse_duration(text),
        }
    }
}

/// Parses `500ms`, `30s`, `2.5m`, `24h`, `7d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(duration_help(text)),
    };
    let value: f64 = number.trim().parse().map_err(|_| duration_help(text))?;
    seconds(value * scale, text)
}

fn seconds(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || !(0.0..=MAX_DURATION_SECS).contains(&secs) {
        return Err(duration_help(text));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn duration_help(text: &str) -> String {
    format!(
        "invalid duration {text:?}; accepted: a non-negative number of seconds, or a number \
         with a unit ms, s, m, h or d (e.g. 500ms, 30s, 2m, 24h), at most 365d"
    )
}

/// Parses an on/off switch: `on`/`off`, `true`/`false`, `yes`/`no`, `1`/`0`.
pub fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!(
            "invalid switch {text:?}; accepted: on, off, true, false, yes, no, 1, 0"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_durations_say_what_is_accepted() {
        for text in ["", "-1s", "NaN", "5 parsecs", "1e400", "400d", "ms"] {
            let error = parse_duration(text).expect_err(text);
            assert!(error.contains("accepted"), "{error}");
        }
    }

    #[test]
    fn switches_accept_common_spellings() {
        assert_eq!(parse_switch("OFF"), Ok(false));
        assert_eq!(parse_switch("on"), Ok(true));
        assert!(parse_switch("maybe").is_err());
    }

    #[test]
    fn config_file_rejects_unknown_fields() {
        let error = serde_json::from_str::<FileConfig>(r#"{"latency_multipler": 2}"#)
            .expect_err("typo must be rejected");
        assert!(error.to_string().contains("unknown field"), "{error}");
        let file: FileConfig =
            serde_json::from_str(r#"{"latency_multiplier": 2, "retention": "12h"}"#)
                .expect("valid file");
        assert_eq!(file.latency_multiplier, Some(2.0));
        assert_eq!(
            file.retention.map(|value| value.to_duration()),
            Some(Ok(Duration::from_secs(12 * 3600)))
        );
    }

    #[test]
    fn limits_are_validated() {
        assert!(IngestLimits::default().validate().is_ok());
        let inverted = IngestLimits {
            max_body_bytes: 1 << 20,
            max_decompressed_bytes: 1 << 19,
        };
        assert!(
            inverted
                .validate()
                .expect_err("inverted")
                .contains("accepted")
        );
    }
}
