//! `aiops replay --otlp-file FILE`: a post-mortem from recorded traces.
//!
//! The file holds OTLP JSON lines as the OpenTelemetry Collector's file exporter writes them,
//! one `ExportTraceServiceRequest` (`resourceSpans`) or `ExportLogsServiceRequest`
//! (`resourceLogs`) per line; traces and logs may share a file or come as two (repeat
//! `--otlp-file`). Every span and log record is read first (the exporter writes
//! batches in arrival order, not time order), then the spans are fed to the same
//! [`Engine`] the server runs, in order of their end time, on a virtual clock: each cycle runs at
//! `t`, after every span that ended by `t` was recorded, and `t` advances by the analysis
//! interval. Log records reach the log collectors of the replay ([`log_collectors`]) the same
//! way, by their time, before each cycle. Time comes from the data, never from the wall clock,
//! so a replay gives the same incidents every time, whenever it runs.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aiops_engine::{Engine, EngineConfig, EngineConfigError, Incident};
use aiops_telemetry_core::otlp::{self, OtlpDecodeError};
use aiops_telemetry_core::{LogCollector, LogRecord, Span};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::config::{Settings, SettingsError};
use crate::shop::table::SHOP_SERVICE;
use crate::views::format::{EndpointNaming, iso};
use crate::views::incident::Incident as IncidentView;

/// Options of `aiops replay`.
#[derive(Clone, Debug, Args)]
pub struct ReplayArgs {
    /// OTLP JSON lines file (one ExportTraceServiceRequest or ExportLogsServiceRequest per
    /// line), as the OpenTelemetry Collector's file exporter writes it; repeat the flag to read
    /// traces and logs from two files.
    #[arg(long, value_name = "FILE", required = true)]
    pub otlp_file: Vec<PathBuf>,

    /// Output: `json` prints {"incidents": [...]}, `text` a summary for people.
    #[arg(long, value_enum, default_value_t = ReplayFormat::Json)]
    pub format: ReplayFormat,

    /// JSON configuration file with the detection knobs (the same file `aiops serve --config`
    /// reads; options that only concern serving are ignored).
    #[arg(long, env = "AIOPS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ReplayArgs {
    /// The engine's configuration: the detection settings of `--config` (the defaults
    /// without it), validated.
    pub fn engine_config(&self) -> Result<EngineConfig, SettingsError> {
        let settings = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        settings.validate_detection()?;
        Ok(settings.engine_config())
    }
}

/// How `aiops replay` prints its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormat {
    /// `{"incidents": [...], "replay": {...}}`.
    Json,
    /// A human summary.
    Text,
}

/// Why a replay failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The file could not be read.
    #[error("replay: cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A line is not an OTLP JSON `ExportTraceServiceRequest` or `ExportLogsServiceRequest`.
    #[error("replay: line {line}: {error}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        error: OtlpDecodeError,
    },
    /// The file holds no usable span.
    #[error(
        "replay: the file holds no usable spans; accepted: OTLP JSON lines, one ExportTraceServiceRequest per line"
    )]
    NoSpans,
    /// The detection configuration is invalid.
    #[error("replay: {0}")]
    Config(#[from] EngineConfigError),
}

/// The spans and log records of a file, and what was rejected on the way.
#[derive(Clone, Debug, Default)]
pub struct RecordedSpans {
    /// Usable spans, in file order.
    pub spans: Vec<Span>,
    /// Usable log records, in file order.
    pub logs: Vec<LogRecord>,
    /// Log records rejected as unusable.
    pub rejected_logs: u64,
    /// Lines read (blank lines included).
    pub lines: usize,
    /// Spans rejected as unusable.
    pub rejected: u64,
    /// The first few rejection reasons.
    pub rejection_reasons: Vec<String>,
}

/// What a replay found.
#[derive(Clone, Debug)]
pub struct ReplayReport {
    /// Every incident opened, in order of detection, as the replay left it.
    pub incidents: Vec<Incident>,
    /// Spans replayed.
    pub spans: usize,
    /// Log records replayed.
    pub log_records: usize,
    /// Log records rejected as unusable.
    pub rejected_log_records: u64,
    /// Spans rejected as unusable.
    pub rejected: u64,
    /// The first few rejection reasons.
    pub rejection_reasons: Vec<String>,
    /// Analysis cycles run.
    pub cycles: u64,
    /// The virtual time of the first cycle, Unix nanoseconds.
    pub first_cycle_unix_nanos: u64,
    /// The virtual time of the last cycle, Unix nanoseconds.
    pub last_cycle_unix_nanos: u64,
}

