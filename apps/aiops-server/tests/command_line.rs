//! The `aiops` binary's answers to settings it cannot use: a usage error (exit status 2) whose
//! message names the file, key, flag or variable at fault. Every case here is refused before
//! the server binds or opens anything.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use tempfile::NamedTempFile;

/// `aiops` with `args` and `variables`, and none of the caller's `AIOPS_*` variables.
fn aiops(args: &[&str], variables: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aiops"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("AIOPS_")) {
        command.env_remove(name);
    }
    command
        .args(args)
        .envs(variables.iter().copied())
        .output()
        .expect("aiops runs")
}

/// Runs `aiops`, expecting a usage error; its message.
fn refusal(args: &[&str], variables: &[(&str, &str)]) -> String {
    let output = aiops(args, variables);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    stderr
}

fn file_with(extension: &str, text: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(extension)
        .tempfile()
        .expect("temporary file");
    file.write_all(text.as_bytes()).expect("written");
    file
}

fn path(file: &NamedTempFile) -> &str {
    file.path().to_str().expect("utf-8 path")
}

#[test]
fn a_toml_file_is_refused_as_not_json() {
    // Arrange
    let file = file_with(".toml", "latency_multiplier = 2.0\n");

    // Act
    let message = refusal(&["--config", path(&file)], &[]);

    // Assert
    let expected = format!(
        "error: the configuration file {} must be JSON: expected value at line 1 column 1",
        path(&file)
    );
    assert!(message.starts_with(&expected), "{message}");
}

