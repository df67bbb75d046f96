//! Scoring the deployments the engine blamed: the right one (the bad deployment of the case,
//! and how soon its incident named it), and any other (a false blame).

use crate::case::Case;
use crate::fault::{Effect, new_version};
use crate::runner::Outcome;

/// How the engine did on deployments in one case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentScore {
    /// For a bad-deployment case: some incident opened during the fault named the deployment
    /// (service and version) as its root cause.
    pub named: Option<bool>,
    /// Seconds from the opening of that incident to the first cycle naming the deployment.
    pub after_opening_secs: Option<f64>,
    /// Incidents that named another deployment, or any deployment in another case.
    pub false_blames: usize,
}

/// The deployment score of `outcome` on `case`.
pub fn deployments(case: &Case, outcome: &Outcome) -> DeploymentScore {
    let bad = case.faults.iter().find_map(|f| match f.injected.effect {
        Effect::Deployment {
            service, fail_rate, ..
        } if fail_rate > 0.0 => Some((
            format!(
                "{} {}",
                case.topology.services[service].name,
                new_version(service)
            ),
            f.injected.start_ns,
        )),
        _ => None,
    });
    let right = |named: &str| bad.as_ref().is_some_and(|(expected, _)| expected == named);
    let false_blames = outcome
        .incidents
        .iter()
        .filter(|i| {
            let blamed: Vec<&str> = outcome
                .sightings
                .iter()
                .filter(|s| s.id == i.id)
                .filter_map(|s| s.deployment.as_deref())
                .chain(i.deployment.as_deref())
                .collect();
            blamed.iter().any(|d| !right(d))
        })
        .count();
    let Some((_, start)) = &bad else {
        return DeploymentScore {
            named: None,
            after_opening_secs: None,
            false_blames,
        };
    };
    let naming = outcome
        .incidents
        .iter()
        .filter(|i| i.opened_ns >= *start)
        .filter_map(|i| {
            let first = outcome
                .sightings
                .iter()
                .filter(|s| s.id == i.id && s.deployment.as_deref().is_some_and(right))
                .map(|s| s.at_ns)
                .min()?;
            Some(first.saturating_sub(i.opened_ns) as f64 / 1e9)
        })
        .min_by(f64::total_cmp);
    DeploymentScore {
        named: Some(naming.is_some()),
        after_opening_secs: naming,
        false_blames,
    }
}