/// Reads OTLP JSON lines; a malformed line is an error naming its number.
pub fn read_otlp_lines(reader: impl BufRead) -> Result<RecordedSpans, ReplayError> {
    let mut recorded = RecordedSpans::default();
    for (index, line) in reader.split(b'\n').enumerate() {
        let line_number = index + 1;
        let line = line.map_err(|error| ReplayError::Line {
            line: line_number,
            error: OtlpDecodeError::Json(error.to_string()),
        })?;
        recorded.lines = line_number;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let has_logs = contains(&line, b"\"resourceLogs\"");
        if has_logs {
            let request = otlp::decode_logs_json(&line).map_err(|error| ReplayError::Line {
                line: line_number,
                error,
            })?;
            let mapped = otlp::logs_from_request(&request);
            recorded.rejected_logs += mapped.rejected;
            for reason in mapped.errors {
                if recorded.rejection_reasons.len() < otlp::MAX_REJECTION_REASONS {
                    recorded
                        .rejection_reasons
                        .push(format!("line {line_number}: {reason}"));
                }
            }
            recorded.logs.extend(mapped.records);
            if !contains(&line, b"\"resourceSpans\"") {
                continue;
            }
        }
        let request = otlp::decode_json(&line).map_err(|error| ReplayError::Line {
            line: line_number,
            error,
        })?;
        let mapped = otlp::spans_from_request(&request);
        recorded.rejected += mapped.rejected;
        for reason in mapped.errors {
            if recorded.rejection_reasons.len() < otlp::MAX_REJECTION_REASONS {
                recorded
                    .rejection_reasons
                    .push(format!("line {line_number}: {reason}"));
            }
        }
        recorded.spans.extend(mapped.spans);
    }
    Ok(recorded)
}

/// Whether `needle` occurs in `line`.
fn contains(line: &[u8], needle: &[u8]) -> bool {
    line.windows(needle.len()).any(|window| window == needle)
}

/// Where a replay's log records go, in order: the one place where collectors of logs join
/// the replay: the engine's analysis of logs.
pub fn log_collectors(engine: &Engine) -> Vec<Arc<dyn LogCollector>> {
    vec![engine.log_collector()]
}

/// Replays `recorded` through a fresh engine on a virtual clock.
pub fn replay(recorded: RecordedSpans, config: EngineConfig) -> Result<ReplayReport, ReplayError> {
    let RecordedSpans {
        mut spans,
        mut logs,
        rejected,
        rejected_logs,
        rejection_reasons,
        ..
    } = recorded;
    if spans.is_empty() {
        return Err(ReplayError::NoSpans);
    }
    let interval = secs_to_nanos(config.analyzer.analysis_interval_secs).max(1);
    let mut engine = Engine::new(config)?;
    let collector = engine.collector();
    let log_sinks = log_collectors(&engine);
    logs.sort_by_key(|record| record.time_unix_nanos);
    let log_count = logs.len();
    let mut pending_logs = logs.into_iter().peekable();

    // A span reaches the engine when it ends, as it would from a live exporter.
    spans.sort_by_key(Span::end_unix_nanos);
    let span_count = spans.len();
    let first_end = spans[0].end_unix_nanos();
    // Cycles on multiples of the interval, as a server started at any moment would nearly run.
    let mut clock = (first_end / interval)
        .saturating_add(1)
        .saturating_mul(interval);
    let first_cycle = clock;
    let mut pending = spans.into_iter().peekable();
    let mut cycles = 0;
    loop {
        let mut batch = Vec::new();
        while let Some(span) = pending.next_if(|span| span.end_unix_nanos() <= clock) {
            batch.push(span);
        }
        if !batch.is_empty() {
            let _ = collector.record_batch(batch);
        }
        let mut records = Vec::new();
        while let Some(record) = pending_logs.next_if(|r| r.time_unix_nanos <= clock) {
            records.push(record);
        }
        if !records.is_empty() {
            for sink in &log_sinks {
                let _ = sink.record_logs_borrowed(&records);
            }
        }
        engine.run_cycle(clock);
        cycles += 1;
        if pending.peek().is_none() {
            break;
        }
        clock = clock.saturating_add(interval);
    }

    let mut incidents: Vec<Incident> = engine.incidents().all().into_iter().cloned().collect();
    incidents.sort_by(|a, b| {
        (a.first_detected_unix_nanos, &a.id).cmp(&(b.first_detected_unix_nanos, &b.id))
    });
    Ok(ReplayReport {
        incidents,
        spans: span_count,
        log_records: log_count,
        rejected_log_records: rejected_logs,
        rejected,
        rejection_reasons,
        cycles,
        first_cycle_unix_nanos: first_cycle,
        last_cycle_unix_nanos: clock,
    })
}

/// Reads `path` and replays it.
pub fn replay_file(path: &Path, config: EngineConfig) -> Result<ReplayReport, ReplayError> {
    replay_files(&[path.to_owned()], config)
}

