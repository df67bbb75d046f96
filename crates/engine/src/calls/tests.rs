//! Unit tests of the call patterns: drops found, and the rules that keep noise out.

use aiops_telemetry_core::{Span, SpanId, TraceId};

use super::*;

use crate::test_support::{MS, SEC, T0, graphs};

/// A checkout that calls payment `calls` times.
fn checkout(start: u64, calls: u64) -> Vec<Span> {
    let trace = TraceId::random();
    let root = Span::new(trace, SpanId::random(), "shop", "/checkout").with_timing(start, 50 * MS);
    let mut spans = vec![root.clone()];
    for call in 0..calls {
        spans.push(
            Span::new(trace, SpanId::random(), "payments", "/payment")
                .with_parent(root.span_id)
                .with_timing(start + (1 + call * 10) * MS, 8 * MS),
        );
    }
    spans
}

fn rule() -> CallRule {
    CallRule {
        window_nanos: 60 * SEC,
        min_samples: 20,
        persist_nanos: 5 * SEC,
    }
}

/// What `patterns` report at `at`, after a test the persistence time before it: a drop is
/// reported once it stayed significant that long.
fn detected(patterns: &mut CallPatterns, at: u64) -> Vec<Anomaly> {
    let _ = patterns.detect(rule(), at - rule().persist_nanos);
    patterns.detect(rule(), at)
}

/// Patterns learned from 200 checkouts calling payment `usual(i)` times.
fn learned(usual: impl Fn(u64) -> u64) -> CallPatterns {
    learned_from(
        &(0..200)
            .map(|i| checkout(T0 + i * SEC, usual(i)))
            .collect::<Vec<_>>(),
    )
}

/// Patterns learned from `healthy` traces.
fn learned_from(healthy: &[Vec<Span>]) -> CallPatterns {
    let mut patterns = CallPatterns::default();
    patterns.observe(&graphs(healthy), |_| true);
    patterns
}

/// What `patterns` find after also seeing `recent` (not learned from), at `T0` + 360 s.
fn judged(mut patterns: CallPatterns, recent: &[Vec<Span>]) -> Vec<Anomaly> {
    patterns.observe(&graphs(recent), |_| false);
    detected(&mut patterns, T0 + 360 * SEC)
}

#[test]
fn an_endpoint_that_stops_making_a_usual_call_is_reported_as_its_own_drop() {
    let mut patterns = learned(|_| 1);
    // A defect: two checkouts in five return before calling payment.
    let recent: Vec<_> = (0..60)
        .map(|i| checkout(T0 + 300 * SEC + i * SEC, u64::from(i % 5 >= 2)))
        .collect();
    patterns.observe(&graphs(&recent), |_| true);

    let found = detected(&mut patterns, T0 + 360 * SEC);

    assert_eq!(found.len(), 1, "{found:?}");
    let drop = &found[0];
    assert_eq!(drop.kind, AnomalyKind::CallDrop);
    assert_eq!(drop.endpoint, EndpointKey::new("shop", "/checkout"));
    // The first minute of the defect was learned from before it was found: the usual
    // rate moved a little, not to the defect's.
    assert!(drop.baseline > 0.9, "{drop:?}");
    assert!(
        drop.description
            .starts_with("Dropped calls: 0.60 calls to payments /payment per request (usually 0.9"),
        "{}",
        drop.description
    );
}

#[test]
fn a_drop_is_reported_once_it_stayed_significant_for_an_interval() {
    // A chance dip is at its deepest for a test or two as the window slides; a defect's lasts.
    let mut patterns = learned(|_| 1);
    let recent: Vec<_> = (0..60)
        .map(|i| checkout(T0 + 300 * SEC + i * SEC, u64::from(i % 5 >= 2)))
        .collect();
    patterns.observe(&graphs(&recent), |_| false);

    assert!(patterns.detect(rule(), T0 + 360 * SEC).is_empty());
    assert!(patterns.detect(rule(), T0 + 362 * SEC).is_empty());
    assert_eq!(patterns.detect(rule(), T0 + 365 * SEC).len(), 1);
}

