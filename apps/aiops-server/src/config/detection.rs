//! `detection`: what counts as an anomaly, and how often the analysis runs. These keep the
//! names and meaning of the original prototype's knobs (`LATENCY_MULTIPLIER`,
//! `ERROR_RATE_THRESHOLD`, `MIN_SAMPLES_FOR_BASELINE`, `ANALYSIS_WINDOW_MINUTES`), plus what
//! robust detection needs on real traffic. The section builds the engine's configuration.

use std::time::Duration;

use aiops_analyzer::{Config as AnalyzerConfig, ConfigError};
use aiops_engine::{EngineConfig, EngineConfigError, EvidenceConfig};
use clap::{ArgAction, Args};
use serde::{Deserialize, Serialize};

use super::error::{Origins, SettingsError};
use super::human::{self, format_duration, parse_duration, parse_millis, parse_switch};

/// The detection knobs. Their defaults are the engine's ([`EngineConfig::default`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Detection")]
pub struct Detection {
    /// A latency spike needs the window's mean latency at least this many times the baseline
    /// mean; more than 1, and lower is more sensitive [default: 3.0].
    #[arg(long, value_name = "X")]
    pub latency_multiplier: f64,

    /// An error storm needs at least this share of the window's requests to fail, in (0, 1]
    /// [default: 0.2].
    #[arg(long, value_name = "RATE")]
    pub error_rate_threshold: f64,

    /// Requests an endpoint's baseline learns from before it is used; at least 1
    /// [default: 10].
    #[arg(long, value_name = "N")]
    pub min_samples_for_baseline: u64,

    /// How much recent traffic each cycle judges, e.g. 30s or 2m [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub analysis_window: Duration,

    /// How often the background cycle runs, no longer than the window; a drop in an
    /// endpoint's calls must also stay significant this long before it is reported
    /// [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub analysis_interval: Duration,

    /// Between cycles, look for new anomalies once a second (detectors only, on the live
    /// window) and run the cycle at once when one shows; off, detection waits for the next
    /// interval [default: on].
    #[arg(long, value_name = "on|off", action = ArgAction::Set, value_parser = parse_switch)]
    #[serde(with = "human::switch")]
    pub early_detection: bool,

    /// A latency spike also needs the mean this much above the baseline, so that a 1 ms
    /// endpoint going to 4 ms pages nobody; a bare number is milliseconds [default: 20ms].
    #[arg(long = "min-latency-increase-ms", value_name = "MS", value_parser = parse_millis)]
    #[serde(alias = "min_latency_increase_ms", with = "human::millis")]
    pub min_latency_increase: Duration,

    /// A latency spike needs at least this many requests in the window [default: 5].
    #[arg(long, value_name = "N")]
    pub min_latency_samples: u64,

    /// An error storm needs at least this many failing requests in the window, and a timeout
    /// anomaly this many timed-out ones [default: 5].
    #[arg(long, value_name = "N")]
    pub min_error_count: u64,

    /// A request slower than this counts as a timeout; a bare number is milliseconds
    /// [default: 5s].
    #[arg(long = "timeout-ms", value_name = "MS", value_parser = parse_millis)]
    #[serde(alias = "timeout_ms", with = "human::millis")]
    pub timeout: Duration,

    /// Baselines forget old traffic with this half-life, following slow drift; they freeze
    /// while an endpoint is anomalous, so a fault is never learned as normal [default: 30m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub baseline_half_life: Duration,

    /// An incident resolves itself once its endpoints have been healthy for this many
    /// consecutive cycles; 0 never [default: 3].
    #[arg(long, value_name = "N")]
    pub auto_resolve_cycles: u32,

    /// A fault that returns within this time after its incident resolved reopens that
    /// incident instead of opening a new one; 0s never, at most 7d [default: 0s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub reopen_window: Duration,

    /// An incident resolves itself only once its cause has been gone this long (besides the
    /// healthy cycles), so a fault that comes and goes stays one incident: a fault toggling
    /// every 30s is one incident with a hold of 1m; at most 7d [default: 0s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub resolve_hold: Duration,

