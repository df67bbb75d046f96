//! The grouping rules of hangs: a hung service's spans arrive when the hang ends, long after
//! its callers' failed and given-up calls were blamed, so one hang is found piece by piece.

use super::*;

/// Opens the incident of `service`'s `operation` hanging, at `T0`, and returns its id.
fn hang_opened(
    book: &mut IncidentBook,
    marks: &mut Watermarks,
    service: &str,
    operation: &str,
) -> String {
    opened_id(&apply_blaming(
        book,
        marks,
        service,
        operation,
        AnomalyKind::Timeout,
        vec![at(service, operation)],
        T0,
    ))
}

#[test]
fn a_hung_service_found_behind_a_blamed_call_revises_the_incident() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    // The hung service's spans have not arrived: its caller's calls into it fail, and as the
    // caller also fails towards others, the call is blamed on the caller's side.
    let call = at("shipping", "UpdateCart -> cart");
    let shipping = at("shipping", "UpdateShipping");
    let id = opened_id(&apply_blaming(
        &mut book,
        &mut marks,
        "shipping",
        "UpdateCart -> cart",
        AnomalyKind::ErrorStorm,
        vec![call.clone()],
        T0,
    ));

    // The hung requests end: the cart's own operation timed out, and the shipping service's
    // own operation suffered from it (the blamed call is not among what the draft lists).
    // Few of the sampled traces hold the hung spans yet, so the draft is not confident.
    let hung = at("cart", "UpdateCart");
    let mut late = blaming(
        "cart",
        "UpdateCart",
        AnomalyKind::Timeout,
        vec![hung.clone(), shipping.clone()],
        T0 + 4 * SEC,
    );
    late.root_cause.confidence = 0.1;
    let changes = apply(&mut book, &mut marks, vec![late], T0 + 4 * SEC);

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
    let hang = hang_opened(&mut book, &mut marks, "notification", "POST /notify");
    // The frontend gives up on the shipping service, which waits on the notification service
    // and has not answered yet: the frontend's failing calls into shipping are blamed.
    let into_shipping = at("frontend", "POST -> shipping");
    let shipping = opened_id(&apply_blaming(
        &mut book,
        &mut marks,
        "shipping",
        "POST -> shipping",
        AnomalyKind::ErrorStorm,
        vec![into_shipping.clone(), at("frontend", "DELETE /order")],
        T0 + SEC,
    ));

    // Shipping's spans arrive: its own calls into the notification service failed.
    let changes = apply_blaming(
        &mut book,
        &mut marks,
        "notification",
        "HTTP POST -> notification",
        AnomalyKind::ErrorStorm,
        vec![
            at("shipping", "HTTP POST -> notification"),
            at("frontend", "DELETE /order"),
        ],
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
    let id = opened_id(&apply_blaming(
        &mut book,
        &mut marks,
        "inventory",
        "Check -> inventory",
        AnomalyKind::LatencySpike,
        vec![delayed.clone()],
        T0,
    ));

    // A few of the slow requests also took long on the inventory service's own mail API.
    let changes = apply_blaming(
        &mut book,
        &mut marks,
        "api.mail",
        "POST -> api.mail",
        AnomalyKind::LatencySpike,
        vec![at("inventory", "POST -> api.mail")],
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
    let hang = hang_opened(&mut book, &mut marks, "recommendation", "PUT /recommend");
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
    let id = opened_id(&apply_blaming(
        &mut book,
        &mut marks,
        "session",
        "CreateSession",
        AnomalyKind::Timeout,
        vec![at("session", "CreateSession"), at("email", "PlaceEmail")],
        T0,
    ));

    // The web service gives up on the email service: its calls into it fail.
    let changes = apply_blaming(
        &mut book,
        &mut marks,
        "email",
        "PlaceEmail -> email",
        AnomalyKind::ErrorStorm,
        vec![at("web", "PlaceEmail -> email")],
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
