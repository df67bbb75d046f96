//! The ground truth of a fault: the place an engine should name, at service level and at
//! endpoint or edge level.
//!
//! At service level the place is the faulty service, or for a dependency its node name
//! ([`Dependency::node_name`](crate::topology::Dependency::node_name)); for a network delay
//! into a service, that service. At endpoint or edge level an answer is right when it is the
//! faulty operation (any operation of the place for service-wide faults), or, for faults on
//! the way into a place (network delay, slow dependency), a caller's client endpoint for its
//! calls to the place: the client span's own name (`GET`, `SELECT orders`), or that name keyed
//! by the peer it names (`GET -> cartservice`, `SELECT orders -> postgresql/orders`).

use crate::fault::Effect;
use crate::instrument::{client_name, dependency_name};
use crate::topology::{OpRef, Target, Topology};

/// Which operations of a place are right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpMatch {
    /// Any operation.
    Any,
    /// Exactly this operation.
    Exact(String),
    /// A client endpoint for calls to the place: the span name alone, or the span name
    /// followed by one of the place's peer names.
    Call {
        /// The client span's name.
        name: String,
        /// Names the place goes by as a peer (service name, host names, node name).
        peers: Vec<String>,
    },
}

impl OpMatch {
    fn matches(&self, operation: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => exact == operation,
            Self::Call { name, peers } => {
                operation == name
                    || operation.strip_prefix(name.as_str()).is_some_and(|rest| {
                        peers.iter().any(|peer| {
                            // The peer is a whole word after a separator.
                            rest.strip_suffix(peer.as_str()).is_some_and(|between| {
                                !between.trim().is_empty()
                                    && between.ends_with(|c: char| {
                                        !(c.is_alphanumeric() || "-._/".contains(c))
                                    })
                            })
                        })
                    })
            }
        }
    }
}

/// One acceptable endpoint-level answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointMatch {
    /// The service (or dependency node) named as the root cause.
    pub service: String,
    /// Its acceptable operations.
    pub operation: OpMatch,
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
        self.endpoints
            .iter()
            .any(|m| m.service == service && m.operation.matches(operation))
    }

    /// The ground truth of `effect` in `topology`.
    pub fn of(effect: &Effect, topology: &Topology) -> Self {
        let name = |s: usize| topology.services[s].name.to_string();
        let any_of = |node: String| EndpointMatch {
            service: node,
            operation: OpMatch::Any,
        };
        let one = |op: OpRef| EndpointMatch {
            service: name(op.service),
            operation: OpMatch::Exact(topology.operation(op).name.to_string()),
        };
        let op_name = |op: OpRef| format!("{} {}", name(op.service), topology.operation(op).name);
        let (node, endpoints, label) = match *effect {
            Effect::NetworkDelay { service, extra_ms } => (
                name(service),
                edges_into_service(topology, service),
                format!("network delay into {} +{extra_ms:.0} ms", name(service)),
            ),
            Effect::CpuSaturation { service, factor } => (
                name(service),
                vec![any_of(name(service))],
                format!(
                    "CPU saturation of {} +{:.0}%",
                    name(service),
                    factor * 100.0
                ),
            ),
            Effect::SlowDependency {
                dependency,
                extra_ms,
            } => {
                let node = topology.dependencies[dependency].node_name();
                let label = format!("slow dependency {node} +{extra_ms:.0} ms");
                (node, edges_into_dependency(topology, dependency), label)
            }
            Effect::SlowOperation { op, extra_ms } => (
                name(op.service),
                vec![one(op)],
                format!("slow operation {} +{extra_ms:.0} ms", op_name(op)),
            ),
            Effect::Errors {
                service,
                operation,
                rate,
            } => {
                let (endpoints, what) = match operation {
                    Some(operation) => {
                        let op = OpRef { service, operation };
                        (vec![one(op)], op_name(op))
                    }
                    None => (vec![any_of(name(service))], name(service)),
                };
                let label = format!("errors in {what} at {:.0}%", rate * 100.0);
                (name(service), endpoints, label)
            }
            Effect::EarlyReturn {
                op,
                rate,
                edge_error,
            } => (
                name(op.service),
                vec![one(op)],
                format!(
                    "early return in {} at {:.0}%{}",
                    op_name(op),
                    rate * 100.0,
                    if edge_error {
                        ", 500 at the edge"
                    } else {
                        ", no error status"
                    }
                ),
            ),
            Effect::Hang {
                service,
                probability,
                hang_ms,
            } => (
                name(service),
                vec![any_of(name(service))],
                format!(
                    "{:.0}% of {} requests hang {hang_ms:.0} ms",
                    probability * 100.0,
                    name(service)
                ),
            ),
            Effect::OutlierBurst { .. } => {
                (String::new(), Vec::new(), "burst of outliers".to_owned())
            }
            Effect::LoggedDefect { op, rate } => (
                name(op.service),
                vec![one(op)],
                format!(
                    "defect in {} at {:.0}%, logged, no error status",
                    op_name(op),
                    rate * 100.0
                ),
            ),
            Effect::CaughtException { op, rate } => (
                name(op.service),
                vec![one(op)],
                format!(
                    "caught exception in {} at {:.0}%",
                    op_name(op),
                    rate * 100.0
                ),
            ),
            Effect::Deployment {
                service,
                share,
                fail_rate,
                ..
            } => (
                name(service),
                vec![any_of(name(service))],
                format!(
                    "deployment of {} {} to {:.0}% of requests, {:.0}% of them failing",
                    name(service),
                    crate::fault::new_version(service),
                    share * 100.0,
                    fail_rate * 100.0
                ),
            ),
            Effect::LogNoise { service, .. } => (
                String::new(),
                Vec::new(),
                format!("log noise from {}", name(service)),
            ),
            Effect::RoutineErrors { service, share } => (
                String::new(),
                Vec::new(),
                format!(
                    "routine ERROR lines from {} in {:.0}% of its requests",
                    name(service),
                    share * 100.0
                ),
            ),
        };
        Self {
            node,
            endpoints,
            label,
        }
    }
}