    /// Also test the traces read every cycle for shifts of an endpoint's own time too small
    /// for a spike (`latency_shift`) and for calls an endpoint stopped making (`call_drop`)
    /// [default: on].
    #[arg(long, value_name = "on|off", action = ArgAction::Set, value_parser = parse_switch)]
    #[serde(with = "human::switch")]
    pub trace_detection: bool,

    /// How long after a request began its trace is taken as complete for learning and the
    /// trace tests (at least one interval): exporters hold spans a few seconds, and a trace
    /// read too early makes callers look slow [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub trace_settle: Duration,

    /// A deployment of an incident's root-cause service is blamed only when it came at most
    /// this long before the incident was detected; older changes belong to the baseline
    /// [default: 15m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub deployment_lookback: Duration,

    /// Log templates kept per service; messages that fit none beyond it count as the
    /// service's `_other` template; at least 1 [default: 200].
    #[arg(long, value_name = "N")]
    pub log_templates_per_service: usize,
}

impl Default for Detection {
    fn default() -> Self {
        let engine = EngineConfig::default();
        let analyzer = engine.analyzer;
        Self {
            latency_multiplier: analyzer.latency_multiplier,
            error_rate_threshold: analyzer.error_rate_threshold,
            min_samples_for_baseline: analyzer.min_samples_for_baseline,
            analysis_window: Duration::from_secs_f64(analyzer.analysis_window_secs),
            analysis_interval: Duration::from_secs_f64(analyzer.analysis_interval_secs),
            early_detection: true,
            min_latency_increase: Duration::from_secs_f64(analyzer.min_latency_increase_ms / 1e3),
            min_latency_samples: analyzer.min_latency_samples,
            min_error_count: analyzer.min_error_count,
            timeout: Duration::from_secs_f64(analyzer.timeout_ms / 1e3),
            baseline_half_life: Duration::from_secs_f64(analyzer.baseline_half_life_secs),
            auto_resolve_cycles: engine.auto_resolve_cycles,
            reopen_window: Duration::from_secs_f64(engine.reopen_window_secs),
            resolve_hold: Duration::from_secs_f64(engine.resolve_hold_secs),
            trace_detection: engine.trace_detection,
            trace_settle: Duration::from_secs_f64(engine.trace_settle_secs),
            deployment_lookback: Duration::from_secs_f64(engine.evidence.deployment_lookback_secs),
            log_templates_per_service: engine.evidence.log_templates_per_service,
        }
    }
}

