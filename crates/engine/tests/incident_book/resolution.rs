//! Resolution by hand and automatic, the watermark that keeps old evidence from bringing a
//! resolved incident back, and the cap on resolved incidents kept.

use super::*;

#[test]
fn resolving_unknown_id_is_an_error() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();

    let error = book
        .resolve("INC-1-1", T0, &mut marks)
        .expect_err("nothing to resolve");

    assert_eq!(
        error,
        IncidentError::NotFound {
            id: "INC-1-1".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "incident: no incident has id \"INC-1-1\""
    );
}

#[test]
fn resolving_twice_is_an_error() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    ));
    let resolved = book.resolve(&id, T0 + SEC, &mut marks).expect("active");
    assert_eq!(resolved.status, IncidentStatus::Resolved);
    assert_eq!(resolved.resolved_at_unix_nanos, Some(T0 + SEC));

    let error = book
        .resolve(&id, T0 + 2 * SEC, &mut marks)
        .expect_err("already resolved");

    assert_eq!(
        error,
        IncidentError::AlreadyResolved {
            id: id.clone(),
            resolved_at_unix_nanos: T0 + SEC
        }
    );
    assert_eq!(
        error.to_string(),
        format!("incident: {id} is already resolved")
    );
    assert!(book.active().is_empty());
}

#[test]
fn resolved_incident_is_not_reopened_by_old_evidence() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    ));
    let resolved_at = T0 + 10 * SEC;
    book.resolve(&id, resolved_at, &mut marks).expect("active");

    // Every cycle for a whole window after the resolution still sees the old evidence.
    for cycle in 1..=6 {
        let now = resolved_at + cycle * 5 * SEC - 1;
        let stale = payment_latency(now, Severity::Critical);
        assert!(stale.anomalies[0].window.start_unix_nanos < resolved_at);

        let changes = apply(&mut book, &mut marks, vec![stale], now);

        assert!(changes.is_empty(), "cycle {cycle}: {changes:?}");
    }
    assert_eq!(book.all().len(), 1);
    assert_eq!(
        book.get(&id).map(|i| i.status),
        Some(IncidentStatus::Resolved)
    );
}

#[test]
fn evidence_from_after_the_resolution_opens_a_new_incident() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    ));
    let resolved_at = T0 + 10 * SEC;
    book.resolve(&id, resolved_at, &mut marks).expect("active");
    let now = resolved_at + 20 * SEC;
    let mut fresh = payment_latency(now, Severity::High);
    fresh.anomalies[0].window = TimeWindow::new(resolved_at, now);

    let new_id = opened_id(&apply(&mut book, &mut marks, vec![fresh], now));

    assert_ne!(new_id, id);
    assert_eq!(book.active().len(), 1);
    assert_eq!(
        book.get(&id).map(|i| i.status),
        Some(IncidentStatus::Resolved)
    );
}

#[test]
fn stale_anomalies_are_dropped_from_an_otherwise_fresh_draft() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    ));
    let resolved_at = T0 + 10 * SEC;
    book.resolve(&id, resolved_at, &mut marks).expect("active");
    let now = resolved_at + 20 * SEC;
    let mut fresh_payment = anomaly("/payment", AnomalyKind::LatencySpike, Severity::High, now);
    fresh_payment.window.start_unix_nanos = resolved_at;
    let stale_checkout = anomaly(
        "/checkout",
        AnomalyKind::LatencySpike,
        Severity::Critical,
        now,
    );
    let mixed = draft(
        "/payment",
        AnomalyKind::LatencySpike,
        vec![stale_checkout, fresh_payment],
    );

    let new_id = opened_id(&apply(&mut book, &mut marks, vec![mixed], now));

    let incident = book.get(&new_id).expect("kept");
    assert_eq!(incident.affected_endpoints, [key("/payment")]);
    assert_eq!(incident.anomalies.len(), 1);
    assert_eq!(incident.severity, Severity::High);
    assert_eq!(incident.alert_count, 1);
}

#[test]
fn a_root_cause_found_in_spans_from_before_the_resolution_is_ignored() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    ));
    let resolved_at = T0 + 10 * SEC;
    book.resolve(&id, resolved_at, &mut marks).expect("active");
    let now = resolved_at + 40 * SEC;
    let mut draft = payment_latency(now, Severity::High);
    draft.root_cause.first_failing_span = Some(SpanRef {
        trace_id: TraceId::random(),
        span_id: SpanId::random(),
        service: "shop".into(),
        operation: "/payment".into(),
        start_unix_nanos: resolved_at - SEC,
    });

    assert!(apply(&mut book, &mut marks, vec![draft], now).is_empty());
}

