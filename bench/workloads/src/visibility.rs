//! Whether a fault is visible in traces: the rule that decides which faults the detection
//! target counts.
//!
//! The project's targets ask for detection of faults that add at least 20 ms **and** at least
//! 50% to the own time of the faulty place at about 10 requests/s. [`visibility`] applies that
//! rule to one injected fault, from the case's own ground truth (the drawn magnitude and the
//! topology's healthy medians), never from what the engine saw:
//!
//! | fault | what grows | healthy reference | visible when |
//! |---|---|---|---|
//! | network delay into a service | the gap of the edges into it (client span minus server span) | twice the one-way network median | the added delay is >= 20 ms and >= 50% of the gap |
//! | CPU saturation | the own time of the service's operations | the typical operation's median own time (the median by traffic of the operations' medians) | `factor` x that median is >= 20 ms, and `factor` >= 0.5 |
//! | slow dependency | each call's latency | the dependency's median latency | the added latency is >= 20 ms and >= 50% of the median |
//! | slow operation | the operation's own time | its median own time | the added time is >= 20 ms and >= 50% of the median |
//! | errors with status | the failing share | none | the rate is >= 20% (the engine's default `error_rate_threshold`) and some span records the status: the service's own server spans, or a caller's client spans (a legacy gRPC service called only by legacy services records none) |
//! | hang past the client timeout | the callers' waits, ending in a timeout | none | always |
//! | early return, no status | the call structure: calls the operation no longer makes | the calls on each edge out of the caller's service | on some edge out of the defective operation's service, the dropped calls are >= 20% of the edge's calls, and over one minute at 10 requests/s they are >= 3 standard deviations of the edge's call count (its square root) |
//!
//! An early return changes no timing and (without the 500 at the edge) no status: it is
//! visible in the call structure only, to a detector of missing calls, not to one of latency
//! or errors. The 20% error threshold is fixed here rather than read from the engine, so that
//! changing the engine's knobs cannot move the set of faults it is measured on.
//!
//! Traffic is not part of the rule for the other faults: they are only drawn at places with
//! about two requests a second or more at the suite's 10 requests/s ([`crate::draw`]). An early
//! return's place is an edge, and the draw's floor is its operation's: an operation with two
//! requests a second that calls a peer on a fifth of them puts 25 calls a minute on that edge,
//! and a quarter of them going missing is 6 calls, under two deviations of the count. Even a
//! detector that counted every request could not tell that from chance within the fault, so
//! the drop must also stand out of the edge's own count over a minute, as a slowdown of +20 ms
//! and +50% at two requests a second does.

use std::fmt;

use crate::fault::Effect;
use crate::topology::{OpRef, Protocol, Target, Topology};

/// Least added own time of a visible slowdown, milliseconds.
pub const MIN_ADDED_MS: f64 = 20.0;
/// Least relative growth of the own time of a visible slowdown (0.5 is +50%).
pub const MIN_GROWTH: f64 = 0.5;
/// Least error rate of visible errors: the engine's default `error_rate_threshold`.
pub const MIN_ERROR_RATE: f64 = 0.2;
/// Least share of the calls on an edge that an early return must drop to be visible.
pub const MIN_DROPPED_SHARE: f64 = 0.2;
/// Least standard deviations of the edge's call count in one minute at [`NOMINAL_RATE`]
/// that the dropped calls of a visible early return make.
pub const MIN_DROPPED_DEVIATIONS: f64 = 3.0;
/// The request rate at which the rule is applied, requests per second at the entries (the
/// suite's base rate is drawn between 8 and 12).
pub const NOMINAL_RATE: f64 = 10.0;

/// What a fault changes at its place, as the visibility rule measures it.
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    /// Time added to the place's own time (or edge gap, or call latency).
    Time {
        /// What grows: `edge gap`, `own time`, `call latency`.
        what: &'static str,
        /// Milliseconds added (the drawn magnitude).
        added_ms: f64,
        /// The healthy median it is added to.
        healthy_ms: f64,
    },
    /// A share of requests fails with an error status.
    Errors {
        /// Share of the place's requests that fail.
        rate: f64,
        /// Some span records the failure (the service's server spans or a caller's client
        /// spans).
        recorded: bool,
    },
    /// Requests hang past their callers' client timeout.
    Hang,
    /// Calls go missing from the call structure.
    CallStructure {
        /// The largest share of calls dropped on one edge out of the defective service (of
        /// the edges whose drop stands out of their count, when some does).
        dropped_share: f64,
        /// The calls that edge loses in a minute at [`NOMINAL_RATE`], in standard
        /// deviations of its count of calls in that minute.
        deviations: f64,
    },
    /// Not a fault (a healthy disturbance).
    Nothing,
}

