//! Flapping faults: reopening within the reopen window, and the resolve hold that keeps a
//! fault toggling every 30 s for 10 minutes one incident that opens once and resolves once.

use aiops_analyzer::{
    Anomaly, AnomalyKind, Assessment, EndpointAssessment, Health, HealthStatus, Severity,
};
use aiops_engine::{Damping, IncidentBook, IncidentChange, IncidentStatus, Watermarks};
use aiops_rca::{IncidentDraft, RootCause};
use aiops_telemetry_core::{EndpointKey, TimeWindow, WindowStats};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_737_404_800 * SEC;
/// The analysis interval of these tests.
const CYCLE: u64 = 5 * SEC;

fn key() -> EndpointKey {
    EndpointKey::new("shop", "/payment")
}

/// A latency spike of /payment whose evidence window is `[start, now)`.
fn spike(start: u64, now: u64) -> IncidentDraft {
    let anomaly = Anomaly {
        kind: AnomalyKind::LatencySpike,
        endpoint: key(),
        observed: 1250.0,
        baseline: 180.0,
        ratio: 6.9,
        sample_count: 20,
        window: TimeWindow::new(start, now),
        severity: Severity::High,
        description: "Latency spike: 1250ms (baseline: 180ms, 6.9x slower)".into(),
    };
    IncidentDraft {
        root_cause: RootCause {
            service: "shop".into(),
            endpoint: "/payment".into(),
            kind: AnomalyKind::LatencySpike,
            description: anomaly.description.clone(),
            confidence: 1.0,
            first_failing_span: None,
            candidates: Vec::new(),
        },
        severity: Severity::High,
        title: "Latency spike detected in /payment".into(),
        affected_endpoints: vec![key()],
        anomalies: vec![anomaly],
    }
}

fn assessment(now: u64, anomalies: Vec<Anomaly>) -> Assessment {
    let status = if anomalies.is_empty() {
        HealthStatus::Healthy
    } else {
        HealthStatus::Critical
    };
    Assessment {
        window: TimeWindow::ending_at(now, 30 * SEC),
        endpoints: vec![EndpointAssessment {
            endpoint: key(),
            stats: WindowStats::default(),
            baseline: None,
            health: Health {
                status,
                health_score: 50.0,
            },
        }],
        anomalies,
    }
}

/// Runs one cycle at `now`: the fault's draft while `faulty`, a healthy assessment otherwise.
/// The fault's evidence starts at `since` (its latest return).
fn cycle(
    book: &mut IncidentBook,
    marks: &mut Watermarks,
    faulty: bool,
    since: u64,
    now: u64,
) -> Vec<IncidentChange> {
    if faulty {
        let draft = spike(since.max(now - CYCLE), now);
        let anomalies = draft.anomalies.clone();
        book.apply(vec![draft], &assessment(now, anomalies), now, marks)
    } else {
        book.apply(Vec::new(), &assessment(now, Vec::new()), now, marks)
    }
}

/// Toggles the fault every 30 s for 10 minutes, then lets it heal for 5; returns every change.
fn flap(book: &mut IncidentBook) -> Vec<IncidentChange> {
    let mut marks = Watermarks::default();
    let mut changes = Vec::new();
    let mut since = T0;
    let mut was_faulty = false;
    for step in 1..=(15 * 60 / 5) {
        let now = T0 + step * CYCLE;
        let elapsed = now - T0;
        let faulty = elapsed <= 600 * SEC && (elapsed / (30 * SEC)).is_multiple_of(2);
        if faulty && !was_faulty {
            since = now - CYCLE;
        }
        was_faulty = faulty;
        changes.extend(cycle(book, &mut marks, faulty, since, now));
    }
    changes
}

fn count(changes: &[IncidentChange], wanted: fn(&IncidentChange) -> bool) -> usize {
    changes.iter().filter(|change| wanted(change)).count()
}

#[test]
fn without_damping_a_flapping_fault_opens_an_incident_per_return() {
    let mut book = IncidentBook::new(3);

    let changes = flap(&mut book);

    assert!(
        count(&changes, |c| matches!(c, IncidentChange::Opened { .. })) > 5,
        "{changes:?}"
    );
}

#[test]
fn a_resolve_hold_longer_than_the_gaps_keeps_a_flapping_fault_one_incident() {
    // Arrange: the cause must be gone for a minute before the incident resolves.
    let mut book = IncidentBook::new(3);
    book.set_damping(Damping {
        reopen_window_nanos: 0,
        resolve_hold_nanos: 60 * SEC,
    });

    // Act
    let changes = flap(&mut book);

    // Assert: opened once, resolved once (after the fault stopped): two notifications.
    let opened = count(&changes, |c| matches!(c, IncidentChange::Opened { .. }));
    let resolved = count(&changes, |c| matches!(c, IncidentChange::Resolved { .. }));
    assert_eq!((opened, resolved), (1, 1), "{changes:?}");
    assert_eq!(book.all().len(), 1);
    let incident = book.all()[0];
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert!(
        incident.resolved_at_unix_nanos >= Some(T0 + 660 * SEC),
        "resolved a hold after the last return"
    );
}

#[test]
fn a_cause_that_returns_within_the_reopen_window_reopens_its_incident() {
    // Arrange: an incident resolved by hand.
    let mut book = IncidentBook::new(3);
    book.set_damping(Damping {
        reopen_window_nanos: 120 * SEC,
        resolve_hold_nanos: 0,
    });
    let mut marks = Watermarks::default();
    let opened = cycle(&mut book, &mut marks, true, T0, T0 + CYCLE);
    let [IncidentChange::Opened { id }] = opened.as_slice() else {
        panic!("{opened:?}");
    };
    let resolved_at = T0 + 2 * CYCLE;
    book.resolve(id, resolved_at, &mut marks).expect("active");

    // Act: the fault returns a minute later, then again long after the window.
    let back = resolved_at + 60 * SEC;
    let reopened = cycle(&mut book, &mut marks, true, back, back + CYCLE);

    // Assert: the same incident, active again.
    assert_eq!(reopened, [IncidentChange::Reopened { id: id.clone() }]);
    let incident = book.get(id).expect("kept");
    assert_eq!(incident.status, IncidentStatus::Active);
    assert_eq!(incident.resolved_at_unix_nanos, None);
    assert_eq!(incident.alert_count, 2);

    let resolved_again = back + 2 * CYCLE;
    book.resolve(id, resolved_again, &mut marks)
        .expect("active");
    let late = resolved_again + 300 * SEC;
    let changes = cycle(&mut book, &mut marks, true, late, late + CYCLE);
    assert!(
        matches!(changes.as_slice(), [IncidentChange::Opened { id: new }] if new != id),
        "{changes:?}"
    );
}
