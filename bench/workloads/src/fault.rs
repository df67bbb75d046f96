//! Faults (and healthy disturbances): what they change in the traces, when, and the ground
//! truth an engine should name for them.

use rand::Rng;
use rand::rngs::StdRng;

use crate::instrument::client_name;
use crate::sample::{lognormal, pareto};
use crate::topology::{OpRef, Topology};

/// What an injected condition changes.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Calls into `service` take longer on the wire: its callers' CLIENT spans grow, its own
    /// SERVER spans do not.
    NetworkDelay {
        /// The callee.
        service: usize,
        /// Added round-trip time.
        extra_ms: f64,
    },
    /// Every operation of `service` does its own work slower, with more variance.
    CpuSaturation {
        /// The saturated service.
        service: usize,
        /// Mean relative growth of the own time (0.5 is +50%).
        factor: f64,
    },
    /// Every operation on an uninstrumented dependency takes longer.
    SlowDependency {
        /// The dependency.
        dependency: usize,
        /// Added latency.
        extra_ms: f64,
    },
    /// One operation of one service does more own work.
    SlowOperation {
        /// The operation.
        op: OpRef,
        /// Added own time.
        extra_ms: f64,
    },
    /// A share of a service's requests fail (500 or gRPC INTERNAL) and the failure
    /// propagates to callers.
    Errors {
        /// The failing service.
        service: usize,
        /// Only this operation, or all of them.
        operation: Option<usize>,
        /// Share of requests that fail.
        rate: f64,
    },
    /// A defect: a share of one operation's requests return early, without calling their
    /// downstream dependencies, and without an error status.
    EarlyReturn {
        /// The defective operation.
        op: OpRef,
        /// Share of requests affected.
        rate: f64,
        /// The entry service turns the empty answer into a 500 (the only error anywhere).
        edge_error: bool,
    },
    /// A share of a service's requests hang longer than its callers wait.
    Hang {
        /// The hanging service.
        service: usize,
        /// Share of requests that hang.
        probability: f64,
        /// How long a hang lasts.
        hang_ms: f64,
    },
    /// Healthy: a burst of outliers (a pause on the nodes): every service's own work of a
    /// share of requests takes a few hundred milliseconds longer.
    OutlierBurst {
        /// Share of requests affected.
        probability: f64,
    },
}

/// An effect and when it applies (to requests starting in `[start_ns, end_ns)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Injected {
    /// What changes.
    pub effect: Effect,
    /// First instant, Unix nanoseconds.
    pub start_ns: u64,
    /// End (exclusive), Unix nanoseconds.
    pub end_ns: u64,
}

impl Injected {
    /// True when a request starting at `t` is affected.
    pub fn active_at(&self, t: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&t)
    }
}

/// One endpoint (or, with no operation, any endpoint of a node) an engine may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointMatch {
    /// The service or dependency node.
    pub service: String,
    /// The operation, or `None` for any.
    pub operation: Option<String>,
}

/// What an engine should name for a fault.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    /// The faulty place at service level: a service name, or a dependency's node name.
    pub node: String,
    /// Acceptable answers at endpoint or edge level.
    pub endpoints: Vec<EndpointMatch>,
    /// A one-line description for listings.
    pub label: String,
}

impl Truth {
    /// True when `(service, operation)` is an acceptable endpoint-level answer.
    pub fn endpoint_matches(&self, service: &str, operation: &str) -> bool {
        self.endpoints.iter().any(|m| {
            m.service == service && m.operation.as_deref().is_none_or(|op| op == operation)
        })
    }