/// Whether a fault is visible in traces, and the measure that decided it.
#[derive(Clone, Debug, PartialEq)]
pub struct Visibility {
    /// The fault is visible: the detection target counts it.
    pub visible: bool,
    /// What the rule measured.
    pub signal: Signal,
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.visible {
            "visible"
        } else {
            "not visible"
        })?;
        match self.signal {
            Signal::Time {
                what,
                added_ms,
                healthy_ms,
            } => write!(
                f,
                ": +{added_ms:.1} ms on {healthy_ms:.1} ms {what} (+{:.0}%)",
                100.0 * added_ms / healthy_ms.max(f64::MIN_POSITIVE)
            ),
            Signal::Errors { rate, recorded } => write!(
                f,
                ": {:.0}% errors{}",
                rate * 100.0,
                if recorded {
                    ""
                } else {
                    ", recorded by no span"
                }
            ),
            Signal::Hang => f.write_str(": hangs past the client timeout"),
            Signal::CallStructure {
                dropped_share,
                deviations,
            } => write!(
                f,
                ": {:.0}% of an edge's calls dropped, {deviations:.1} deviations of its count in a minute (call structure only)",
                dropped_share * 100.0
            ),
            Signal::Nothing => Ok(()),
        }
    }
}

/// The visibility rule (see the [module documentation](self)) applied to `effect` in
/// `topology`.
pub fn visibility(effect: &Effect, topology: &Topology) -> Visibility {
    let slowdown = |what, added_ms: f64, healthy_ms: f64| Visibility {
        visible: added_ms >= MIN_ADDED_MS && added_ms >= MIN_GROWTH * healthy_ms,
        signal: Signal::Time {
            what,
            added_ms,
            healthy_ms,
        },
    };
    match *effect {
        Effect::NetworkDelay { service, extra_ms } => {
            // A request gap and a response gap, each lognormal around the one-way median.
            let gap_ms = 2.0 * topology.services[service].network_median_ms;
            slowdown("edge gap", extra_ms, gap_ms)
        }
        Effect::CpuSaturation { service, factor } => {
            let median_ms = typical_self_ms(topology, service);
            let mut seen = slowdown("own time", factor * median_ms, median_ms);
            // The growth is relative: `factor` decides it exactly, whatever the rounding.
            seen.visible &= factor >= MIN_GROWTH;
            seen
        }
        Effect::SlowDependency {
            dependency,
            extra_ms,
        } => slowdown(
            "call latency",
            extra_ms,
            topology.dependencies[dependency].latency_median_ms,
        ),
        Effect::SlowOperation { op, extra_ms } => {
            slowdown("own time", extra_ms, topology.operation(op).self_median_ms)
        }
        Effect::Errors {
            service,
            operation,
            rate,
        } => {
            let recorded = errors_recorded(topology, service, operation);
            Visibility {
                visible: rate >= MIN_ERROR_RATE && recorded,
                signal: Signal::Errors { rate, recorded },
            }
        }
        Effect::Hang { .. } => Visibility {
            visible: true,
            signal: Signal::Hang,
        },
        Effect::EarlyReturn { op, rate, .. } => {
            let (dropped_share, deviations) = most_visible_drop(topology, op, rate);
            Visibility {
                visible: dropped_share >= MIN_DROPPED_SHARE && deviations >= MIN_DROPPED_DEVIATIONS,
                signal: Signal::CallStructure {
                    dropped_share,
                    deviations,
                },
            }
        }
        Effect::OutlierBurst { .. } | Effect::LogNoise { .. } | Effect::RoutineErrors { .. } => {
            Visibility {
                visible: false,
                signal: Signal::Nothing,
            }
        }
        // Failures the logs or exception events tell: visible as errors of the operation.
        Effect::LoggedDefect { rate, .. } | Effect::CaughtException { rate, .. } => Visibility {
            visible: rate >= MIN_ERROR_RATE,
            signal: Signal::Errors {
                rate,
                recorded: true,
            },
        },
        Effect::Deployment {
            service, fail_rate, ..
        } => {
            let recorded = errors_recorded(topology, service, None);
            Visibility {
                visible: fail_rate >= MIN_ERROR_RATE && recorded,
                signal: Signal::Errors {
                    rate: fail_rate,
                    recorded,
                },
            }
        }
    }
}

