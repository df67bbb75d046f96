//! Draws the faults of a case: where (a place with enough traffic to be seen) and how large
//! (the class's magnitude bucket).

use rand::Rng;
use rand::rngs::StdRng;

use crate::case::FaultClass;
use crate::fault::Effect;
use crate::sample::{log_uniform, pick};
use crate::topology::{OpRef, Topology};

/// Fewest expected visits per request for a place to be a fault target (about two requests
/// a second at the default rate), unless nothing has that many.
const MIN_VISITS: f64 = 0.2;

/// The effects of one case of `class` in bucket `bucket`, or `None` when `topology` has no
/// suitable place (the case is drawn again on another system). May adjust the target's
/// healthy behaviour (a slow operation's target is given an own time of about 10 ms).
pub fn effects(
    rng: &mut StdRng,
    topology: &mut Topology,
    class: FaultClass,
    bucket: usize,
) -> Option<Vec<Effect>> {
    let visited = Visited::of(topology);
    Some(match class {
        FaultClass::TwoFaults => {
            let first = *pick(rng, &visited.services);
            let second: Vec<usize> = visited
                .services
                .iter()
                .copied()
                .filter(|&s| topology.unrelated(first, s))
                .collect();
            if second.is_empty() {
                return None;
            }
            let second = *pick(rng, &second);
            vec![
                service_fault(rng, topology, &visited, first, bucket),
                service_fault(rng, topology, &visited, second, bucket),
            ]
        }
        FaultClass::SlowDependency => {
            let dependency = *pick(rng, &visited.dependencies);
            vec![Effect::SlowDependency {
                dependency,
                extra_ms: latency(rng, bucket),
            }]
        }
        FaultClass::SilentEarlyReturn => {
            let callers: Vec<OpRef> = visited
                .ops
                .iter()
                .copied()
                .filter(|&op| !topology.operation(op).stages.is_empty())
                .collect();
            let non_entry: Vec<OpRef> = callers
                .iter()
                .copied()
                .filter(|op| topology.services[op.service].level > 0)
                .collect();
            let pool = if non_entry.is_empty() {
                callers
            } else {
                non_entry
            };
            if pool.is_empty() {
                return None;
            }
            vec![Effect::EarlyReturn {
                op: *pick(rng, &pool),
                rate: rate(rng, bucket),
                edge_error: rng.random_bool(0.5),
            }]
        }
        _ => {
            let service = *pick(rng, &visited.services);
            vec![single(rng, topology, &visited, class, service, bucket)]
        }
    })
}

/// A fault of `class` at `service`.
fn single(
    rng: &mut StdRng,
    topology: &mut Topology,
    visited: &Visited,
    class: FaultClass,
    service: usize,
    bucket: usize,
) -> Effect {
    match class {
        FaultClass::NetworkDelay => Effect::NetworkDelay {
            service,
            extra_ms: latency(rng, bucket),
        },
        FaultClass::CpuSaturation => Effect::CpuSaturation {
            service,
            factor: match bucket {
                0 => rng.random_range(0.2..0.5),
                1 => rng.random_range(0.5..1.0),
                _ => rng.random_range(1.0..2.0),
            },
        },
        FaultClass::SlowOperation => {
            let op = visited.op_of(rng, service);
            topology.services[op.service].operations[op.operation].self_median_ms =
                log_uniform(rng, 7.0, 14.0);
            Effect::SlowOperation {
                op,
                extra_ms: latency(rng, bucket),
            }
        }
        FaultClass::ErrorsWithStatus => Effect::Errors {
            service,
            operation: rng
                .random_bool(0.5)
                .then(|| visited.op_of(rng, service).operation),
            rate: rate(rng, bucket),
        },
        _ => {
            // A hang outlasts every caller's client timeout.
            let longest_wait = topology
                .callers_of(service)
                .iter()
                .map(|caller| topology.services[caller.service].client_timeout_ms)
                .fold(0.0, f64::max);
            Effect::Hang {
                service,
                probability: match bucket {
                    0 => rng.random_range(0.05..0.1),
                    1 => rng.random_range(0.15..0.4),
                    _ => rng.random_range(0.5..1.0),
                },
                hang_ms: longest_wait * rng.random_range(1.2..2.0),
            }
        }
    }
}