    /// The ground truth of `effect` in `topology`.
    pub fn of(effect: &Effect, topology: &Topology) -> Self {
        let service_name = |s: usize| topology.services[s].name.to_string();
        let any_of = |node: String| EndpointMatch {
            service: node,
            operation: None,
        };
        let one = |op: OpRef| EndpointMatch {
            service: service_name(op.service),
            operation: Some(topology.operation(op).name.to_string()),
        };
        match *effect {
            Effect::NetworkDelay { service, extra_ms } => {
                // The edge: the callee, or a caller's client span towards it.
                let callee = &topology.services[service];
                let mut endpoints = vec![any_of(service_name(service))];
                for caller in topology.callers_of(service) {
                    for call in topology.operation(caller).stages.iter().flatten() {
                        if let crate::topology::Target::Service(op) = call.target
                            && op.service == service
                        {
                            let name = client_name(
                                &topology.services[caller.service],
                                callee,
                                topology.operation(op),
                            );
                            push_unique(
                                &mut endpoints,
                                service_name(caller.service),
                                Some(name.to_string()),
                            );
                        }
                    }
                }
                Self {
                    node: service_name(service),
                    endpoints,
                    label: format!("network delay into {} +{extra_ms:.0} ms", callee.name),
                }
            }
            Effect::CpuSaturation { service, factor } => Self {
                node: service_name(service),
                endpoints: vec![any_of(service_name(service))],
                label: format!(
                    "CPU saturation of {} +{:.0}%",
                    service_name(service),
                    factor * 100.0
                ),
            },
            Effect::SlowDependency {
                dependency,
                extra_ms,
            } => {
                let dep = &topology.dependencies[dependency];
                let node = dep.node_name();
                let mut endpoints = vec![any_of(node.clone())];
                for (user, operation) in topology.users_of(dependency) {
                    let caller = &topology.services[user.service];
                    let op = &dep.operations[operation];
                    let name = match dep.kind {
                        crate::topology::DependencyKind::ExternalApi => {
                            match caller.client_naming {
                                crate::topology::ClientNaming::Method => op.method.to_owned(),
                                crate::topology::ClientNaming::HttpMethod => {
                                    format!("HTTP {}", op.method)
                                }
                            }
                        }
                        _ => op.name.to_string(),
                    };
                    push_unique(&mut endpoints, caller.name.to_string(), Some(name));
                }
                Self {
                    label: format!("slow dependency {node} +{extra_ms:.0} ms"),
                    node,
                    endpoints,
                }
            }
            Effect::SlowOperation { op, extra_ms } => Self {
                node: service_name(op.service),
                endpoints: vec![one(op)],
                label: format!(
                    "slow operation {} {} +{extra_ms:.0} ms",
                    service_name(op.service),
                    topology.operation(op).name
                ),
            },
            Effect::Errors {
                service,
                operation,
                rate,
            } => {
                let (endpoints, what) = match operation {
                    Some(operation) => {
                        let op = OpRef { service, operation };
                        (
                            vec![one(op)],
                            format!("{} {}", service_name(service), topology.operation(op).name),
                        )
                    }
                    None => (vec![any_of(service_name(service))], service_name(service)),
                };
                Self {
                    node: service_name(service),
                    endpoints,
                    label: format!("errors in {what} at {:.0}%", rate * 100.0),
                }
            }
            Effect::EarlyReturn {
                op,
                rate,
                edge_error,
            } => Self {
                node: service_name(op.service),
                endpoints: vec![one(op)],
                label: format!(
                    "early return in {} {} at {:.0}%{}",
                    service_name(op.service),
                    topology.operation(op).name,
                    rate * 100.0,
                    if edge_error {
                        ", 500 at the edge"
                    } else {
                        ", no error status"
                    }
                ),
            },
            Effect::Hang {
                service,
                probability,
                hang_ms,
            } => Self {
                node: service_name(service),
                endpoints: vec![any_of(service_name(service))],
                label: format!(
                    "{:.0}% of {} requests hang {hang_ms:.0} ms",
                    probability * 100.0,
                    service_name(service)
                ),
            },
            Effect::OutlierBurst { .. } => Self {
                node: String::new(),
                endpoints: Vec::new(),
                label: "burst of outliers".to_owned(),
            },
        }
    }
}

fn push_unique(endpoints: &mut Vec<EndpointMatch>, service: String, operation: Option<String>) {
    let candidate = EndpointMatch { service, operation };
    if !endpoints.contains(&candidate) {
        endpoints.push(candidate);
    }
}

/// The effects that apply to one request, with the questions the trace builder asks them.
#[derive(Clone, Copy, Debug)]
pub struct Conditions<'a>(pub &'a [Effect]);

impl Conditions<'_> {
    /// The own time of `op` given its healthy draw `self_ms`.
    pub fn self_time(&self, rng: &mut StdRng, op: OpRef, mut self_ms: f64) -> f64 {
        for effect in self.0 {
            match *effect {
                Effect::CpuSaturation { service, factor } if service == op.service => {
                    // Queueing for a core: the growth varies a lot from request to request.
                    self_ms *= 1.0 + factor * lognormal(rng, 1.0, 0.5);
                }
                Effect::SlowOperation { op: slow, extra_ms } if slow == op => {
                    self_ms += extra_ms * rng.random_range(0.8..1.2);
                }
                Effect::OutlierBurst { probability } if rng.random_bool(probability) => {
                    self_ms += 100.0 * pareto(rng, 1.5).min(10.0);
                }
                _ => {}
            }
        }
        self_ms
    }

    /// Extra round-trip time of a call into `service`.
    pub fn network_extra_ms(&self, rng: &mut StdRng, service: usize) -> f64 {
        self.0
            .iter()
            .map(|effect| match *effect {
                Effect::NetworkDelay {
                    service: s,
                    extra_ms,
                } if s == service => extra_ms * rng.random_range(0.7..1.3),
                _ => 0.0,
            })
            .sum()
    }

    /// Extra latency of an operation on `dependency`.
    pub fn dependency_extra_ms(&self, rng: &mut StdRng, dependency: usize) -> f64 {
        self.0
            .iter()
            .map(|effect| match *effect {
                Effect::SlowDependency {
                    dependency: d,
                    extra_ms,
                } if d == dependency => extra_ms * rng.random_range(0.7..1.3),
                _ => 0.0,
            })
            .sum()
    }

    /// Whether a request to `op` fails on its own, given its background error rate.
    pub fn fails(&self, rng: &mut StdRng, op: OpRef, background: f64) -> bool {
        let mut failed = rng.random_bool(background.clamp(0.0, 1.0));
        for effect in self.0 {
            if let Effect::Errors {
                service,
                operation,
                rate,
            } = *effect
                && service == op.service
                && operation.is_none_or(|o| o == op.operation)
            {
                failed |= rng.random_bool(rate);
            }
        }
        failed
    }

    /// `Some(edge_error)` when this request to `op` returns early.
    pub fn returns_early(&self, rng: &mut StdRng, op: OpRef) -> Option<bool> {
        self.0.iter().find_map(|effect| match *effect {
            Effect::EarlyReturn {
                op: defective,
                rate,
                edge_error,
            } if defective == op && rng.random_bool(rate) => Some(edge_error),
            _ => None,
        })
    }

    /// How long this request to `service` hangs, if it does.
    pub fn hang_ms(&self, rng: &mut StdRng, service: usize) -> Option<f64> {
        self.0.iter().find_map(|effect| match *effect {
            Effect::Hang {
                service: s,
                probability,
                hang_ms,
            } if s == service && rng.random_bool(probability) => {
                Some(hang_ms * rng.random_range(0.9..1.1))
            }
            _ => None,
        })
    }
}