/// The service itself, and every caller's client endpoint for its calls to it.
fn edges_into_service(topology: &Topology, service: usize) -> Vec<EndpointMatch> {
    let callee = &topology.services[service];
    let peers = vec![
        callee.name.to_string(),
        callee.host.to_string(),
        callee.full_host.to_string(),
    ];
    let mut endpoints = vec![EndpointMatch {
        service: callee.name.to_string(),
        operation: OpMatch::Any,
    }];
    for caller in topology.callers_of(service) {
        let caller_service = &topology.services[caller.service];
        for call in topology.operation(caller).stages.iter().flatten() {
            if let Target::Service(op) = call.target
                && op.service == service
            {
                let name = client_name(caller_service, callee, topology.operation(op));
                push_call(
                    &mut endpoints,
                    caller_service.name.to_string(),
                    name.to_string(),
                    &peers,
                );
            }
        }
    }
    endpoints
}

/// The dependency's node itself, and every caller's client endpoint for its calls to it.
fn edges_into_dependency(topology: &Topology, dependency: usize) -> Vec<EndpointMatch> {
    let dep = &topology.dependencies[dependency];
    let mut peers = vec![dep.node_name(), dep.host.to_string()];
    if let Some(system) = dep.system {
        peers.push(system.to_owned());
    }
    let mut endpoints = vec![EndpointMatch {
        service: dep.node_name(),
        operation: OpMatch::Any,
    }];
    for (user, operation) in topology.users_of(dependency) {
        let caller = &topology.services[user.service];
        let name = dependency_name(caller, dep, operation);
        push_call(
            &mut endpoints,
            caller.name.to_string(),
            name.to_string(),
            &peers,
        );
    }
    endpoints
}

fn push_call(endpoints: &mut Vec<EndpointMatch>, service: String, name: String, peers: &[String]) {
    let candidate = EndpointMatch {
        service,
        operation: OpMatch::Call {
            name,
            peers: peers.to_vec(),
        },
    };
    if !endpoints.contains(&candidate) {
        endpoints.push(candidate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_matches_its_name_alone_or_keyed_by_a_peer_of_the_place() {
        let call = OpMatch::Call {
            name: "GET".to_owned(),
            peers: vec![
                "cart".to_owned(),
                "cart.default.svc.cluster.local".to_owned(),
            ],
        };
        assert!(call.matches("GET"));
        assert!(call.matches("GET -> cart"));
        assert!(call.matches("GET -> cart.default.svc.cluster.local"));
        assert!(!call.matches("GET -> currency"));
        assert!(!call.matches("GET -> shopping-cart"));
        assert!(!call.matches("GETcart"));
        assert!(!call.matches("POST -> cart"));
    }
}
