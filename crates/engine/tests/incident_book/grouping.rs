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

fn at(service: &str, operation: &str) -> EndpointKey {
    EndpointKey::new(service, operation)
}

/// A draft blaming `operation` of `service` (an edge when it holds ` -> `) for a `kind` anomaly
/// on each of `affected`, the blamed endpoint first.
fn blaming(
    service: &str,
    operation: &str,
    kind: AnomalyKind,
    affected: Vec<EndpointKey>,
    now: u64,
) -> IncidentDraft {
    let anomalies: Vec<Anomaly> = affected
        .iter()
        .map(|endpoint| Anomaly {
            endpoint: endpoint.clone(),
            ..anomaly("/any", kind, Severity::High, now)
        })
        .collect();
    let mut draft = draft(operation, kind, anomalies);
    draft.root_cause.service = service.to_owned();
    draft.affected_endpoints = affected;
    draft
}

#[test]
fn an_incident_revised_to_a_service_another_incident_names_is_folded_into_it() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let charge = at("payment", "/charge");
    let checkout = at("checkout", "/checkout");
    let refund = at("payment", "/refund");
    let first = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "payment",
            "/charge",
            AnomalyKind::LatencySpike,
            vec![charge.clone()],
            T0,
        )],
        T0,
    ));
    // The checkout's callee spans have not arrived yet: the checkout is blamed on its own.
    let second = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "checkout",
            "/checkout",
            AnomalyKind::LatencySpike,
            vec![checkout.clone()],
            T0 + SEC,
        )],
        T0 + SEC,
    ));

    // They arrive: the checkout was slow because of payment, which the first incident names.
    let changes = apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "payment",
            "/refund",
            AnomalyKind::LatencySpike,
            vec![refund.clone(), checkout.clone()],
            T0 + 2 * SEC,
        )],
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
    let later = apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "payment",
            "/refund",
            AnomalyKind::LatencySpike,
            vec![refund],
            T0 + 3 * SEC,
        )],
        T0 + 3 * SEC,
    );
    assert_eq!(later, [IncidentChange::Updated { id: first }]);
}

#[test]
fn a_hung_service_found_behind_a_blamed_call_revises_the_incident() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    // The hung service's spans have not arrived: its caller's calls into it fail, and as the
    // caller also fails towards others, the call is blamed on the caller's side.
    let call = at("shipping", "UpdateCart -> cart");
    let shipping = at("shipping", "UpdateShipping");
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "shipping",
            "UpdateCart -> cart",
            AnomalyKind::ErrorStorm,
            vec![call.clone()],
            T0,
        )],
        T0,
    ));

    // The hung requests end: the cart's own operation timed out, and the shipping service's
    // own operation suffered from it (the blamed call is not among what the draft lists).
    let hung = at("cart", "UpdateCart");
    let changes = apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "cart",
            "UpdateCart",
            AnomalyKind::Timeout,
            vec![hung.clone(), shipping.clone()],
            T0 + 4 * SEC,
        )],
        T0 + 4 * SEC,
    );

    assert_eq!(changes, [IncidentChange::Updated { id: id.clone() }]);
    let active = book.active();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].root_cause.endpoint_key(), hung);
    assert!(active[0].affected_endpoints.contains(&call));

    // A fault elsewhere that hurts no operation of the blamed service stays apart.
    let other = blaming(
        "search",
        "Find",
        AnomalyKind::Timeout,
        vec![at("search", "Find"), at("web", "Search")],
        T0 + 5 * SEC,
    );
    let changes = apply(&mut book, &mut marks, vec![other], T0 + 5 * SEC);
    assert!(matches!(changes.as_slice(), [IncidentChange::Opened { id: new }] if *new != id));
}

#[test]
fn a_caller_of_a_hung_service_whose_calls_out_fail_is_folded_into_the_hang() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    // The notification service hangs and its incident opens.
    let hang = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "notification",
            "POST /notify",
            AnomalyKind::Timeout,
            vec![at("notification", "POST /notify")],
            T0,
        )],
        T0,
    ));
    // The frontend gives up on the shipping service, which waits on the notification service
    // and has not answered yet: the frontend's failing calls into shipping are blamed.
    let into_shipping = at("frontend", "POST -> shipping");
    let shipping = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "shipping",
            "POST -> shipping",
            AnomalyKind::ErrorStorm,
            vec![into_shipping.clone(), at("frontend", "DELETE /order")],
            T0 + SEC,
        )],
        T0 + SEC,
    ));

    // Shipping's spans arrive: its own calls into the notification service failed.
    let changes = apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "notification",
            "HTTP POST -> notification",
            AnomalyKind::ErrorStorm,
            vec![
                at("shipping", "HTTP POST -> notification"),
                at("frontend", "DELETE /order"),
            ],
            T0 + 2 * SEC,
        )],
        T0 + 2 * SEC,
    );

    assert_eq!(
        changes,
        [
            IncidentChange::Updated { id: hang.clone() },
            IncidentChange::Resolved {
                id: shipping.clone()
            }
        ]
    );
    let active = book.active();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].id, hang);
    assert_eq!(active[0].root_cause.endpoint, "POST /notify");
    assert!(active[0].affected_endpoints.contains(&into_shipping));
    assert_eq!(
        book.get(&shipping).and_then(|i| i.merged_into.as_deref()),
        Some(hang.as_str())
    );
}

