//! The grouping rules: one incident per problem when several drafts name parts of it
//! (a service-wide slowdown, leftover symptoms, a deeper cause found late, callers' view of a
//! hung service), and folding two incidents that a revised root cause shows to be one.

use super::*;

fn latency(operation: &str, now: u64) -> Anomaly {
    anomaly(operation, AnomalyKind::LatencySpike, Severity::High, now)
}

#[test]
fn a_service_wide_slowdown_of_two_endpoints_is_one_incident() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![draft(
            "/payment",
            AnomalyKind::LatencySpike,
            vec![latency("/payment", T0), latency("/checkout", T0)],
        )],
        T0,
    ));

    // The same service's other operation slows down too, hurting the same caller.
    let changes = apply(
        &mut book,
        &mut marks,
        vec![draft(
            "/inventory",
            AnomalyKind::LatencySpike,
            vec![
                latency("/inventory", T0 + SEC),
                latency("/checkout", T0 + SEC),
            ],
        )],
        T0 + SEC,
    );

    assert_eq!(changes, [IncidentChange::Updated { id: id.clone() }]);
    assert_eq!(book.active().len(), 1);
    assert!(
        book.get(&id)
            .expect("kept")
            .affected_endpoints
            .contains(&key("/inventory"))
    );
}

#[test]
fn leftover_symptoms_of_an_incident_join_it_without_taking_its_root_cause() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![draft(
            "/payment",
            AnomalyKind::LatencySpike,
            vec![latency("/payment", T0), latency("/checkout", T0)],
        )],
        T0,
    ));

    // The fault clears; the caller is still slow for a while and now looks like its own cause.
    let changes = apply(
        &mut book,
        &mut marks,
        vec![draft(
            "/checkout",
            AnomalyKind::LatencySpike,
            vec![latency("/checkout", T0 + 10 * SEC)],
        )],
        T0 + 10 * SEC,
    );

    assert_eq!(changes, [IncidentChange::Updated { id: id.clone() }]);
    assert_eq!(book.get(&id).expect("kept").root_cause.endpoint, "/payment");
}

#[test]
fn a_deeper_cause_found_soon_after_opening_revises_the_incident() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    // The callee's spans have not arrived yet: the caller is blamed first.
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![draft(
            "/checkout",
            AnomalyKind::LatencySpike,
            vec![latency("/checkout", T0)],
        )],
        T0,
    ));

    let changes = apply(
        &mut book,
        &mut marks,
        vec![draft(
            "/payment",
            AnomalyKind::LatencySpike,
            vec![
                latency("/payment", T0 + 5 * SEC),
                latency("/checkout", T0 + 5 * SEC),
            ],
        )],
        T0 + 5 * SEC,
    );

    assert_eq!(changes, [IncidentChange::Updated { id: id.clone() }]);
    assert_eq!(book.active().len(), 1);
    assert_eq!(book.get(&id).expect("kept").root_cause.endpoint, "/payment");
}

/// Opens an incident at `T0` on payment's latency, then applies `late` at `at`: the incident
/// is updated, stays the only one, and still blames payment.
fn late_draft_leaves_payment_blamed(late: IncidentDraft, at: u64) {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![draft(
            "/payment",
            AnomalyKind::LatencySpike,
            vec![latency("/payment", T0)],
        )],
        T0,
    ));

    let changes = apply(&mut book, &mut marks, vec![late], at);

    assert_eq!(changes, [IncidentChange::Updated { id: id.clone() }]);
    assert_eq!(book.active().len(), 1);
    assert_eq!(book.get(&id).expect("kept").root_cause.endpoint, "/payment");
}

#[test]
fn a_cause_its_traces_barely_show_does_not_revise_the_incident() {
    // The fault clears: the last anomalous window's traces of payment are mostly healthy, and
    // one in ten blames a caller's own time by chance.
    let mut late = draft(
        "/checkout",
        AnomalyKind::LatencySpike,
        vec![
            latency("/payment", T0 + 30 * SEC),
            latency("/checkout", T0 + 30 * SEC),
        ],
    );
    late.root_cause.confidence = 0.1;

    late_draft_leaves_payment_blamed(late, T0 + 30 * SEC);
}

#[test]
fn a_clearing_faults_last_window_blaming_another_endpoint_weakly_joins_its_incident() {
    // Payment's last anomalous window: its traces are mostly healthy, and one in twelve
    // blames billing, which no anomaly names.
    let mut late = draft(
        "/billing",
        AnomalyKind::LatencySpike,
        vec![latency("/payment", T0 + 100 * SEC)],
    );
    late.root_cause.service = "billing".into();
    late.affected_endpoints[0] = at("billing", "/billing");
    late.root_cause.confidence = 0.08;

    late_draft_leaves_payment_blamed(late, T0 + 100 * SEC);
}

