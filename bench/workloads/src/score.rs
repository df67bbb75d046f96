//! Scores one case: the engine's incidents against the faults' ground truth.
//!
//! - Incidents opened before the first fault (or at any time in a healthy case) are false.
//! - The incidents opened from the first fault's start to the end of the case belong to the
//!   faults. They are ranked by the alerts they absorbed (then by opening time); their
//!   root-cause services, followed by their candidates' services, form the ranked list.
//! - With `k` faults in a case (1, or 2 for concurrent faults), a fault is a top-1 hit when
//!   its place is among the first `k` entries of the list, a top-3 hit among the first
//!   `k + 2`. At endpoint or edge level the list holds root-cause endpoints, then candidate
//!   endpoints, and an entry is a hit when it is an acceptable answer ([`crate::truth`]).
//! - Time to detect runs from the fault's start to the first cycle that reported an incident
//!   (opened during the faults) whose root cause is the fault's place ("right"), or to the
//!   first incident opened after the fault started ("any").

use crate::case::{Case, Scenario};
use crate::runner::{NamedIncident, Outcome};
pub use crate::score_evidence::{DeploymentScore, deployments};

/// How the engine did on one fault.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultScore {
    /// The fault is visible in traces ([`crate::visibility`]): the detection target counts it.
    pub visible: bool,
    /// Some incident was opened while the case's faults were on.
    pub detected: bool,
    /// Top-1 at service level.
    pub top1: bool,
    /// Top-3 at service level.
    pub top3: bool,
    /// Top-1 at endpoint or edge level.
    pub top1_endpoint: bool,
    /// Top-3 at endpoint or edge level.
    pub top3_endpoint: bool,
    /// Seconds to the first right root cause.
    pub to_right_secs: Option<f64>,
    /// Seconds to the first incident.
    pub to_any_secs: Option<f64>,
}

/// How the engine did on one case.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseScore {
    /// The case's scenario.
    pub scenario: Scenario,
    /// The case's seed.
    pub seed: u64,
    /// One score per fault (none for healthy cases).
    pub faults: Vec<FaultScore>,
    /// Incidents opened during the faults.
    pub incidents_during: usize,
    /// Incidents opened with no fault on.
    pub false_incidents: usize,
    /// Of those, in a case with no fault, the ones opened after the warm-up: while a healthy
    /// disturbance (a burst of outliers or log noise, a healthy deployment) was on, or after.
    pub false_after_warm_up: usize,
    /// Incidents folded into another one when a revised root cause showed both were one
    /// problem (counted in neither of the above).
    pub folded: usize,
    /// For concurrent faults: both places are the root cause of some incident.
    pub both_named: Option<bool>,
    /// The ranked list of places named during the faults.
    pub ranked: Vec<String>,
    /// Deployments named as root causes, right and wrong.
    pub deployments: DeploymentScore,
}

impl CaseScore {
    /// True when every fault was a top-1 hit, with no false incident and no more incidents
    /// than faults.
    pub fn is_clean(&self) -> bool {
        self.false_incidents == 0
            && self.faults.iter().all(|f| f.top1)
            && self.incidents_during <= self.faults.len()
    }
}

/// Scores `outcome`, the engine's incidents on `case`.
pub fn score(case: &Case, outcome: &Outcome) -> CaseScore {
    let fault_start = case.fault_start_ns();
    let healthy = case.faults.is_empty();
    // An incident folded into another lives on in it: it is not a separate problem.
    let folded = outcome
        .incidents
        .iter()
        .filter(|i| i.merged_into.is_some())
        .count();
    let (mut during, before): (Vec<&NamedIncident>, Vec<&NamedIncident>) = outcome
        .incidents
        .iter()
        .filter(|i| i.merged_into.is_none())
        .partition(|i| !healthy && i.opened_ns >= fault_start);
    during.sort_by(|a, b| {
        b.alert_count
            .cmp(&a.alert_count)
            .then(a.opened_ns.cmp(&b.opened_ns))
    });
    let ranked = ranked_places(&during);
    let endpoints = ranked_endpoints(&during);
    let k = case.faults.len();
    let faults = case
        .faults
        .iter()
        .map(|fault| {
            let truth = &fault.truth;
            let start = fault.injected.start_ns;
            let secs_since = |t: u64| t.saturating_sub(start) as f64 / 1e9;
            let to_right = outcome
                .sightings
                .iter()
                .filter(|s| s.at_ns >= start && s.service == truth.node)
                .find(|s| during.iter().any(|i| i.id == s.id))
                .map(|s| secs_since(s.at_ns));
            let to_any = during
                .iter()
                .map(|i| i.opened_ns)
                .filter(|&t| t >= start)
                .min()
                .map(secs_since);
            FaultScore {
                visible: fault.visibility.visible,
                detected: !during.is_empty(),
                top1: ranked.iter().take(k).any(|p| *p == truth.node),
                top3: ranked.iter().take(k + 2).any(|p| *p == truth.node),
                top1_endpoint: endpoints
                    .iter()
                    .take(k)
                    .any(|(service, endpoint)| truth.endpoint_matches(service, endpoint)),
                top3_endpoint: endpoints
                    .iter()
                    .take(k + 2)
                    .any(|(service, endpoint)| truth.endpoint_matches(service, endpoint)),
                to_right_secs: to_right,
                to_any_secs: to_any,
            }
        })
        .collect();
    CaseScore {
        scenario: case.scenario,
        seed: case.seed,
        faults,
        incidents_during: during.len(),
        false_incidents: before.len(),
        false_after_warm_up: before
            .iter()
            .filter(|i| healthy && i.opened_ns >= fault_start)
            .count(),
        folded,
        both_named: (k == 2).then(|| {
            case.faults
                .iter()
                .all(|f| during.iter().any(|i| i.service == f.truth.node))
        }),
        ranked,
        deployments: deployments(case, outcome),
    }
}