#[test]
fn a_slow_call_out_of_a_service_behind_a_delayed_edge_does_not_revise_it() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    // A network delay in front of the inventory service: its callers' calls are slow.
    let delayed = at("quote", "Check -> inventory");
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "inventory",
            "Check -> inventory",
            AnomalyKind::LatencySpike,
            vec![delayed.clone()],
            T0,
        )],
        T0,
    ));

    // A few of the slow requests also took long on the inventory service's own mail API.
    let changes = apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "api.mail",
            "POST -> api.mail",
            AnomalyKind::LatencySpike,
            vec![at("inventory", "POST -> api.mail")],
            T0 + SEC,
        )],
        T0 + SEC,
    );

    assert!(matches!(changes.as_slice(), [IncidentChange::Opened { id: new }] if *new != id));
    let kept = book.get(&id).expect("kept");
    assert_eq!(
        kept.root_cause.endpoint_key(),
        at("inventory", "Check -> inventory")
    );
}

#[test]
fn failing_calls_whose_traces_also_lead_to_a_young_hang_join_it() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let hang = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "recommendation",
            "PUT /recommend",
            AnomalyKind::Timeout,
            vec![at("recommendation", "PUT /recommend")],
            T0,
        )],
        T0,
    ));
    // The gateway gives up on the auth service, which waits on the hung service: in half of
    // the failing requests the hung service's spans arrived and are named, in the other half
    // only the call into auth can be blamed.
    let gives_up = |caller: &str, now| {
        let mut draft = blaming(
            "auth",
            "CreateAuth -> auth",
            AnomalyKind::ErrorStorm,
            vec![at(caller, "CreateAuth -> auth")],
            now,
        );
        draft.root_cause.confidence = 0.52;
        draft.root_cause.candidates = vec![
            candidate(caller, "CreateAuth -> auth", 0.52),
            candidate("recommendation", "PUT /recommend", 0.48),
        ];
        draft
    };

    let draft = gives_up("gateway", T0 + SEC);
    let changes = apply(&mut book, &mut marks, vec![draft], T0 + SEC);

    assert_eq!(changes, [IncidentChange::Updated { id: hang.clone() }]);
    assert_eq!(book.active().len(), 1);
    assert_eq!(book.active()[0].root_cause.endpoint, "PUT /recommend");

    // The same calls failing with no trace leading to the hang are a problem of their own.
    let mut unrelated = gives_up("web", T0 + 2 * SEC);
    unrelated.root_cause.candidates.truncate(1);
    let changes = apply(&mut book, &mut marks, vec![unrelated], T0 + 2 * SEC);
    assert!(matches!(changes.as_slice(), [IncidentChange::Opened { id }] if *id != hang));
}

fn candidate(service: &str, endpoint: &str, score: f64) -> aiops_rca::Candidate {
    aiops_rca::Candidate {
        service: service.into(),
        endpoint: endpoint.into(),
        score,
    }
}

#[test]
fn callers_failing_towards_a_service_slowed_by_a_hang_join_the_hang() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    // The session service hangs; the email service, which calls it, is slow.
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "session",
            "CreateSession",
            AnomalyKind::Timeout,
            vec![at("session", "CreateSession"), at("email", "PlaceEmail")],
            T0,
        )],
        T0,
    ));

    // The web service gives up on the email service: its calls into it fail.
    let changes = apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "email",
            "PlaceEmail -> email",
            AnomalyKind::ErrorStorm,
            vec![at("web", "PlaceEmail -> email")],
            T0 + 4 * SEC,
        )],
        T0 + 4 * SEC,
    );

    assert_eq!(changes, [IncidentChange::Updated { id: id.clone() }]);
    let active = book.active();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].root_cause.endpoint, "CreateSession");
    assert!(
        active[0]
            .affected_endpoints
            .contains(&at("web", "PlaceEmail -> email"))
    );
}

#[test]
fn callers_failing_towards_a_service_that_just_turned_slow_join_its_incident() {
    let mut book = IncidentBook::new(0);
    let mut marks = Watermarks::default();
    let list = at("flags", "/list");
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![blaming(
            "flags",
            "/list",
            AnomalyKind::LatencySpike,
            vec![list],
            T0,
        )],
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