#[test]
fn a_call_made_a_varying_number_of_times_is_judged_against_its_own_spread() {
    // Zero, one or two calls, one on average, before and after.
    let mut patterns = learned(|i| i % 3);
    let recent: Vec<_> = (0..60)
        .map(|i| checkout(T0 + 300 * SEC + i * SEC, (i + 1) % 3))
        .collect();
    patterns.observe(&graphs(&recent), |_| true);

    assert!(detected(&mut patterns, T0 + 360 * SEC).is_empty());
}

#[test]
fn a_drop_is_not_learned_as_the_usual_pattern() {
    let mut patterns = learned(|_| 1);
    for minute in 0..5 {
        let start = T0 + (300 + minute * 60) * SEC;
        let recent: Vec<_> = (0..60).map(|i| checkout(start + i * SEC, 0)).collect();
        patterns.observe(&graphs(&recent), |_| true);
        let found = detected(&mut patterns, start + 60 * SEC);
        assert_eq!(found.len(), 1, "minute {minute}: {found:?}");
    }
}

#[test]
fn a_quarter_of_requests_skipping_a_call_is_found_in_a_sparse_sample() {
    // Twenty-four sampled requests a minute, one in four returning early. A third of the
    // window holds eight of them: too few to show the whole 25% in each, enough to show
    // calls falling short of the usual in both.
    let patterns = learned(|_| 1);
    let skips = [3, 9, 11, 14, 16, 19];
    let recent: Vec<_> = (0..24)
        .map(|i| {
            checkout(
                T0 + 300 * SEC + i * 2500 * MS,
                u64::from(!skips.contains(&i)),
            )
        })
        .collect();

    let found = judged(patterns, &recent);

    assert_eq!(found.len(), 1, "{found:?}");
    assert!((found[0].observed - 0.75).abs() < 1e-9, "{found:?}");
}

