//! The exposition's families, names and labels.

use super::*;
use crate::pipeline::span_metrics::DurationHistogram;

fn sample() -> Scrape {
    let histogram = DurationHistogram::default();
    histogram.observe_nanos(30_000_000);
    histogram.observe_nanos(3_000_000_000);
    Scrape {
        endpoints: vec![EndpointSnapshot {
            service: "shop".into(),
            endpoint: "GET /items/{id} \"quoted\"".into(),
            errors: 1,
            duration: histogram.snapshot(),
        }],
        pipeline: PipelineStats {
            ingested: 2,
            dropped: 0,
            queued: 5,
            written: 1,
            write_failed: 0,
            queue_capacity: 65_536,
        },
        spans_rejected: 3,
        refusals: vec![(RefusalReason::QueueFull, 2)],
        folded_spans: 0,
        analysis: Some(AnalysisSnapshot {
            cycles: 4,
            early_cycles: 1,
            cycle_duration: histogram.snapshot(),
            untracked_spans: 7,
            active_incidents: vec![(Severity::High, 1), (Severity::Low, 0)],
            baselines: vec![BaselineGauges {
                service: "shop".into(),
                endpoint: "/payment".into(),
                mean_seconds: 0.18,
                p95_seconds: 0.25,
                error_ratio: 0.01,
                samples: 120,
            }],
        }),
        process: ProcessStats {
            resident_memory_bytes: Some(50 << 20),
            cpu_seconds: Some(1.5),
            open_fds: Some(12),
            max_fds: Some(1024),
        },
        started_unix_nanos: 1_700_000_000_000_000_000,
        receivers: vec![ReceiverStats {
            name: "alertmanager-1".into(),
            kind: "alertmanager",
            sent: 9,
            failed: 1,
            retries: 2,
            dropped: 0,
        }],
        incident_updates_dropped: 0,
        logs: LogStats {
            accepted: 11,
            rejected: 1,
            ..LogStats::default()
        },
        log_refusals: vec![(RefusalReason::QueueFull, 4)],
    }
}

#[test]
fn exposition_names_every_family_with_its_unit_and_suffix() {
    let text = sample().encode().expect("encodes");
    for name in [
        "# TYPE aiops_requests_total counter",
        "# TYPE aiops_request_errors_total counter",
        "# TYPE aiops_request_duration_seconds histogram",
        "# TYPE aiops_spans_ingested_total counter",
        "# TYPE aiops_spans_dropped_total counter",
        "# TYPE aiops_spans_rejected_total counter",
        "# TYPE aiops_span_queue_depth gauge",
        "# TYPE aiops_analysis_cycle_duration_seconds histogram",
        "# TYPE aiops_spans_untracked_total counter",
        "# TYPE aiops_incidents_active gauge",
        "# TYPE aiops_baseline_latency_mean_seconds gauge",
        "# TYPE aiops_baseline_error_ratio gauge",
        "# TYPE aiops_build_info gauge",
        "# TYPE process_cpu_seconds_total counter",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_open_fds gauge",
        "# TYPE process_max_fds gauge",
        "# TYPE process_start_time_seconds gauge",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    assert!(text.contains("\naiops_spans_untracked_total 7\n"), "{text}");
    assert!(
        text.contains("\nprocess_resident_memory_bytes 52428800\n"),
        "{text}"
    );
    assert!(text.contains("\nprocess_cpu_seconds_total 1.5\n"), "{text}");
    assert!(
        text.contains(&format!(
            "\naiops_build_info{{version=\"{}\",commit=\"{}\"}} 1\n",
            crate::build_info::VERSION,
            crate::build_info::COMMIT
        )),
        "{text}"
    );
    assert!(
        text.contains("\naiops_ingest_refused_requests_total{reason=\"queue_full\"} 2\n"),
        "{text}"
    );
    for line in [
        "\naiops_log_records_accepted_total 11\n",
        "\naiops_log_records_rejected_total 1\n",
        "# TYPE aiops_log_queue_depth gauge",
        "\naiops_log_ingest_refused_requests_total{reason=\"queue_full\"} 4\n",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(
        text.contains(
            "aiops_notifications_sent_total{receiver=\"alertmanager-1\",kind=\"alertmanager\"} 9"
        ),
        "{text}"
    );
    assert!(text.contains("# TYPE aiops_notification_retries_total counter"));
    assert!(text.contains("\naiops_incident_updates_dropped_total 0\n"));
    assert!(text.contains(
        "aiops_request_duration_seconds_bucket{service=\"shop\",endpoint=\"GET /items/{id} \\\"quoted\\\"\",le=\"0.05\"} 1"
    ), "{text}");
    assert!(
        text.contains("aiops_incidents_active{severity=\"high\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("aiops_baseline_samples{service=\"shop\",endpoint=\"/payment\"} 120"),
        "{text}"
    );
}

#[test]
fn exposition_without_the_analysis_part_still_encodes() {
    let scrape = Scrape {
        analysis: None,
        ..sample()
    };
    let text = scrape.encode().expect("encodes");
    assert!(!text.contains("aiops_incidents_active"));
    assert!(text.contains("aiops_spans_ingested_total 2"));
}