/// The median own time of the operation a typical request to `service` runs: the median of
/// its operations' median own times, weighted by their expected visits.
fn typical_self_ms(topology: &Topology, service: usize) -> f64 {
    let (visits, _) = topology.expected_visits();
    let operations = &topology.services[service].operations;
    let mut weighted: Vec<(f64, f64)> = operations
        .iter()
        .zip(&visits[service])
        .map(|(op, &v)| (op.self_median_ms, v))
        .collect();
    if weighted.iter().all(|&(_, v)| v <= 0.0) {
        weighted.iter_mut().for_each(|(_, v)| *v = 1.0);
    }
    weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = weighted.iter().map(|&(_, v)| v).sum();
    let mut below = 0.0;
    for &(median, v) in &weighted {
        below += v;
        if below >= total / 2.0 {
            return median;
        }
    }
    weighted.last().map_or(0.0, |&(median, _)| median)
}

/// True when a failure of `service` (of its operation `operation`, or of any) shows in some
/// span: its own server spans carry a status unless it is a legacy gRPC service (legacy HTTP
/// spans still carry the status code), and a caller's gRPC client spans carry one unless that
/// caller is a legacy service too.
pub(crate) fn errors_recorded(
    topology: &Topology,
    service: usize,
    operation: Option<usize>,
) -> bool {
    let callee = &topology.services[service];
    if !callee.legacy || callee.protocol == Protocol::Http {
        return true;
    }
    topology.operations().any(|caller| {
        !topology.services[caller.service].legacy
            && topology
                .operation(caller)
                .stages
                .iter()
                .flatten()
                .any(|call| {
                    matches!(call.target, Target::Service(op)
                        if op.service == service && operation.is_none_or(|o| o == op.operation))
                })
    })
}

/// Where a call goes, at the level of a service's edges.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Peer {
    Service(usize),
    Dependency(usize),
}

/// Expected calls per request that `op` makes to each peer.
fn calls_by_peer(topology: &Topology, visits: &[Vec<f64>], op: OpRef) -> Vec<(Peer, f64)> {
    let mut calls: Vec<(Peer, f64)> = Vec::new();
    let mut add = |peer: Peer, count: f64| match calls.iter_mut().find(|(p, _)| *p == peer) {
        Some((_, total)) => *total += count,
        None => calls.push((peer, count)),
    };
    let made = visits[op.service][op.operation];
    for call in topology.operation(op).stages.iter().flatten() {
        let count = made * call.probability * f64::from(call.repeat);
        match &call.target {
            Target::Service(callee) => add(Peer::Service(callee.service), count),
            Target::Dependency(dep) => add(Peer::Dependency(dep.dependency), count),
            Target::CacheAside {
                cache,
                store,
                hit_ratio,
            } => {
                add(Peer::Dependency(cache.dependency), count);
                add(
                    Peer::Dependency(store.dependency),
                    count * (1.0 - hit_ratio),
                );
            }
        }
    }
    calls
}