#[test]
fn a_rare_skip_seen_a_few_times_more_than_usual_is_no_drop() {
    // Payment is skipped by one checkout in seventeen. Eight of 27 recent checkouts
    // skipping it are five deviations below the usual calls, but 1.6 skips expected and
    // eight seen happen by chance once in 3,500 windows: skips are rare events, and the
    // normal approximation understates their tail.
    let recent = |skips: &[u64]| -> Vec<Vec<Span>> {
        (0..27)
            .map(|i| checkout(T0 + 300 * SEC + i * 2 * SEC, u64::from(!skips.contains(&i))))
            .collect()
    };
    let patterns = learned(|i| u64::from(i % 17 != 0));
    let found = judged(patterns, &recent(&[1, 5, 9, 12, 16, 20, 23, 26]));
    assert!(found.is_empty(), "{found:?}");

    // Fourteen skips are no chance.
    let patterns = learned(|i| u64::from(i % 17 != 0));
    let skips = [1, 3, 4, 7, 8, 11, 13, 15, 17, 19, 20, 22, 24, 26];
    let found = judged(patterns, &recent(&skips));
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn a_sixth_of_requests_skipping_a_call_is_a_drop() {
    let patterns = learned(|_| 1);
    let recent: Vec<_> = (0..120)
        .map(|i| checkout(T0 + 300 * SEC + i * 500 * MS, u64::from(i % 6 != 3)))
        .collect();

    let found = judged(patterns, &recent);

    assert_eq!(found.len(), 1, "{found:?}");
    assert!((found[0].observed - 5.0 / 6.0).abs() < 1e-9, "{found:?}");
}

/// A checkout calling pricing's `/quote` or `/quote/bulk`, once per request, `/quote` on
/// `quotes` of every ten.
fn quoting(start: u64, index: u64, quotes: u64) -> Vec<Span> {
    let trace = TraceId::random();
    let checkout =
        Span::new(trace, SpanId::random(), "shop", "/checkout").with_timing(start, 20 * MS);
    let operation = if index % 10 < quotes {
        "/quote"
    } else {
        "/quote/bulk"
    };
    let quote = Span::new(trace, SpanId::random(), "pricing", operation)
        .with_parent(checkout.span_id)
        .with_timing(start + MS, 15 * MS);
    vec![checkout, quote]
}

#[test]
fn a_call_whose_operation_changed_but_not_its_number_is_no_drop() {
    // Checkout's requests changed their mix: it calls pricing's /quote on four in ten
    // instead of eight, and /quote/bulk on the rest; pricing is called as often as ever.
    let healthy: Vec<_> = (0..200).map(|i| quoting(T0 + i * SEC, i, 8)).collect();
    let recent: Vec<_> = (0..120)
        .map(|i| quoting(T0 + 300 * SEC + i * 500 * MS, i, 4))
        .collect();

    assert!(judged(learned_from(&healthy), &recent).is_empty());
}

#[test]
fn a_client_span_whose_callee_span_went_missing_is_no_drop() {
    // Pricing hangs: checkout's client spans towards it end (the client gave up) with no
    // span of pricing's below them. No call was left unmade; the timeout rule judges it.
    let call = |start: u64, answered: bool| {
        let trace = TraceId::random();
        let client = Span::new(trace, SpanId::random(), "shop", "GET -> pricing")
            .with_kind(aiops_telemetry_core::SpanKind::Client)
            .with_timing(start, 20 * MS);
        let mut spans = vec![client.clone()];
        if answered {
            spans.push(
                Span::new(trace, SpanId::random(), "pricing", "/quote")
                    .with_parent(client.span_id)
                    .with_timing(start + MS, 15 * MS),
            );
        }
        spans
    };
    let healthy: Vec<_> = (0..200).map(|i| call(T0 + i * SEC, true)).collect();
    let hung: Vec<_> = (0..60)
        .map(|i| call(T0 + 300 * SEC + i * SEC, false))
        .collect();

    assert!(judged(learned_from(&healthy), &hung).is_empty());
}

#[test]
fn a_busy_caller_is_judged_over_the_time_its_newest_settled_requests_cover() {
    // Twenty checkouts a second, a third of them skipping payment. The 256 newest that
    // settled cover thirteen seconds, which ended ten seconds before the cycle.
    let patterns = learned(|_| 1);
    let recent: Vec<_> = (0..1_200)
        .map(|i| checkout(T0 + 290 * SEC + i * 50 * MS, u64::from(i % 3 != 0)))
        .collect();

    let found = judged(patterns, &recent);

    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn a_developing_drop_holds_learning_before_it_is_significant() {
    let mut patterns = learned(|_| 1);
    // Thirty requests over a minute, three in its middle third skipping the call: 2.5
    // deviations and more, but a tenth of the calls and none missing at the window's ends.
    let recent: Vec<_> = (0..30)
        .map(|i| {
            checkout(
                T0 + 300 * SEC + i * 2 * SEC,
                u64::from(![12, 14, 16].contains(&i)),
            )
        })
        .collect();
    patterns.observe(&graphs(&recent), |_| true);
    assert!(detected(&mut patterns, T0 + 360 * SEC).is_empty());

    // The defect goes on; what it does is not learned as the usual.
    let more: Vec<_> = (0..20)
        .map(|i| checkout(T0 + 360 * SEC + i * SEC, 0))
        .collect();
    patterns.observe(&graphs(&more), |_| true);

    let caller = EndpointKey::new("shop", "/checkout");
    let callee = EndpointKey::new("payments", "/payment");
    let usual = patterns.callers[&caller]
        .callees
        .iter()
        .find(|(known, _)| *known == callee)
        .and_then(|(_, usual)| *usual)
        .expect("payment's usual calls are learned")
        .mean;
    assert!(usual > 0.98, "{usual}");
}

/// A checkout that asks inventory through a client span (its status left unset, as some
/// instrumentation does) and pays only when inventory answered.
fn reserving(start: u64, inventory_fails: bool) -> Vec<Span> {
    let trace = TraceId::random();
    let checkout =
        Span::new(trace, SpanId::random(), "shop", "/checkout").with_timing(start, 30 * MS);
    let client = Span::new(trace, SpanId::random(), "shop", "GET -> inventory")
        .with_kind(aiops_telemetry_core::SpanKind::Client)
        .with_parent(checkout.span_id)
        .with_timing(start + MS, 10 * MS);
    let mut reserve = Span::new(trace, SpanId::random(), "inventory", "/reserve")
        .with_parent(client.span_id)
        .with_timing(start + 2 * MS, 8 * MS);
    let mut spans = vec![checkout.clone(), client];
    if inventory_fails {
        reserve = reserve.with_http_status(503);
    } else {
        spans.push(
            Span::new(trace, SpanId::random(), "payments", "/payment")
                .with_parent(checkout.span_id)
                .with_timing(start + 15 * MS, 8 * MS),
        );
    }
    spans.push(reserve);
    spans
}

#[test]
fn calls_a_failed_call_saved_are_no_drop() {
    // Inventory fails on a third of the requests, and checkout gives up before paying: the
    // error rules judge inventory; checkout's fewer payments are a symptom, not a defect.
    let healthy: Vec<_> = (0..200).map(|i| reserving(T0 + i * SEC, false)).collect();
    let recent: Vec<_> = (0..60)
        .map(|i| reserving(T0 + 300 * SEC + i * SEC, i % 3 == 0))
        .collect();

    assert!(judged(learned_from(&healthy), &recent).is_empty());
}

#[test]
fn a_callee_failing_most_of_its_calls_is_called_as_often_as_ever() {
    // Checkout pays on every other request, and payment fails four times in five: the
    // requests whose call failed still made it.
    let paying = |start: u64, i: u64, fails: bool| {
        let mut trace = checkout(start, i % 2);
        for span in trace.iter_mut().skip(1) {
            if fails && i % 10 != 1 {
                *span = span.clone().with_http_status(503);
            }
        }
        trace
    };
    let healthy: Vec<_> = (0..200).map(|i| paying(T0 + i * SEC, i, false)).collect();
    let recent: Vec<_> = (0..240)
        .map(|i| paying(T0 + 300 * SEC + i * 250 * MS, i, true))
        .collect();

    let found = judged(learned_from(&healthy), &recent);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_rarely_made_call_that_stops_is_a_drop() {
    // Payment is called on one checkout in four, then on none: 30 calls expected in 120
    // requests, none made.
    let patterns = learned(|i| u64::from(i % 4 == 0));
    let recent: Vec<_> = (0..120)
        .map(|i| checkout(T0 + 300 * SEC + i * 500 * MS, 0))
        .collect();

    let found = judged(patterns, &recent);

    assert_eq!(found.len(), 1, "{found:?}");
    assert!((found[0].baseline - 0.25).abs() < 0.01, "{found:?}");
}

#[test]
fn a_usual_rate_learned_from_few_requests_needs_a_larger_drop() {
    // Payment is called on every other checkout, then on three in ten of 240 recent ones.
    // Against a rate learned from 1,000 checkouts that is 5.5 deviations; learned from 50,
    // the rate itself may be off by a tenth, and the same drop is 2.6.
    let recent: Vec<_> = (0..240)
        .map(|i| checkout(T0 + 1_300 * SEC + i * 250 * MS, u64::from(i % 10 < 3)))
        .collect();
    let from = |count: u64| -> Vec<Vec<Span>> {
        (0..count).map(|i| checkout(T0 + i * SEC, i % 2)).collect()
    };

    let mut patterns = learned_from(&from(50));
    patterns.observe(&graphs(&recent), |_| false);
    let few = detected(&mut patterns, T0 + 1_360 * SEC);
    let mut patterns = learned_from(&from(1_000));
    patterns.observe(&graphs(&recent), |_| false);
    let many = detected(&mut patterns, T0 + 1_360 * SEC);

    assert!(few.is_empty(), "{few:?}");
    assert_eq!(many.len(), 1, "{many:?}");
}

#[test]
fn a_caller_whose_calls_drop_is_watched_until_they_are_back() {
    let mut patterns = learned(|_| 1);
    let usual: Vec<_> = (0..60)
        .map(|i| checkout(T0 + 300 * SEC + i * SEC, 1))
        .collect();
    patterns.observe(&graphs(&usual), |_| true);
    assert!(detected(&mut patterns, T0 + 360 * SEC).is_empty());
    assert!(patterns.watched().is_empty());

    let dropping: Vec<_> = (0..60)
        .map(|i| checkout(T0 + 360 * SEC + i * SEC, u64::from(i % 2 == 0)))
        .collect();
    patterns.observe(&graphs(&dropping), |_| true);
    let _ = detected(&mut patterns, T0 + 420 * SEC);
    assert_eq!(
        patterns.watched(),
        vec![EndpointKey::new("shop", "/checkout")]
    );

    let back: Vec<_> = (0..60)
        .map(|i| checkout(T0 + 420 * SEC + i * SEC, 1))
        .collect();
    patterns.observe(&graphs(&back), |_| true);
    let _ = detected(&mut patterns, T0 + 480 * SEC);
    assert!(patterns.watched().is_empty());
}