impl Detection {
    /// The analysis engine's configuration: these knobs over the engine's defaults, with live
    /// buckets of a second (or the whole window, when it is shorter).
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            analyzer: AnalyzerConfig {
                latency_multiplier: self.latency_multiplier,
                error_rate_threshold: self.error_rate_threshold,
                min_samples_for_baseline: self.min_samples_for_baseline,
                analysis_window_secs: self.analysis_window.as_secs_f64(),
                analysis_interval_secs: self.analysis_interval.as_secs_f64(),
                min_latency_increase_ms: self.min_latency_increase.as_secs_f64() * 1e3,
                min_latency_samples: self.min_latency_samples,
                min_error_count: self.min_error_count,
                timeout_ms: self.timeout.as_secs_f64() * 1e3,
                baseline_half_life_secs: self.baseline_half_life.as_secs_f64(),
            },
            auto_resolve_cycles: self.auto_resolve_cycles,
            reopen_window_secs: self.reopen_window.as_secs_f64(),
            resolve_hold_secs: self.resolve_hold.as_secs_f64(),
            live_bucket_secs: self.analysis_window.as_secs_f64().min(1.0),
            trace_detection: self.trace_detection,
            trace_settle_secs: self.trace_settle.as_secs_f64(),
            evidence: EvidenceConfig {
                deployment_lookback_secs: self.deployment_lookback.as_secs_f64(),
                log_templates_per_service: self.log_templates_per_service,
                ..EvidenceConfig::default()
            },
            ..EngineConfig::default()
        }
    }

    /// Checks the knobs as the engine does, naming a refused one by its option.
    pub(super) fn validate(&self, origins: &Origins) -> Result<(), SettingsError> {
        let refused = match self.engine_config().validate() {
            Ok(()) => return Ok(()),
            Err(refused) => refused,
        };
        let (option, accepted) = match &refused {
            EngineConfigError::Analyzer(ConfigError::OutOfRange {
                field, accepted, ..
            }) => (option_of(field), (*accepted).to_owned()),
            EngineConfigError::Analyzer(ConfigError::IntervalExceedsWindow { .. }) => (
                "analysis_interval",
                format!(
                    "at most the analysis window ({})",
                    format_duration(self.analysis_window)
                ),
            ),
            EngineConfigError::OutOfRange {
                field, accepted, ..
            } if matches!(*field, "reopen_window_secs" | "resolve_hold_secs") => {
                (option_of(field), (*accepted).to_owned())
            }
            EngineConfigError::OutOfRange {
                field, accepted, ..
            } if field.starts_with("evidence.") => {
                let option = match *field {
                    "evidence.deployment_lookback_secs" => "deployment_lookback",
                    "evidence.log_templates_per_service" => "log_templates_per_service",
                    _ => return Err(SettingsError::Engine(refused)),
                };
                (option, (*accepted).to_owned())
            }
            _ => return Err(SettingsError::Engine(refused)),
        };
        let value = self
            .value_of(option)
            .ok_or(SettingsError::Engine(refused))?;
        Err(SettingsError::out_of_range(
            option, value, origins, accepted,
        ))
    }

    /// The value of `option`, as people write it.
    fn value_of(&self, option: &str) -> Option<String> {
        let tree = serde_json::to_value(self).ok()?;
        tree.get(option).map(human::render_value)
    }
}

/// The option behind an analyzer knob: the knob's name without its unit.
fn option_of(knob: &str) -> &str {
    knob.strip_suffix("_secs")
        .or_else(|| knob.strip_suffix("_ms"))
        .unwrap_or(knob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_tests_can_be_switched_off_and_their_settle_time_set() {
        let detection: Detection =
            serde_json::from_str(r#"{"trace_detection": "off", "trace_settle": "20s"}"#)
                .expect("valid section");

        let engine = detection.engine_config();

        assert!(!engine.trace_detection);
        assert_eq!(engine.trace_settle_secs, 20.0);
        assert!(Detection::default().engine_config().trace_detection);
    }

    #[test]
    fn reopening_and_the_resolve_hold_reach_the_engine_and_are_bounded() {
        let detection: Detection =
            serde_json::from_str(r#"{"reopen_window": "5m", "resolve_hold": "90s"}"#)
                .expect("valid section");
        let engine = detection.engine_config();
        assert_eq!(engine.reopen_window_secs, 300.0);
        assert_eq!(engine.resolve_hold_secs, 90.0);

        let detection: Detection =
            serde_json::from_str(r#"{"resolve_hold": "8d"}"#).expect("a duration");
        let error = detection
            .validate(&Origins::default())
            .expect_err("too long");
        assert_eq!(
            error.to_string(),
            "invalid resolve_hold 192h; accepted: 0 to 7 days"
        );
    }

    #[test]
    fn the_deployment_lookback_and_the_template_cap_reach_the_engine() {
        let detection: Detection = serde_json::from_str(
            r#"{"deployment_lookback": "5m", "log_templates_per_service": 50}"#,
        )
        .expect("valid section");
        let engine = detection.engine_config();
        assert_eq!(engine.evidence.deployment_lookback_secs, 300.0);
        assert_eq!(engine.evidence.log_templates_per_service, 50);

        let detection: Detection =
            serde_json::from_str(r#"{"log_templates_per_service": 0}"#).expect("a number");
        let error = detection
            .validate(&Origins::default())
            .expect_err("no templates");
        assert!(
            error.to_string().contains("log_templates_per_service"),
            "{error}"
        );
    }
}