#[test]
fn an_unknown_key_is_named_with_the_closest_and_the_accepted_keys() {
    // Arrange
    let top = file_with(".json", r#"{"latency_multipler": 2}"#);
    let nested = file_with(".json", r#"{"detection": {"latency_multipler": 2}}"#);

    // Act
    let top_message = refusal(&["--config", path(&top)], &[]);
    let nested_message = refusal(&["--config", path(&nested)], &[]);

    // Assert
    let expected = format!(
        "error: unknown key `latency_multipler` in the configuration file {} (did you mean \
         `latency_multiplier`?); accepted: http, detection, storage, shop, notify, log, bind, workers,",
        path(&top)
    );
    assert!(top_message.starts_with(&expected), "{top_message}");
    let expected = format!(
        "error: unknown key `detection.latency_multipler` in the configuration file {} (did you \
         mean `latency_multiplier`?); accepted: latency_multiplier, error_rate_threshold,",
        path(&nested)
    );
    assert!(nested_message.starts_with(&expected), "{nested_message}");
}

#[test]
fn a_value_of_the_wrong_form_is_named_by_its_key() {
    // Arrange
    let file = file_with(
        ".json",
        r#"{"detection": {"analysis_window": "2 minutes"}}"#,
    );

    // Act
    let message = refusal(&["--config", path(&file)], &[]);

    // Assert
    let expected = format!(
        "error: invalid `detection.analysis_window` in the configuration file {}: invalid \
         duration \"2 minutes\"; accepted:",
        path(&file)
    );
    assert!(message.starts_with(&expected), "{message}");
}

#[test]
fn the_variable_wins_over_the_file_and_the_flag_over_the_variable() {
    // Arrange: each layer sets a retention too short, so the refusal says which one won.
    let file = file_with(".json", r#"{"retention": "10s"}"#);
    let config = ["--config", path(&file)];
    let variable = [("AIOPS_RETENTION", "20s")];

    // Act
    let from_file = refusal(&config, &[]);
    let from_variable = refusal(&config, &variable);
    let from_flag = refusal(&[&config[..], &["--retention", "30s"]].concat(), &variable);

    // Assert
    let expected = format!(
        "error: invalid retention 10s (from `retention` in the configuration file {}); \
         accepted: at least 1m (e.g. 24h)",
        path(&file)
    );
    assert!(from_file.starts_with(&expected), "{from_file}");
    assert!(
        from_variable.starts_with("error: invalid retention 20s (from AIOPS_RETENTION);"),
        "{from_variable}"
    );
    assert!(
        from_flag.starts_with("error: invalid retention 30s (from --retention);"),
        "{from_flag}"
    );
}

#[test]
fn a_file_of_earlier_versions_keeps_its_meaning() {
    // Arrange: `timeout_ms` is in milliseconds, at the top level.
    let file = file_with(".json", r#"{"timeout_ms": 0, "latency_multiplier": 2}"#);

    // Act
    let message = refusal(&["--config", path(&file)], &[]);

    // Assert
    let expected = format!(
        "error: invalid timeout 0s (from `timeout_ms` in the configuration file {}); accepted:",
        path(&file)
    );
    assert!(message.starts_with(&expected), "{message}");
}

#[test]
fn replay_refuses_a_bad_configuration_file_as_a_usage_error() {
    // Arrange
    let file = file_with(".yaml", "detection:\n  latency_multiplier: 2\n");

    // Act
    let message = refusal(
        &[
            "replay",
            "--otlp-file",
            "missing.jsonl",
            "--config",
            path(&file),
        ],
        &[],
    );

    // Assert
    let expected = format!(
        "error: the configuration file {} must be JSON:",
        path(&file)
    );
    assert!(message.starts_with(&expected), "{message}");
}

#[test]
fn help_states_each_option_with_its_variable_and_default() {
    // Act
    let output = aiops(&["--help"], &[]);

    // Assert
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = help.lines().collect();
    let at = lines
        .iter()
        .position(|line| {
            line.trim_start()
                .starts_with("--analysis-interval <DURATION>")
        })
        .expect("--analysis-interval is listed");
    // bench/run.sh reads the interval from the line after the flag.
    assert!(lines[at + 1].contains("[default: 5s]"), "{}", lines[at + 1]);
    assert!(help.contains("[env: AIOPS_ANALYSIS_INTERVAL=]"), "{help}");
    for flag in [
        "--no-chaos",
        "--no-telemetry",
        "--config <FILE>",
        "--timeout-ms <MS>",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_missing_configuration_file_is_named() {
    let missing = Path::new("/nonexistent/aiops.json");
    let message = refusal(&["--config", missing.to_str().expect("utf-8")], &[]);
    assert!(
        message.starts_with("error: cannot read the configuration file /nonexistent/aiops.json:"),
        "{message}"
    );
}

#[test]
fn a_database_in_use_by_another_process_exits_with_status_3_and_says_so() {
    // Arrange: a store holds the database, as a running server would.
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("aiops.db");
    let _running = aiops_storage_sqlite::Store::open(aiops_storage_sqlite::StoreConfig::new(&db))
        .expect("opens");

    // Act
    let output = aiops(
        &["--db", db.to_str().expect("utf-8"), "--bind", "127.0.0.1:0"],
        &[],
    );

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "storage: the database {} is in use by another aiops process",
            db.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_bind_address_without_a_port_is_a_usage_error() {
    let message = refusal(&["--bind", "127.0.0.1"], &[]);
    assert!(
        message.contains("\"127.0.0.1\"") && message.contains("HOST:PORT"),
        "{message}"
    );
    let message = refusal(&[], &[("AIOPS_BIND", "localhost:99999")]);
    assert!(message.contains("AIOPS_BIND"), "{message}");
}

#[test]
fn version_names_the_commit() {
    let output = aiops(&["--version"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.starts_with(&format!("aiops {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
}

#[cfg(unix)]
#[test]
fn sighup_is_logged_and_ignored_and_sigterm_still_stops_cleanly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("aiops.db");
    let mut server = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["--bind", "127.0.0.1:0", "--warmup-requests", "0", "--db"])
        .arg(&db)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("aiops starts");
    let mut log = BufReader::new(server.stderr.take().expect("stderr"));
    let mut next_line = move || {
        let mut line = String::new();
        log.read_line(&mut line).expect("reads the log");
        assert!(!line.is_empty(), "the log ended");
        line
    };
    while !next_line().contains("Listening.") {}
    // "Listening." is logged once the signal handlers are in place.
    let pid = server.id().to_string();
    let signal = |name: &str| {
        let status = Command::new("kill")
            .args([name, pid.as_str()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    };
    signal("-HUP");
    while !next_line().contains("signal=SIGHUP") {}
    assert!(server.try_wait().expect("polls").is_none(), "still serving");

    signal("-TERM");
    let status = server.wait().expect("waits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn log_format_json_writes_one_object_per_line_with_the_line_s_fields() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args([
            "--log-format",
            "json",
            "--bind",
            "127.0.0.1:0",
            "--warmup-requests",
            "0",
            "--db",
        ])
        .arg(dir.path().join("aiops.db"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("aiops starts");
    let mut log = BufReader::new(server.stderr.take().expect("stderr"));
    let listening = loop {
        let mut line = String::new();
        log.read_line(&mut line).expect("reads the log");
        assert!(!line.is_empty(), "the log ended");
        let object: serde_json::Value = serde_json::from_str(&line).expect("each line is JSON");
        if object["message"] == "Listening." {
            break object;
        }
    };
    server.kill().expect("stops");
    let _ = server.wait();

    assert_eq!(listening["level"], "INFO");
    assert!(
        listening["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:"))
    );
    assert_eq!(listening["demo"], "on");
    assert!(listening["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')));
}

#[test]
fn receivers_come_comma_separated_from_the_variable_and_bad_ones_are_named() {
    // Act: the second of two Alertmanagers is not an http:// URL.
    let message = refusal(
        &[],
        &[(
            "AIOPS_ALERTMANAGER_URL",
            "http://am-1:9093,ftp://operator:hunter2@am-2:9093",
        )],
    );

    // Assert: the variable was split, the second URL is named, its password is not.
    assert!(
        message.starts_with(
            "error: invalid alertmanager_url ftp://am-2:9093/ (from AIOPS_ALERTMANAGER_URL); \
             accepted: an http:// URL"
        ),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}