#[test]
fn a_deeper_cause_long_after_opening_is_an_incident_of_its_own() {
    let mut book = IncidentBook::new(0).with_revise_window(10 * SEC);
    let mut marks = Watermarks::default();
    let _ = apply(
        &mut book,
        &mut marks,
        vec![draft(
            "/checkout",
            AnomalyKind::LatencySpike,
            vec![latency("/checkout", T0)],
        )],
        T0,
    );

    let later = T0 + 60 * SEC;
    let mut payment = draft(
        "/payment",
        AnomalyKind::LatencySpike,
        vec![latency("/payment", later), latency("/checkout", later)],
    );
    payment.root_cause.service = "payments".into();
    let changes = apply(&mut book, &mut marks, vec![payment], later);

    assert!(matches!(
        changes.as_slice(),
        [IncidentChange::Opened { .. }]
    ));
    assert_eq!(book.active().len(), 2);
}

#[test]
fn failures_of_two_operations_of_one_service_are_one_incident() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let errors = |operation: &str| {
        draft(
            operation,
            AnomalyKind::ErrorStorm,
            vec![anomaly(
                operation,
                AnomalyKind::ErrorStorm,
                Severity::High,
                T0,
            )],
        )
    };

    let changes = apply(
        &mut book,
        &mut marks,
        vec![errors("/payment"), errors("/refund")],
        T0,
    );

    assert!(matches!(
        changes.as_slice(),
        [IncidentChange::Opened { .. }]
    ));
    let incident = &book.active()[0];
    assert_eq!(incident.root_cause.endpoint, "/payment");
    assert!(incident.affected_endpoints.contains(&key("/refund")));
}

#[test]
fn an_incident_revised_to_a_service_another_incident_names_is_folded_into_it() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let charge = at("payment", "/charge");
    let checkout = at("checkout", "/checkout");
    let refund = at("payment", "/refund");
    let first = opened_id(&apply_blaming(
        &mut book,
        &mut marks,
        "payment",
        "/charge",
        AnomalyKind::LatencySpike,
        vec![charge.clone()],
        T0,
    ));
    // The checkout's callee spans have not arrived yet: the checkout is blamed on its own.
    let second = opened_id(&apply_blaming(
        &mut book,
        &mut marks,
        "checkout",
        "/checkout",
        AnomalyKind::LatencySpike,
        vec![checkout.clone()],
        T0 + SEC,
    ));

    // They arrive: the checkout was slow because of payment, which the first incident names.
    let changes = apply_blaming(
        &mut book,
        &mut marks,
        "payment",
        "/refund",
        AnomalyKind::LatencySpike,
        vec![refund.clone(), checkout.clone()],
        T0 + 2 * SEC,
    );

    assert_eq!(
        changes,
        [
            IncidentChange::Updated { id: first.clone() },
            IncidentChange::Resolved { id: second.clone() },
        ]
    );
    let active = book.active();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].id, first);
    assert_eq!(active[0].root_cause.endpoint, "/charge");
    for endpoint in [&charge, &checkout, &refund] {
        assert!(
            active[0].affected_endpoints.contains(endpoint),
            "{endpoint:?}"
        );
    }
    let folded = book.get(&second).expect("kept");
    assert_eq!(folded.status, IncidentStatus::Resolved);
    assert_eq!(folded.merged_into.as_deref(), Some(first.as_str()));

    // Folding set no watermark: evidence from before it still reaches the surviving incident.
    let later = apply_blaming(
        &mut book,
        &mut marks,
        "payment",
        "/refund",
        AnomalyKind::LatencySpike,
        vec![refund],
        T0 + 3 * SEC,
    );
    assert_eq!(later, [IncidentChange::Updated { id: first }]);
}

#[test]
fn callers_failing_towards_a_service_that_just_turned_slow_join_its_incident() {
    let mut book = IncidentBook::new(0);
    let mut marks = Watermarks::default();
    let list = at("flags", "/list");
    let id = opened_id(&apply_blaming(
        &mut book,
        &mut marks,
        "flags",
        "/list",
        AnomalyKind::LatencySpike,
        vec![list],
        T0,
    ));
    let callers_give_up = |caller: &str, edge: &str, now| {
        blaming(
            "flags",
            edge,
            AnomalyKind::ErrorStorm,
            vec![at(caller, edge)],
            now,
        )
    };

    let soon = callers_give_up("users", "GetFlag -> flags", T0 + 5 * SEC);
    let changes = apply(&mut book, &mut marks, vec![soon], T0 + 5 * SEC);
    assert_eq!(changes, [IncidentChange::Updated { id: id.clone() }]);

    // Long after the slowdown began, calls failing towards the service are a problem of their
    // own.
    let late = T0 + 300 * SEC;
    let draft = callers_give_up("orders", "ListFlags -> flags", late);
    let changes = apply(&mut book, &mut marks, vec![draft], late);
    assert!(matches!(changes.as_slice(), [IncidentChange::Opened { id: other }] if *other != id));
}

#[test]
fn a_draft_its_traces_contradict_opens_no_incident_but_may_join_one() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let contradicted = |now| {
        let mut draft = payment_latency(now, Severity::High);
        draft.root_cause.confidence = 0.02;
        draft
    };

    assert!(apply(&mut book, &mut marks, vec![contradicted(T0)], T0).is_empty());
    assert!(book.all().is_empty());

    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0 + SEC, Severity::High)],
        T0 + SEC,
    ));
    let changes = apply(
        &mut book,
        &mut marks,
        vec![contradicted(T0 + 2 * SEC)],
        T0 + 2 * SEC,
    );
    assert_eq!(changes, [IncidentChange::Updated { id }]);
}
