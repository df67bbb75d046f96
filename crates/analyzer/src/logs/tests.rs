use aiops_telemetry_core::{LogRecord, LogSeverity};
use proptest::prelude::*;

use super::*;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;

fn info(service: &str, at: u64, body: String) -> LogRecord {
    LogRecord::new(service.to_owned(), at, LogSeverity::INFO, body)
}

/// `seconds` of steady traffic: two templates, one record each per second.
fn steady(patterns: &mut LogPatterns, from: u64, seconds: u64) {
    for s in from..from + seconds {
        let at = T0 + s * SEC;
        patterns.observe(&info("cart", at, format!("cart {s} updated")), None);
        patterns.observe(&info("cart", at, format!("GET /cart/{s} 200")), None);
        if s % 5 == 4 {
            let found = patterns.assess(at + SEC, 30 * SEC);
            assert!(found.is_empty(), "steady logs raise nothing: {found:?}");
        }
    }
}

#[test]
fn a_known_template_whose_rate_rises_is_reported_and_a_steady_one_is_not() {
    let mut patterns = LogPatterns::new(LogPatternConfig::default());
    steady(&mut patterns, 0, 300);
    for s in 300..330 {
        for i in 0..10 {
            let at = T0 + s * SEC + i;
            patterns.observe(
                &info("cart", at, format!("cart {s} updated")),
                Some("POST /cart"),
            );
        }
    }
    let found = patterns.assess(T0 + 330 * SEC, 30 * SEC);
    assert_eq!(found.len(), 1, "{found:?}");
    let finding = &found[0];
    assert!(!finding.new && !finding.error);
    assert_eq!(finding.template, "cart <*> updated");
    assert_eq!(finding.anomaly.endpoint.operation, "POST /cart");
    assert_eq!(finding.examples.len(), 3);
    assert!(finding.anomaly.description.starts_with("Log pattern rate"));
}

#[test]
fn templates_seen_while_learning_are_not_new() {
    let mut patterns = LogPatterns::new(LogPatternConfig::default());
    for s in 0..20 {
        let at = T0 + s * SEC;
        patterns.observe(&info("cart", at, format!("rare event {s}")), None);
    }
    // Nothing of it for minutes, then it comes back at its old pace.
    steady(&mut patterns, 20, 200);
    patterns.observe(&info("cart", T0 + 221 * SEC, "rare event 9".into()), None);
    assert!(patterns.assess(T0 + 225 * SEC, 30 * SEC).is_empty());
}

#[test]
fn the_service_cap_sends_further_services_to_other() {
    let mut patterns = LogPatterns::new(LogPatternConfig {
        max_services: 2,
        ..LogPatternConfig::default()
    });
    for service in ["a", "b", "c", "d"] {
        patterns.observe(&info(service, T0, "hello world".into()), None);
    }
    assert_eq!(patterns.services(), 3, "a, b and _other");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever is logged, a miner holds at most its caps of services and templates (plus one
    /// `_other` of each), and a template at most a window of counters.
    #[test]
    fn memory_stays_bounded(
        lines in prop::collection::vec(
            (0u8..12, prop::collection::vec("[a-z]{1,6}|[0-9]{1,4}", 1..12), 0u64..400),
            1..400,
        )
    ) {
        let config = LogPatternConfig {
            max_services: 4,
            max_templates_per_service: 6,
            ..LogPatternConfig::default()
        };
        let mut patterns = LogPatterns::new(config);
        for (service, words, second) in &lines {
            let record = info(&format!("svc{service}"), T0 + second * SEC, words.join(" "));
            patterns.observe(&record, Some("GET /x"));
        }
        let found = patterns.assess(T0 + 400 * SEC, 30 * SEC);
        prop_assert!(patterns.services() <= 5);
        prop_assert!(patterns.templates() <= 5 * 7);
        for finding in found {
            prop_assert!(finding.examples.len() <= 3);
        }
        for service in patterns.services.values() {
            for stats in &service.stats {
                prop_assert!(stats.seconds.len() <= 600);
            }
        }
    }
}

#[test]
fn an_error_template_of_healthy_traffic_is_routine_and_a_new_or_risen_one_is_not() {
    let error = |at: u64, body: String| LogRecord::new("rates", at, LogSeverity::ERROR, body);
    let mut patterns = LogPatterns::new(LogPatternConfig::default());
    let mut routine = None;
    for s in 0..300 {
        let at = T0 + s * SEC;
        let seen = patterns.observe(&error(at, format!("rate cache miss for sku-{s}")), None);
        routine = Some(seen);
        if s % 5 == 4 {
            patterns.assess(at + SEC, 30 * SEC);
        }
    }
    let routine = routine.expect("observed");
    assert!(patterns.is_routine(&routine), "said in healthy traffic");

    // A template first seen after learning is news, before it is even counted as a finding.
    let at = T0 + 300 * SEC;
    let new = patterns.observe(&error(at, "price list is empty for order o-1".into()), None);
    patterns.assess(at + SEC, 30 * SEC);
    assert!(!patterns.is_routine(&new));
    assert!(patterns.is_routine(&routine));

    // The routine template said ten times as often has risen: news too, while it lasts.
    for s in 301..331 {
        for k in 0..10 {
            patterns.observe(
                &error(T0 + s * SEC, format!("rate cache miss for sku-{k}")),
                None,
            );
        }
    }
    let found = patterns.assess(T0 + 331 * SEC, 30 * SEC);
    assert!(
        found
            .iter()
            .any(|f| !f.new && f.template.starts_with("rate cache miss"))
    );
    assert!(!patterns.is_routine(&routine));
}