/// The drop that `op` returning early on a share `rate` of its requests makes on the edges
/// out of its service, as the share of each edge's calls dropped and those calls in standard
/// deviations of the edge's count in a minute at [`NOMINAL_RATE`] (a count of independent
/// calls: its variance is its mean). Of the edges, the one with the largest share among those
/// whose drop stands out of their count, or among all when none does. An edge is the caller
/// service's client endpoint for one peer, which every operation of the service that calls the
/// peer feeds.
fn most_visible_drop(topology: &Topology, op: OpRef, rate: f64) -> (f64, f64) {
    let (visits, _) = topology.expected_visits();
    let service = &topology.services[op.service];
    let all: Vec<(Peer, f64)> = (0..service.operations.len())
        .flat_map(|operation| {
            calls_by_peer(
                topology,
                &visits,
                OpRef {
                    service: op.service,
                    operation,
                },
            )
        })
        .collect();
    let per_minute = 60.0 * NOMINAL_RATE;
    calls_by_peer(topology, &visits, op)
        .into_iter()
        .map(|(peer, own)| {
            let total: f64 = all.iter().filter(|(p, _)| *p == peer).map(|(_, c)| c).sum();
            let share = if total > 0.0 {
                rate * own / total
            } else {
                rate
            };
            let count = per_minute * total;
            let deviations = if count > 0.0 {
                rate * per_minute * own / count.sqrt()
            } else {
                0.0
            };
            (share, deviations)
        })
        .max_by(|&(a_share, a_deviations), &(b_share, b_deviations)| {
            let stands_out = |deviations: f64| deviations >= MIN_DROPPED_DEVIATIONS;
            stands_out(a_deviations)
                .cmp(&stands_out(b_deviations))
                .then(a_share.total_cmp(&b_share))
                .then(a_deviations.total_cmp(&b_deviations))
        })
        .unwrap_or((0.0, 0.0))
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::SpanText;

    use super::*;
    use crate::topology::{
        Call, ClientNaming, DepOp, Dependency, DependencyKind, DependencyOp, Operation, Service,
    };

    fn operation(self_median_ms: f64, calls: Vec<Target>) -> Operation {
        Operation {
            name: SpanText::from("GET /x"),
            method: "GET",
            route: SpanText::from("/x"),
            self_median_ms,
            self_sigma: 0.3,
            pre_share: 0.5,
            internals: Vec::new(),
            stages: calls
                .into_iter()
                .map(|target| {
                    vec![Call {
                        target,
                        probability: 1.0,
                        propagates: true,
                        repeat: 1,
                    }]
                })
                .collect(),
            error_rate: 0.0,
        }
    }

    fn service(name: &str, level: usize, operations: Vec<Operation>) -> Service {
        Service {
            name: SpanText::from(name.to_owned()),
            version: SpanText::from("1.0.0"),
            host: SpanText::from(name.to_owned()),
            full_host: SpanText::from(format!("{name}.default.svc.cluster.local")),
            protocol: Protocol::Http,
            rpc_service: SpanText::from("shop.X"),
            level,
            legacy: false,
            client_naming: ClientNaming::Method,
            full_host_names: false,
            sets_peer_service: false,
            client_timeout_ms: 2_000.0,
            network_median_ms: 1.0,
            operations,
        }
    }

    /// `frontend` (two operations, traffic 3:1) calls `cart` from both and `orders-db` from
    /// the first; `cart`'s operations take 10 ms (most traffic) and 40 ms of own time.
    fn system() -> Topology {
        let cart = |operation| {
            Target::Service(OpRef {
                service: 1,
                operation,
            })
        };
        let db = Target::Dependency(DepOp {
            dependency: 0,
            operation: 0,
        });
        Topology {
            services: vec![
                service(
                    "frontend",
                    0,
                    vec![
                        operation(5.0, vec![cart(0), db]),
                        operation(5.0, vec![cart(1)]),
                    ],
                ),
                service(
                    "cart",
                    1,
                    vec![operation(10.0, vec![]), operation(40.0, vec![])],
                ),
            ],
            dependencies: vec![Dependency {
                kind: DependencyKind::Database,
                system: Some("postgresql"),
                db_name: None,
                host: SpanText::from("orders-db"),
                peer_service: None,
                operations: vec![DependencyOp {
                    name: SpanText::from("SELECT orders"),
                    method: "SELECT",
                }],
                latency_median_ms: 60.0,
                latency_sigma: 0.3,
                tail_probability: 0.0,
                tail_alpha: 2.0,
                error_rate: 0.0,
            }],
            entries: vec![
                (
                    OpRef {
                        service: 0,
                        operation: 0,
                    },
                    3.0,
                ),
                (
                    OpRef {
                        service: 0,
                        operation: 1,
                    },
                    1.0,
                ),
            ],
        }
    }

    fn visible(effect: Effect, topology: &Topology) -> bool {
        visibility(&effect, topology).visible
    }

    #[test]
    fn a_fault_is_visible_when_it_adds_20_ms_and_half_of_the_places_own_time() {
        let mut topology = system();
        let cart_op = OpRef {
            service: 1,
            operation: 1,
        };
        // Network delay: the gap into `cart` is 2 ms.
        let delay = |extra_ms| Effect::NetworkDelay {
            service: 1,
            extra_ms,
        };
        assert!(visible(delay(20.0), &topology));
        assert!(!visible(delay(19.0), &topology));
        topology.services[1].network_median_ms = 25.0;
        assert!(
            !visible(delay(24.0), &topology),
            "under half of a 50 ms gap"
        );
        assert!(visible(delay(25.0), &topology));

        // CPU: the typical operation of `cart` is the 10 ms one (three quarters of calls).
        let cpu = |factor| Effect::CpuSaturation { service: 1, factor };
        assert!(!visible(cpu(1.9), &topology), "+19 ms");
        assert!(visible(cpu(2.0), &topology), "+20 ms, +200%");
        topology.services[1].operations[0].self_median_ms = 60.0;
        assert!(!visible(cpu(0.45), &topology), "+27 ms but only +45%");
        assert!(visible(cpu(0.5), &topology), "+30 ms, +50%");

        // A slow operation or dependency against its own median.
        let slow_op = |extra_ms| Effect::SlowOperation {
            op: cart_op,
            extra_ms,
        };
        assert!(visible(slow_op(20.0), &topology), "40 ms + 20 ms is +50%");
        assert!(!visible(slow_op(19.9), &topology));
        let slow_db = |extra_ms| Effect::SlowDependency {
            dependency: 0,
            extra_ms,
        };
        assert!(!visible(slow_db(29.0), &topology), "under half of 60 ms");
        assert!(visible(slow_db(30.0), &topology));

        // Errors from the engine's default threshold, as long as some span records them.
        let errors = |rate| Effect::Errors {
            service: 1,
            operation: None,
            rate,
        };
        assert!(visible(errors(0.2), &topology));
        assert!(!visible(errors(0.19), &topology));
        topology.services[1].legacy = true;
        assert!(
            visible(errors(0.5), &topology),
            "legacy HTTP keeps its codes"
        );
        topology.services[1].protocol = Protocol::Grpc;
        assert!(
            visible(errors(0.5), &topology),
            "its caller records the code"
        );
        topology.services[0].legacy = true;
        assert!(!visible(errors(0.5), &topology), "no span records a status");

        // Hangs always.
        let hang = Effect::Hang {
            service: 1,
            probability: 0.05,
            hang_ms: 3_000.0,
        };
        assert!(visible(hang, &topology));
    }

    #[test]
    fn an_early_return_is_visible_by_the_share_of_an_edges_calls_it_drops() {
        let topology = system();
        let early = |operation, rate| Effect::EarlyReturn {
            op: OpRef {
                service: 0,
                operation,
            },
            rate,
            edge_error: false,
        };
        // The first operation makes all of the service's database calls and 3/4 of its
        // calls to `cart`; the second makes 1/4 of those.
        assert!(visible(early(0, 0.2), &topology));
        assert!(!visible(early(0, 0.19), &topology));
        assert!(!visible(early(1, 0.5), &topology), "1/8 of the edge");
        assert!(visible(early(1, 0.8), &topology), "1/5 of the edge");
        let seen = visibility(&early(1, 0.4), &topology);
        // 60 of the edge's 600 calls a minute, whose deviation is 24.5.
        let Signal::CallStructure {
            dropped_share,
            deviations,
        } = seen.signal
        else {
            panic!("an early return changes the call structure: {seen}");
        };
        assert!((dropped_share - 0.1).abs() < 1e-9, "{dropped_share}");
        assert!(
            (deviations - 60.0 / 600f64.sqrt()).abs() < 1e-9,
            "{deviations}"
        );
        assert_eq!(
            seen.to_string(),
            "not visible: 10% of an edge's calls dropped, 2.4 deviations of its count in a minute (call structure only)"
        );
    }

    #[test]
    fn an_early_return_on_a_quiet_edge_is_not_visible_however_large_its_share() {
        let mut topology = system();
        let early = |rate| Effect::EarlyReturn {
            op: OpRef {
                service: 0,
                operation: 0,
            },
            rate,
            edge_error: false,
        };
        // A quarter of the database calls, 450 a minute: 112 missing is 5.3 deviations.
        assert!(visible(early(0.25), &topology));
        // The same share of a call made on 1 request in 200: 2.25 a minute, and a
        // quarter of them missing is no signal (0.4 deviations). The drop on `cart` stands
        // out (4.6 deviations) but is too small a share, and is the one shown.
        topology.services[0].operations[0].stages[1][0].probability = 0.005;
        let seen = visibility(&early(0.25), &topology);
        assert_eq!(
            seen.to_string(),
            "not visible: 19% of an edge's calls dropped, 4.6 deviations of its count in a minute (call structure only)"
        );
        // Dropping most of it is still no signal; dropping most of `cart`'s calls is.
        assert!(!visible(early(0.26), &topology));
        assert!(visible(early(0.8), &topology));
    }
}