/// One of the two faults of a concurrent case: a slow operation, CPU saturation, errors or
/// (large only) a hang, at the small end of the scale (bucket 0) or the large end.
fn service_fault(
    rng: &mut StdRng,
    topology: &mut Topology,
    visited: &Visited,
    service: usize,
    bucket: usize,
) -> Effect {
    let classes: &[FaultClass] = if bucket == 0 {
        &[
            FaultClass::SlowOperation,
            FaultClass::CpuSaturation,
            FaultClass::ErrorsWithStatus,
        ]
    } else {
        &[
            FaultClass::SlowOperation,
            FaultClass::CpuSaturation,
            FaultClass::ErrorsWithStatus,
            FaultClass::Timeout,
        ]
    };
    let class = *pick(rng, classes);
    // Small: the middle buckets of the single classes; large: their largest.
    single(
        rng,
        topology,
        visited,
        class,
        service,
        if bucket == 0 { 1 } else { 2 },
    )
}

fn latency(rng: &mut StdRng, bucket: usize) -> f64 {
    match bucket {
        0 => 20.0 * rng.random_range(0.9..1.1),
        1 => 50.0 * rng.random_range(0.9..1.1),
        _ => log_uniform(rng, 100.0, 1_000.0),
    }
}

fn rate(rng: &mut StdRng, bucket: usize) -> f64 {
    match bucket {
        0 => rng.random_range(0.05..0.1),
        1 => rng.random_range(0.15..0.4),
        _ => rng.random_range(0.5..0.8),
    }
}

/// Places with enough traffic to be fault targets.
struct Visited {
    /// Non-entry services.
    services: Vec<usize>,
    /// Operations (of any service).
    ops: Vec<OpRef>,
    /// Dependencies.
    dependencies: Vec<usize>,
}

impl Visited {
    fn of(topology: &Topology) -> Self {
        let (ops, deps) = topology.expected_visits();
        let service_visits = |s: usize| ops[s].iter().sum::<f64>();
        let busy_ops: Vec<OpRef> = topology
            .operations()
            .filter(|op| ops[op.service][op.operation] >= MIN_VISITS)
            .collect();
        let non_entry: Vec<usize> = (0..topology.services.len())
            .filter(|&s| topology.services[s].level > 0)
            .collect();
        Self {
            services: busiest(&non_entry, service_visits),
            ops: if busy_ops.is_empty() {
                topology.operations().collect()
            } else {
                busy_ops
            },
            dependencies: busiest(&(0..deps.len()).collect::<Vec<_>>(), |d| deps[d]),
        }
    }

    /// A busy operation of `service`, or any of its operations.
    fn op_of(&self, rng: &mut StdRng, service: usize) -> OpRef {
        let own: Vec<OpRef> = self
            .ops
            .iter()
            .copied()
            .filter(|op| op.service == service)
            .collect();
        if own.is_empty() {
            OpRef {
                service,
                operation: 0,
            }
        } else {
            *pick(rng, &own)
        }
    }
}

/// The items with at least [`MIN_VISITS`], or the single busiest when none has.
fn busiest(items: &[usize], visits: impl Fn(usize) -> f64) -> Vec<usize> {
    let busy: Vec<usize> = items
        .iter()
        .copied()
        .filter(|&i| visits(i) >= MIN_VISITS)
        .collect();
    if !busy.is_empty() {
        return busy;
    }
    items
        .iter()
        .copied()
        .max_by(|&a, &b| visits(a).total_cmp(&visits(b)))
        .into_iter()
        .collect()
}
