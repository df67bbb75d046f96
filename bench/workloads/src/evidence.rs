//! The cases of logs, exceptions and deployments: faults only the logs or exception events
//! tell, deployments (bad and healthy), and a burst of log noise.

use rand::Rng;
use rand::rngs::StdRng;

use crate::fault::Effect;
use crate::sample::pick;
use crate::topology::{OpRef, Topology};

const SECOND: u64 = 1_000_000_000;

/// A class of case whose evidence is in logs, exception events or versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EvidenceClass {
    /// A defect that answers 200 with a bad result and logs an ERROR in its span; its caller
    /// fails on the result.
    LoggedDefect,
    /// An exception thrown and caught: an exception event on the span, an ERROR log.
    CaughtException,
    /// A new version of a service that fails a share of its requests.
    BadDeployment,
    /// A new version that is as healthy as the old one (no fault).
    HealthyDeployment,
    /// A burst of log lines of new templates, warnings and errors tied to no request (no
    /// fault).
    LogNoise,
}

impl EvidenceClass {
    /// Every class, in report order.
    pub const ALL: [Self; 5] = [
        Self::LoggedDefect,
        Self::CaughtException,
        Self::BadDeployment,
        Self::HealthyDeployment,
        Self::LogNoise,
    ];

    /// The class's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::LoggedDefect => "code fault, no status, error logs",
            Self::CaughtException => "caught exception",
            Self::BadDeployment => "bad deployment",
            Self::HealthyDeployment => "healthy deployment",
            Self::LogNoise => "log-noise burst",
        }
    }

    /// The variants, in report order.
    pub fn buckets(self) -> &'static [&'static str] {
        match self {
            Self::LoggedDefect | Self::CaughtException => &["15-40%", "50-80%"],
            Self::BadDeployment => &["all at once", "rolling", "10% canary"],
            Self::HealthyDeployment => &["all at once", "rolling"],
            Self::LogNoise => &["20-50 lines/s"],
        }
    }

    /// True for the classes with a fault to find; false for those where any incident is false.
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            Self::LoggedDefect | Self::CaughtException | Self::BadDeployment
        )
    }
}

/// The effect of a case of `class` (variant `bucket`) starting at `start_ns`, or `None` when
/// `topology` has no suitable place.
pub fn effect(
    rng: &mut StdRng,
    topology: &Topology,
    class: EvidenceClass,
    bucket: usize,
    start_ns: u64,
) -> Option<Effect> {
    let (ops, _) = topology.expected_visits();
    let visits = |op: OpRef| ops[op.service][op.operation];
    let service_visits = |s: usize| ops[s].iter().sum::<f64>();
    let rate = |rng: &mut StdRng| match bucket {
        0 => rng.random_range(0.15..0.4),
        _ => rng.random_range(0.5..0.8),
    };
    Some(match class {
        EvidenceClass::LoggedDefect => {
            // An operation with a caller, busy enough to be seen.
            let candidates: Vec<OpRef> = topology
                .operations()
                .filter(|op| topology.services[op.service].level > 0 && visits(*op) >= 0.2)
                .collect();
            Effect::LoggedDefect {
                op: *pick(rng, &non_empty(candidates)?),
                rate: rate(rng),
            }
        }
        EvidenceClass::CaughtException => {
            let candidates: Vec<OpRef> = topology
                .operations()
                .filter(|op| visits(*op) >= 0.2)
                .collect();
            Effect::CaughtException {
                op: *pick(rng, &non_empty(candidates)?),
                rate: rate(rng),
            }
        }
        EvidenceClass::BadDeployment | EvidenceClass::HealthyDeployment => {
            // A service whose failures show in some span, busy enough for its versions to be
            // compared.
            let candidates: Vec<usize> = (0..topology.services.len())
                .filter(|&s| {
                    service_visits(s) >= 0.5
                        && crate::visibility::errors_recorded(topology, s, None)
                })
                .collect();
            let service = *pick(rng, &non_empty(candidates)?);
            let bad = class == EvidenceClass::BadDeployment;
            let (share, ramp_ns, fail_rate) = match (bad, bucket) {
                (true, 0) => (1.0, 0, rng.random_range(0.2..0.6)),
                (true, 1) => (1.0, 60 * SECOND, rng.random_range(0.3..0.6)),
                (true, _) => (0.1, 0, rng.random_range(0.6..1.0)),
                (false, 0) => (1.0, 0, 0.0),
                (false, _) => (1.0, 60 * SECOND, 0.0),
            };
            Effect::Deployment {
                service,
                share,
                ramp_ns,
                start_ns,
                fail_rate,
            }
        }
        EvidenceClass::LogNoise => Effect::LogNoise {
            service: rng.random_range(0..topology.services.len()),
            per_second: rng.random_range(20..=50),
        },
    })
}

/// The routine ERROR lines of a case whose evidence effect is `effect`: a service the faulty
/// place calls, when it calls one (where error provenance would otherwise end), else any
/// other service; in 2 to 6% of its requests, far under the error-rate threshold, so that the
/// service never looks failing.
pub fn routine_errors(rng: &mut StdRng, topology: &Topology, effect: &Effect) -> Effect {
    let faulty: Vec<OpRef> = match *effect {
        Effect::LoggedDefect { op, .. } | Effect::CaughtException { op, .. } => vec![op],
        Effect::Deployment { service, .. } => topology
            .operations()
            .filter(|op| op.service == service)
            .collect(),
        _ => Vec::new(),
    };
    let mut callees: Vec<usize> = faulty
        .iter()
        .flat_map(|op| topology.callee_services(*op))
        .collect();
    callees.sort_unstable();
    callees.dedup();
    if callees.is_empty() {
        callees = (0..topology.services.len())
            .filter(|s| !faulty.iter().any(|op| op.service == *s))
            .collect();
    }
    let service = *pick(rng, &callees);
    Effect::RoutineErrors {
        service,
        share: rng.random_range(0.02..0.06),
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}
