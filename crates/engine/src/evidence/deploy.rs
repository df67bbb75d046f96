//! When a deployment is an incident's root cause: the rules of ADR 0011.

use aiops_telemetry_core::{Change, ChangeKind, ChangeSource, EndpointKey, TimeWindow};

use super::facts::{Fact, SERVICE_VERSION, SpanFacts};
use super::types::{DeploymentCause, VersionShare};

/// What the deployment rule needs to know of an incident and the engine's settings.
pub(crate) struct DeploymentQuestion<'a> {
    /// The root cause's service.
    pub service: &'a str,
    /// When the incident was first detected.
    pub detected_unix_nanos: u64,
    pub now_unix_nanos: u64,
    /// How long before detection a deployment may be blamed (the baseline window).
    pub lookback_nanos: u64,
    /// How long before detection a deployment that took all the traffic at once may be
    /// blamed: without an old version to compare with, only a fault that began with it.
    pub onset_nanos: u64,
    /// Requests of the new version needed to tell.
    pub min_requests: u64,
    /// Whether a request went wrong the way the incident says (failed, or slow).
    pub bad: &'a dyn Fn(&EndpointKey, &Fact) -> bool,
    /// Whether the incident is about failures (true) or slowness.
    pub failures: bool,
}

/// Share of the new version's requests that must go wrong, at least.
const MIN_BAD_SHARE: f64 = 0.05;
/// Requests that must go wrong, at least.
const MIN_BAD: u64 = 3;
/// How many times the old versions' share the new one's must be.
const CONTRAST: f64 = 3.0;

/// The deployment of `question.service` to blame, if the rules allow it: the latest deployment
/// (with a version) of the service between the lookback and detection, whose version's
/// requests since went wrong clearly more than the other versions' over the same time (or, when
/// it took all the traffic at once, more than the service's requests before it and shortly
/// before detection), on enough requests to tell.
pub(crate) fn blame(
    question: &DeploymentQuestion<'_>,
    changes: &[Change],
    facts: &SpanFacts,
) -> Option<DeploymentCause> {
    let earliest = question
        .detected_unix_nanos
        .saturating_sub(question.lookback_nanos);
    let deployments = || {
        changes.iter().filter(|c| {
            c.kind == ChangeKind::Deployment
                && c.service.as_str() == question.service
                && c.version.is_some()
                && (earliest..=question.detected_unix_nanos).contains(&c.time_unix_nanos)
        })
    };
    let latest = deployments().max_by_key(|c| c.time_unix_nanos)?;
    // A deployment both reported and observed is told as reported (its time is the
    // pipeline's, its previous version known).
    let change = deployments()
        .filter(|c| c.version == latest.version && c.source == ChangeSource::Reported)
        .min_by_key(|c| c.time_unix_nanos)
        .unwrap_or(latest);
    let version = change.version.as_ref()?.as_str();
    let of_service = |e: &EndpointKey| e.service.as_str() == question.service;

    let (mut new, mut old, mut before, mut unversioned) = (
        VersionShare::default(),
        VersionShare::default(),
        VersionShare::default(),
        VersionShare::default(),
    );
    let mut versioned = false;
    let since = TimeWindow::new(
        change.time_unix_nanos,
        question.now_unix_nanos.saturating_add(1),
    );
    facts.visit_recent(of_service, since, |endpoint, fact| {
        let bad = (question.bad)(endpoint, fact);
        let share = match fact.attribute(SERVICE_VERSION) {
            Some(v) => {
                versioned = true;
                if v == version { &mut new } else { &mut old }
            }
            None => &mut unversioned,
        };
        share.requests += 1;
        share.bad += u64::from(bad);
    });
    let prior = TimeWindow::new(
        change
            .time_unix_nanos
            .saturating_sub(question.lookback_nanos),
        change.time_unix_nanos,
    );
    // Without versions on the spans, a reported deployment's requests are those after it.
    if !versioned {
        new = unversioned;
    }
    facts.visit_recent(of_service, prior, |endpoint, fact| {
        before.requests += 1;
        before.bad += u64::from((question.bad)(endpoint, fact));
    });

    if new.requests < question.min_requests || new.bad < MIN_BAD || new.share() < MIN_BAD_SHARE {
        return None;
    }
    let both_serve = versioned && old.requests >= question.min_requests;
    if both_serve {
        // The old version failing the same way says the fault is not the new code.
        if old.share() * CONTRAST > new.share() || new.share() - old.share() < MIN_BAD_SHARE {
            return None;
        }
    } else {
        if question
            .detected_unix_nanos
            .saturating_sub(change.time_unix_nanos)
            > question.onset_nanos
        {
            return None;
        }
        if before.requests >= question.min_requests && before.share() * CONTRAST > new.share() {
            return None;
        }
    }

    let previous = change
        .previous_version
        .as_ref()
        .map(|v| v.to_string())
        .or_else(|| {
            facts
                .versions(question.service)
                .into_iter()
                .filter(|v| v.version != version && v.first_seen < change.time_unix_nanos)
                .max_by_key(|v| v.last_seen)
                .map(|v| v.version)
        });
    let went = if question.failures {
        "failed"
    } else {
        "were slow"
    };
    let from = previous
        .as_deref()
        .map_or_else(String::new, |p| format!(" (from {p})"));
    let against = if both_serve {
        format!(
            " against {:.0}% of the other versions' {}",
            old.share() * 100.0,
            old.requests
        )
    } else {
        format!(
            " since it took all the traffic, against {:.0}% before",
            before.share() * 100.0
        )
    };
    let description = format!(
        "Deployment of {} {version}{from}: {:.0}% of its {} requests {went}{against}",
        question.service,
        new.share() * 100.0,
        new.requests,
    );
    Some(DeploymentCause {
        service: question.service.to_owned(),
        previous_version: previous,
        version: version.to_owned(),
        time_unix_nanos: change.time_unix_nanos,
        source: change.source,
        new_version: new,
        old_versions: if both_serve {
            old
        } else {
            VersionShare::default()
        },
        description,
    })
}