/// Reads every file of `paths` (traces and logs, mixed or apart) and replays them together.
pub fn replay_files(paths: &[PathBuf], config: EngineConfig) -> Result<ReplayReport, ReplayError> {
    let mut recorded = RecordedSpans::default();
    for path in paths {
        let file = File::open(path).map_err(|error| ReplayError::Read {
            path: path.to_owned(),
            error,
        })?;
        let read = read_otlp_lines(BufReader::new(file))?;
        recorded.spans.extend(read.spans);
        recorded.logs.extend(read.logs);
        recorded.lines += read.lines;
        recorded.rejected += read.rejected;
        recorded.rejected_logs += read.rejected_logs;
        let room = otlp::MAX_REJECTION_REASONS.saturating_sub(recorded.rejection_reasons.len());
        recorded
            .rejection_reasons
            .extend(read.rejection_reasons.into_iter().take(room));
    }
    replay(recorded, config)
}

/// `{"incidents": [...], "replay": {...}}`, incidents in the HTTP API's shape.
pub fn to_json(report: &ReplayReport) -> Value {
    let naming = EndpointNaming::by_path(SHOP_SERVICE);
    let output = ReplayOutput {
        incidents: report
            .incidents
            .iter()
            .map(|incident| IncidentView::new(&naming, incident))
            .collect(),
        replay: ReplaySummary {
            spans: report.spans,
            rejected_spans: report.rejected,
            log_records: report.log_records,
            rejected_log_records: report.rejected_log_records,
            rejection_reasons: &report.rejection_reasons,
            cycles: report.cycles,
            first_cycle: iso(report.first_cycle_unix_nanos),
            last_cycle: iso(report.last_cycle_unix_nanos),
        },
    };
    serde_json::to_value(output).unwrap_or(Value::Null)
}

/// What `aiops replay --format json` prints.
#[derive(Serialize)]
struct ReplayOutput<'a> {
    incidents: Vec<IncidentView>,
    replay: ReplaySummary<'a>,
}

/// The replay's own figures.
#[derive(Serialize)]
struct ReplaySummary<'a> {
    spans: usize,
    rejected_spans: u64,
    log_records: usize,
    rejected_log_records: u64,
    rejection_reasons: &'a [String],
    cycles: u64,
    first_cycle: String,
    last_cycle: String,
}

/// A summary for people: one paragraph per incident.
pub fn to_text(report: &ReplayReport, source: &str) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Replayed {} spans and {} log records from {source} ({} and {} rejected) in {} cycles, {} to {}.",
        report.spans,
        report.log_records,
        report.rejected,
        report.rejected_log_records,
        report.cycles,
        iso(report.first_cycle_unix_nanos),
        iso(report.last_cycle_unix_nanos),
    );
    for reason in &report.rejection_reasons {
        let _ = writeln!(text, "  rejected: {reason}");
    }
    match report.incidents.len() {
        0 => text.push_str("No incidents.\n"),
        1 => text.push_str("1 incident:\n"),
        count => {
            let _ = writeln!(text, "{count} incidents:");
        }
    }
    for incident in &report.incidents {
        let cause = &incident.root_cause;
        let _ = writeln!(
            text,
            "\n{}  {}  {}  {}",
            incident.id,
            incident.severity.as_str(),
            if incident.is_active() {
                "active"
            } else {
                "resolved"
            },
            incident.title
        );
        let _ = writeln!(
            text,
            "  root cause:  {} {} ({}, confidence {:.2})",
            cause.service,
            cause.endpoint,
            cause.kind.as_str(),
            cause.confidence
        );
        let _ = writeln!(text, "               {}", cause.description);
        let candidates: Vec<String> = cause
            .candidates
            .iter()
            .enumerate()
            .map(|(rank, candidate)| {
                format!(
                    "{}. {} {} ({:.2})",
                    rank + 1,
                    candidate.service,
                    candidate.endpoint,
                    candidate.score
                )
            })
            .collect();
        let _ = writeln!(text, "  candidates:  {}", candidates.join("  "));
        let affected: Vec<String> = incident
            .affected_endpoints
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ = writeln!(text, "  affected:    {}", affected.join(", "));
        let _ = writeln!(
            text,
            "  detected:    {}, last updated {}, {} alerts",
            iso(incident.first_detected_unix_nanos),
            iso(incident.last_updated_unix_nanos),
            incident.alert_count
        );
    }
    text
}

/// `aiops replay`: replays the file with `config` ([`ReplayArgs::engine_config`]) and prints
/// the report to standard output.
pub fn run(args: &ReplayArgs, config: EngineConfig) -> anyhow::Result<()> {
    let report = replay_files(&args.otlp_file, config)?;
    let mut out = std::io::stdout().lock();
    let source: Vec<String> = args
        .otlp_file
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    print(&report, args.format, &source.join(" and "), &mut out)?;
    Ok(())
}

/// Writes `report` in `format`; `source` names the file in the text summary.
pub fn print(
    report: &ReplayReport,
    format: ReplayFormat,
    source: &str,
    out: &mut impl Write,
) -> std::io::Result<()> {
    match format {
        ReplayFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &to_json(report))?;
            writeln!(out)
        }
        ReplayFormat::Text => out.write_all(to_text(report, source).as_bytes()),
    }
}

fn secs_to_nanos(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        (secs * 1e9).min(u64::MAX as f64) as u64
    } else {
        0
    }
}