#[test]
fn incident_auto_resolves_after_n_healthy_cycles() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    ));
    let cycle = |n: u64| T0 + n * 5 * SEC;

    assert!(
        book.apply(Vec::new(), &all_healthy(cycle(1)), cycle(1), &mut marks)
            .is_empty()
    );
    assert!(
        book.apply(Vec::new(), &all_healthy(cycle(2)), cycle(2), &mut marks)
            .is_empty()
    );
    let changes = book.apply(Vec::new(), &all_healthy(cycle(3)), cycle(3), &mut marks);

    assert_eq!(changes, [IncidentChange::Resolved { id: id.clone() }]);
    let incident = book.get(&id).expect("kept");
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert_eq!(incident.resolved_at_unix_nanos, Some(cycle(3)));
    assert!(book.active().is_empty());
}

#[test]
fn an_unhealthy_cycle_restarts_the_auto_resolve_count() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    ));
    let cycle = |n: u64| T0 + n * 5 * SEC;
    let _ = book.apply(Vec::new(), &all_healthy(cycle(1)), cycle(1), &mut marks);
    let _ = book.apply(Vec::new(), &all_healthy(cycle(2)), cycle(2), &mut marks);
    // The endpoint is degraded (no anomaly, no draft): not healthy.
    let degraded = Assessment {
        endpoints: vec![endpoint("/payment", HealthStatus::Degraded)],
        ..all_healthy(cycle(3))
    };
    assert!(
        book.apply(Vec::new(), &degraded, cycle(3), &mut marks)
            .is_empty()
    );
    for n in 4..=5 {
        assert!(
            book.apply(Vec::new(), &all_healthy(cycle(n)), cycle(n), &mut marks)
                .is_empty()
        );
    }

    let changes = book.apply(Vec::new(), &all_healthy(cycle(6)), cycle(6), &mut marks);

    assert_eq!(changes, [IncidentChange::Resolved { id }]);
}

#[test]
fn problems_elsewhere_do_not_keep_an_incident_open() {
    let mut book = IncidentBook::new(2);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    ));
    let elsewhere = |now| {
        assessment(
            now,
            &[anomaly(
                "/inventory",
                AnomalyKind::ErrorStorm,
                Severity::High,
                now,
            )],
            &["/payment"],
        )
    };

    let _ = book.apply(
        Vec::new(),
        &elsewhere(T0 + 5 * SEC),
        T0 + 5 * SEC,
        &mut marks,
    );
    let changes = book.apply(
        Vec::new(),
        &elsewhere(T0 + 10 * SEC),
        T0 + 10 * SEC,
        &mut marks,
    );

    assert_eq!(changes, [IncidentChange::Resolved { id }]);
}

#[test]
fn zero_auto_resolve_cycles_never_resolves() {
    let mut book = IncidentBook::new(0);
    let mut marks = Watermarks::default();
    let _ = apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    );
    for n in 1..=20 {
        let now = T0 + n * 5 * SEC;
        assert!(
            book.apply(Vec::new(), &all_healthy(now), now, &mut marks)
                .is_empty()
        );
    }
    assert_eq!(book.active().len(), 1);
}

#[test]
fn auto_resolution_sets_the_watermark_too() {
    let mut book = IncidentBook::new(1);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    ));
    let resolved_at = T0 + 5 * SEC;
    let changes = book.apply(
        Vec::new(),
        &all_healthy(resolved_at),
        resolved_at,
        &mut marks,
    );
    assert_eq!(changes, [IncidentChange::Resolved { id }]);

    let stale = payment_latency(resolved_at + SEC, Severity::High);
    assert!(apply(&mut book, &mut marks, vec![stale], resolved_at + SEC).is_empty());
    assert_eq!(
        marks.of_cause(&payment_latency(T0, Severity::High).root_cause),
        Some(resolved_at)
    );
}

#[test]
fn only_the_most_recent_resolved_incidents_are_kept_but_watermarks_remain() {
    let mut book = IncidentBook::new(3).with_max_resolved(2);
    let mut marks = Watermarks::default();
    let roots = ["/a", "/b", "/c"];
    let mut ids = Vec::new();
    for root in roots {
        let errors = elsewhere(draft(
            root,
            AnomalyKind::ErrorStorm,
            vec![anomaly(root, AnomalyKind::ErrorStorm, Severity::High, T0)],
        ));
        ids.push(opened_id(&apply(&mut book, &mut marks, vec![errors], T0)));
    }
    for (i, id) in ids.iter().enumerate() {
        book.resolve(id, T0 + (i as u64 + 1) * SEC, &mut marks)
            .expect("active");
    }
    let _ = book.apply(
        Vec::new(),
        &all_healthy(T0 + 5 * SEC),
        T0 + 5 * SEC,
        &mut marks,
    );

    assert!(
        book.get(&ids[0]).is_none(),
        "the earliest resolved is dropped"
    );
    assert!(book.get(&ids[1]).is_some() && book.get(&ids[2]).is_some());
    let stale = elsewhere(draft(
        "/a",
        AnomalyKind::ErrorStorm,
        vec![anomaly(
            "/a",
            AnomalyKind::ErrorStorm,
            Severity::High,
            T0 + 6 * SEC,
        )],
    ));
    assert!(apply(&mut book, &mut marks, vec![stale], T0 + 6 * SEC).is_empty());
}
