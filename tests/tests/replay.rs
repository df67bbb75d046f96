//! `aiops replay`: a recorded multi-service slowdown, replayed on the data's own clock.

use std::io::Write;

use aiops_e2e::otlp_system::{FIXTURE_EPOCH_UNIX_NANOS, Fault, Scenario, replay_lines};
use aiops_server::Settings;
use aiops_server::tools::replay::{ReplayFormat, print, replay_file, replay_files, to_json};
use tempfile::NamedTempFile;

fn file_of(lines: &[String]) -> NamedTempFile {
    let mut file = NamedTempFile::new().expect("temporary file");
    for line in lines {
        writeln!(file, "{line}").expect("written");
    }
    file
}

#[test]
fn a_recorded_payments_slowdown_replays_to_one_incident_rooted_at_payments() {
    // Arrange
    let file = file_of(&replay_lines(7, &Scenario::payments_latency()));

    // Act
    let report = replay_file(file.path(), Settings::default().engine_config()).expect("replays");

    // Assert
    let json = to_json(&report);
    let incidents = json["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 1, "{json:#}");
    let cause = &incidents[0]["root_cause"];
    assert_eq!(cause["service"], "payments", "{json:#}");
    assert_eq!(cause["kind"], "latency_spike", "{json:#}");
    assert!(
        cause["confidence"].as_f64().is_some_and(|c| c > 0.5),
        "{json:#}"
    );
    assert_eq!(cause["candidates"][0]["service"], "payments", "{json:#}");
    assert_eq!(json["replay"]["spans"], 1800);
    assert_eq!(json["replay"]["rejected_spans"], 0);
}

#[test]
fn an_error_storm_in_inventory_is_rooted_at_inventory() {
    let scenario = Scenario {
        fault: Some(Fault::Errors {
            service: "inventory",
            rate: 0.8,
        }),
        ..Scenario::payments_latency()
    };
    let file = file_of(&replay_lines(11, &scenario));

    let report = replay_file(file.path(), Settings::default().engine_config()).expect("replays");

    let json = to_json(&report);
    let incidents = json["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 1, "{json:#}");
    assert_eq!(
        incidents[0]["root_cause"]["service"], "inventory",
        "{json:#}"
    );
    assert_eq!(
        incidents[0]["root_cause"]["kind"], "error_storm",
        "{json:#}"
    );
}

#[test]
fn replays_are_deterministic() {
    let file = file_of(&replay_lines(7, &Scenario::payments_latency()));
    let config = Settings::default().engine_config();

    let first = to_json(&replay_file(file.path(), config.clone()).expect("replays"));
    let second = to_json(&replay_file(file.path(), config).expect("replays"));

    assert_eq!(first, second);
}

#[test]
fn text_summary_names_the_root_cause_and_its_runners_up() {
    let file = file_of(&replay_lines(7, &Scenario::payments_latency()));
    let report = replay_file(file.path(), Settings::default().engine_config()).expect("replays");

    let mut out = Vec::new();
    print(&report, ReplayFormat::Text, "recording.jsonl", &mut out).expect("printed");

    let text = String::from_utf8(out).expect("UTF-8");
    assert!(
        text.starts_with("Replayed 1800 spans and 0 log records from recording.jsonl"),
        "{text}"
    );
    assert!(
        text.contains("root cause:  payments POST /charge (latency_spike"),
        "{text}"
    );
    assert!(
        text.contains("candidates:  1. payments POST /charge"),
        "{text}"
    );
}

#[test]
fn a_malformed_line_is_an_error_naming_its_number() {
    let mut lines = replay_lines(7, &Scenario::payments_latency());
    lines.truncate(3);
    lines[1] = r#"{"resourceSpans": [{"scopeSpans": "#.to_owned();
    let file = file_of(&lines);

    let error = replay_file(file.path(), Settings::default().engine_config())
        .expect_err("line 2 is malformed");

    let message = error.to_string();
    assert!(
        message.starts_with("replay: line 2: otlp: invalid JSON"),
        "{message}"
    );
}

#[test]
fn a_file_without_spans_is_an_error() {
    let file = file_of(&["".to_owned(), "{}".to_owned()]);
    let error =
        replay_file(file.path(), Settings::default().engine_config()).expect_err("no spans");
    assert!(error.to_string().contains("no usable spans"), "{error}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let error = replay_file(
        std::path::Path::new("/nonexistent/recording.jsonl"),
        Settings::default().engine_config(),
    )
    .expect_err("missing");
    assert!(
        error.to_string().contains("/nonexistent/recording.jsonl"),
        "{error}"
    );
}

/// OTLP JSON lines of `count` log records of `pricing`, one a second from the first span's
/// time, the last of them without a time (rejected).
fn log_lines(first_unix_nanos: u64, count: u64) -> Vec<String> {
    let mut records: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            serde_json::json!({
                "timeUnixNano": (first_unix_nanos + i * 1_000_000_000).to_string(),
                "severityNumber": 17,
                "body": {"stringValue": format!("lookup {i} failed")}
            })
        })
        .collect();
    records.push(serde_json::json!({"body": {"stringValue": "no time"}}));
    vec![
        serde_json::json!({"resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "pricing"}}]},
            "scopeLogs": [{"logRecords": records}]
        }]})
        .to_string(),
    ]
}

#[test]
fn log_lines_are_read_from_a_mixed_file_or_from_a_second_file() {
    let traces = replay_lines(7, &Scenario::payments_latency());
    let logs = log_lines(FIXTURE_EPOCH_UNIX_NANOS + 160_000_000_000, 5);
    let config = Settings::default().engine_config();

    let mixed = file_of(&[traces.clone(), logs.clone()].concat());
    let together = to_json(&replay_file(mixed.path(), config.clone()).expect("replays"));
    let (trace_file, log_file) = (file_of(&traces), file_of(&logs));
    let apart = to_json(
        &replay_files(
            &[trace_file.path().to_owned(), log_file.path().to_owned()],
            config,
        )
        .expect("replays"),
    );

    for json in [&together, &apart] {
        assert_eq!(json["replay"]["spans"], 1800, "{json:#}");
        assert_eq!(json["replay"]["log_records"], 5, "{json:#}");
        assert_eq!(json["replay"]["rejected_log_records"], 1, "{json:#}");
        assert_eq!(json["incidents"].as_array().map(Vec::len), Some(1));
    }
    assert_eq!(together["incidents"], apart["incidents"]);
}