/// Root-cause places of the ranked incidents, then their candidates' places; each once.
fn ranked_places(incidents: &[&NamedIncident]) -> Vec<String> {
    let mut ranked: Vec<String> = Vec::new();
    let roots = incidents.iter().map(|i| &i.service);
    let candidates = incidents
        .iter()
        .flat_map(|i| i.candidates.iter().map(|(service, _, _)| service));
    for place in roots.chain(candidates) {
        if !ranked.contains(place) {
            ranked.push(place.clone());
        }
    }
    ranked
}

/// Root-cause endpoints of the ranked incidents, then their candidates' endpoints; each once.
fn ranked_endpoints(incidents: &[&NamedIncident]) -> Vec<(String, String)> {
    let mut ranked: Vec<(String, String)> = Vec::new();
    let roots = incidents.iter().map(|i| (&i.service, &i.endpoint));
    let candidates = incidents.iter().flat_map(|i| {
        i.candidates
            .iter()
            .map(|(service, endpoint, _)| (service, endpoint))
    });
    for (service, endpoint) in roots.chain(candidates) {
        if !ranked.iter().any(|(s, e)| s == service && e == endpoint) {
            ranked.push((service.clone(), endpoint.clone()));
        }
    }
    ranked
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::case::{FaultClass, HealthyClass};
    use crate::runner::Sighting;

    fn incident(
        id: &str,
        opened_s: u64,
        service: &str,
        endpoint: &str,
        alerts: u64,
    ) -> NamedIncident {
        NamedIncident {
            id: id.to_owned(),
            opened_ns: crate::case::T0 + opened_s * 1_000_000_000,
            service: service.to_owned(),
            endpoint: endpoint.to_owned(),
            kind: "latency_spike".to_owned(),
            description: String::new(),
            confidence: 1.0,
            candidates: vec![("other".to_owned(), "GET".to_owned(), 0.2)],
            alert_count: alerts,
            title: String::new(),
            merged_into: None,
            deployment: None,
        }
    }

    fn outcome(incidents: Vec<NamedIncident>) -> Outcome {
        let sightings = incidents
            .iter()
            .map(|i| Sighting {
                at_ns: i.opened_ns,
                id: i.id.clone(),
                service: i.service.clone(),
                endpoint: i.endpoint.clone(),
                deployment: None,
            })
            .collect();
        Outcome {
            incidents,
            sightings,
            requests: 0,
            spans: 0,
            logs: 0,
            cycles: (0, 0),
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn a_right_incident_after_a_wrong_one_is_top_3_not_top_1() {
        let case = Case::draw(Scenario::Fault(FaultClass::CpuSaturation, 2), 11);
        let truth = case.faults[0].truth.node.clone();
        let start_s = (case.fault_start_ns() - crate::case::T0) / 1_000_000_000;
        let scored = score(
            &case,
            &outcome(vec![
                incident("early", start_s - 30, "x", "GET", 1),
                incident("wrong", start_s + 3, "x", "GET", 5),
                incident("right", start_s + 8, &truth, "GET /a", 2),
            ]),
        );
        assert_eq!((scored.false_incidents, scored.incidents_during), (1, 2));
        assert_eq!(
            scored.false_after_warm_up, 0,
            "a fault case's are all before it"
        );
        let fault = &scored.faults[0];
        assert!(fault.detected && !fault.top1 && fault.top3);
        assert!(!fault.top1_endpoint && fault.top3_endpoint);
        assert_eq!(fault.to_any_secs, Some(3.0));
        assert_eq!(fault.to_right_secs, Some(8.0));
    }

    #[test]
    fn every_incident_of_a_healthy_case_is_false() {
        let case = Case::draw(Scenario::Healthy(HealthyClass::Steady), 12);
        let end_s = (case.fault_start_ns() - crate::case::T0) / 1_000_000_000;
        let scored = score(
            &case,
            &outcome(vec![
                incident("a", end_s + 10, "x", "GET", 1),
                incident("b", end_s - 10, "x", "GET", 1),
            ]),
        );
        assert_eq!((scored.false_incidents, scored.incidents_during), (2, 0));
        assert_eq!(
            scored.false_after_warm_up, 1,
            "one opened after the warm-up"
        );
        assert!(scored.faults.is_empty());
    }
}
