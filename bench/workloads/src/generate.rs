//! Draws a random [`Topology`]: 5 to 30 services in levels below one or two entry services,
//! fan-out in sequential and parallel stages, fan-in (one callee, many callers), optional
//! calls, and databases, caches and external APIs shared by some services.

use aiops_telemetry_core::SpanText;
use std::collections::HashMap;

use aiops_telemetry_core::SpanId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::fault::Conditions;
use crate::naming::{self, ServiceStyle};
use crate::sample::{log_uniform, pick};
use crate::topology::{
    Call, ClientNaming, DepOp, DependencyKind, Internal, OpRef, Operation, Protocol, Service,
    Target, Topology,
};
use crate::{trace, traffic};

/// Most calls one operation makes.
const MAX_FAN_OUT: usize = 5;
/// Systems whose expected trace is larger than this are drawn again.
const MAX_EXPECTED_SPANS: f64 = 140.0;
/// On a healthy day no endpoint fails more often than about this.
const MAX_BACKGROUND_ERROR_RATE: f64 = 0.005;

/// A client timeout is at least this multiple of the 99th percentile of the healthy calls
/// and steps of the service's handlers...
const TIMEOUT_MARGIN: f64 = 1.5;
/// ...measured on this many simulated healthy requests...
const PROBE_REQUESTS: usize = 400;
/// ...drawn from their own generator, so that the topology's other draws stay as they were.
const PROBE_SEED: u64 = 0x7469_6d65_6f75_7473;

/// A random system of 5 to 30 services.
pub fn generate(rng: &mut StdRng) -> Topology {
    loop {
        let topology = draw(rng);
        let spans = topology.expected_spans();
        if spans <= MAX_EXPECTED_SPANS {
            return with_timeouts_above_healthy_calls(with_background_errors(topology, spans, rng));
        }
    }
}

fn draw(rng: &mut StdRng) -> Topology {
    let count = rng.random_range(5..=30);
    let entries = if count >= 8 && rng.random_bool(0.3) {
        2
    } else {
        1
    };
    let style = ServiceStyle::random(rng);
    let package = naming::grpc_package(rng);
    let namespace = *pick(rng, &["default", "shop", "prod"]);
    let bases = naming::service_bases(rng, count, entries);
    let max_level = rng.random_range(2..=5usize).min(count - entries);
    let mut levels: Vec<usize> = (entries..count)
        .map(|_| rng.random_range(1..=max_level))
        .collect();
    levels.sort_unstable();
    let grpc_share = rng.random_range(0.0..0.8);
    let mut services: Vec<Service> = bases
        .iter()
        .enumerate()
        .map(|(index, base)| {
            let level = if index < entries {
                0
            } else {
                levels[index - entries]
            };
            let protocol = if level > 0 && rng.random_bool(grpc_share) {
                Protocol::Grpc
            } else {
                Protocol::Http
            };
            let name = style.name(base);
            let operations = if level == 0 {
                rng.random_range(2..=4)
            } else {
                *pick(rng, &[1, 1, 2, 2, 3, 4])
            };
            Service {
                host: SpanText::from(name.clone()),
                full_host: naming::host(&name, namespace, true).into(),
                name: name.into(),
                version: format!(
                    "{}.{}.{}",
                    rng.random_range(1..4),
                    rng.random_range(0..20),
                    rng.random_range(0..10)
                )
                .into(),
                protocol,
                rpc_service: format!("{package}.{}", naming::grpc_service(base)).into(),
                level,
                legacy: rng.random_bool(0.15),
                client_naming: if rng.random_bool(0.3) {
                    ClientNaming::HttpMethod
                } else {
                    ClientNaming::Method
                },
                full_host_names: rng.random_bool(0.3),
                sets_peer_service: rng.random_bool(0.3),
                client_timeout_ms: log_uniform(rng, 1_000.0, 5_000.0),
                network_median_ms: log_uniform(rng, 0.2, 1.5),
                operations: operations_of(rng, base, protocol, package, operations),
            }
        })
        .collect();
    wire_services(rng, &mut services);
    let mut topology = Topology {
        entries: Vec::new(),
        dependencies: Vec::new(),
        services,
    };
    add_dependencies(rng, &mut topology, &bases, namespace);
    topology.entries = topology
        .operations()
        .filter(|op| op.service < entries)
        .map(|op| (op, rng.random_range(0.2..1.0)))
        .collect();
    topology
}

fn operations_of(
    rng: &mut StdRng,
    base: &str,
    protocol: Protocol,
    package: &str,
    count: usize,
) -> Vec<Operation> {
    let names: Vec<(&'static str, String, String)> = match protocol {
        Protocol::Http => naming::http_routes(rng, base, count)
            .into_iter()
            .map(|(method, route)| (method, format!("{method} {route}"), route))
            .collect(),
        Protocol::Grpc => naming::grpc_methods(rng, base, count)
            .into_iter()
            .map(|method| {
                let service = naming::grpc_service(base);
                ("POST", format!("{package}.{service}/{method}"), method)
            })
            .collect(),
    };
    names
        .into_iter()
        .map(|(method, name, route)| {
            let internals = if rng.random_bool(0.4) {
                let count = rng.random_range(1..=3);
                naming::internal_operations(rng, count)
                    .into_iter()
                    .map(|name| Internal {
                        name: name.into(),
                        share: rng.random_range(0.1..0.3),
                        before_calls: rng.random_bool(0.5),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Operation {
                name: name.into(),
                method,
                route: route.into(),
                self_median_ms: log_uniform(rng, 1.0, 25.0),
                self_sigma: rng.random_range(0.15..0.6),
                pre_share: rng.random_range(0.2..0.8),
                internals,
                stages: Vec::new(),
                error_rate: 0.0,
            }
        })
        .collect()
}

/// Every operation of a non-entry service gets a caller at a shallower level; some services
/// get more callers (fan-in) and some operations call further (fan-out).
fn wire_services(rng: &mut StdRng, services: &mut [Service]) {
    let all_ops = |services: &[Service]| -> Vec<OpRef> {
        services
            .iter()
            .enumerate()
            .flat_map(|(service, s)| {
                (0..s.operations.len()).map(move |operation| OpRef { service, operation })
            })
            .collect()
    };
    let ops = all_ops(services);
    let callees: Vec<OpRef> = ops
        .iter()
        .copied()
        .filter(|op| services[op.service].level > 0)
        .collect();
    for callee in callees {
        let level = services[callee.service].level;
        let callers: Vec<OpRef> = ops
            .iter()
            .copied()
            .filter(|op| services[op.service].level < level)
            .collect();
        let open: Vec<OpRef> = callers
            .iter()
            .copied()
            .filter(|&op| calls_of(services, op) < MAX_FAN_OUT)
            .collect();
        let caller = *pick(rng, if open.is_empty() { &callers } else { &open });
        add_call(rng, services, caller, Target::Service(callee));
    }
    // Fan-in: a callee with several calling services.
    for service in 0..services.len() {
        let level = services[service].level;
        if level == 0 || !rng.random_bool(0.35) {
            continue;
        }
        for _ in 0..rng.random_range(1..=2) {
            let callers: Vec<OpRef> = ops
                .iter()
                .copied()
                .filter(|op| services[op.service].level < level)
                .filter(|&op| calls_of(services, op) < MAX_FAN_OUT)
                .collect();
            if callers.is_empty() {
                break;
            }
            let caller = *pick(rng, &callers);
            let operation = rng.random_range(0..services[service].operations.len());
            add_call(
                rng,
                services,
                caller,
                Target::Service(OpRef { service, operation }),
            );
        }
    }
    // More fan-out.
    for &op in &ops {
        if !rng.random_bool(0.3) {
            continue;
        }
        let level = services[op.service].level;
        let deeper: Vec<OpRef> = ops
            .iter()
            .copied()
            .filter(|o| services[o.service].level > level)
            .collect();
        if deeper.is_empty() || calls_of(services, op) >= MAX_FAN_OUT {
            continue;
        }
        let callee = *pick(rng, &deeper);
        add_call(rng, services, op, Target::Service(callee));
    }
}

fn calls_of(services: &[Service], op: OpRef) -> usize {
    services[op.service].operations[op.operation]
        .stages
        .iter()
        .map(Vec::len)
        .sum()
}

/// Adds a call as a new sequential stage, or concurrently with an existing stage.
fn add_call(rng: &mut StdRng, services: &mut [Service], caller: OpRef, target: Target) {
    let is_service = matches!(target, Target::Service(_));
    let probability = if rng.random_bool(0.3) {
        rng.random_range(0.2..0.9)
    } else {
        1.0
    };
    let repeat = if !is_service && rng.random_bool(0.15) {
        rng.random_range(2..=4)
    } else {
        1
    };
    let call = Call {
        target,
        probability,
        propagates: rng.random_bool(0.9),
        repeat,
    };
    let stages = &mut services[caller.service].operations[caller.operation].stages;
    if stages.is_empty() || rng.random_bool(0.65) {
        stages.push(vec![call]);
    } else {
        let at = rng.random_range(0..stages.len());
        stages[at].push(call);
    }
}

fn add_dependencies(
    rng: &mut StdRng,
    topology: &mut Topology,
    bases: &[&'static str],
    namespace: &str,
) {
    let count = 1 + topology.services.len() / 4 + rng.random_range(0..=2);
    for _ in 0..count {
        let owner_count = rng.random_range(1..=3).min(topology.services.len());
        let mut owners: Vec<usize> = Vec::new();
        while owners.len() < owner_count {
            let owner = rng.random_range(0..topology.services.len());
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
        let kind = match rng.random_range(0..10) {
            0..5 => DependencyKind::Database,
            5..8 => DependencyKind::Cache,
            _ => DependencyKind::ExternalApi,
        };
        let mut dependency = crate::dependency::draw(rng, kind, bases[owners[0]], namespace);
        let taken: Vec<String> = topology
            .dependencies
            .iter()
            .map(|d| d.node_name())
            .collect();
        let mut suffix = 2;
        while taken.contains(&dependency.node_name()) {
            dependency.peer_service = None;
            dependency.db_name = None;
            dependency.host = format!("{}-{suffix}", dependency.host).into();
            suffix += 1;
        }
        let index = topology.dependencies.len();
        let operations = dependency.operations.len();
        topology.dependencies.push(dependency);
        for owner in owners {
            let users = rng.random_range(1..=topology.services[owner].operations.len());
            for operation in 0..users {
                let used = DepOp {
                    dependency: index,
                    operation: rng.random_range(0..operations),
                };
                let caller = OpRef {
                    service: owner,
                    operation,
                };
                let target =
                    cache_aside(rng, topology, owner, used).unwrap_or(Target::Dependency(used));
                add_call(rng, &mut topology.services, caller, target);
            }
        }
    }
}

/// When `owner` already reads a database and `used` is a cache (or the other way round),
/// sometimes the two become one cache-aside look-up.
fn cache_aside(rng: &mut StdRng, topology: &Topology, owner: usize, used: DepOp) -> Option<Target> {
    if !rng.random_bool(0.6) {
        return None;
    }
    let kind_of = |dep: &DepOp| topology.dependencies[dep.dependency].kind;
    let previous = topology.services[owner]
        .operations
        .iter()
        .flat_map(|op| op.stages.iter().flatten())
        .find_map(|call| match &call.target {
            Target::Dependency(dep) if kind_of(dep) != kind_of(&used) => Some(*dep),
            _ => None,
        })?;
    let (cache, store) = match (kind_of(&used), kind_of(&previous)) {
        (DependencyKind::Cache, DependencyKind::Database) => (used, previous),
        (DependencyKind::Database, DependencyKind::Cache) => (previous, used),
        _ => return None,
    };
    Some(Target::CacheAside {
        cache,
        store,
        hit_ratio: rng.random_range(0.5..0.95),
    })
}

/// Gives every operation and dependency a background error rate small enough that no
/// endpoint fails more than about [`MAX_BACKGROUND_ERROR_RATE`] of the time.
fn with_background_errors(mut topology: Topology, spans: f64, rng: &mut StdRng) -> Topology {
    let budget = MAX_BACKGROUND_ERROR_RATE / spans.max(1.0);
    for service in &mut topology.services {
        for operation in &mut service.operations {
            operation.error_rate = rng.random_range(0.0..budget);
        }
    }
    for dependency in &mut topology.dependencies {
        dependency.error_rate = rng.random_range(0.0..budget);
    }
    topology
}

/// Raises every client timeout drawn below [`TIMEOUT_MARGIN`] times the 99th percentile of
/// the healthy calls and steps of the service's handlers (the spans a service makes under its
/// own spans). Teams set timeouts above what their calls normally take: one below would fail
/// most of the calls of a healthy day, which is a broken system, not a healthy one.
fn with_timeouts_above_healthy_calls(mut topology: Topology) -> Topology {
    let drawn: Vec<f64> = topology
        .services
        .iter()
        .map(|service| service.client_timeout_ms)
        .collect();
    for service in &mut topology.services {
        service.client_timeout_ms = f64::INFINITY;
    }
    let mut rng = StdRng::seed_from_u64(PROBE_SEED);
    let mut durations: Vec<Vec<f64>> = vec![Vec::new(); topology.services.len()];
    for _ in 0..PROBE_REQUESTS {
        let entry = traffic::entry(&mut rng, &topology);
        let spans = trace::request(&mut rng, &topology, Conditions(&[]), 1.0, entry, 0);
        let owner: HashMap<SpanId, usize> = spans
            .iter()
            .map(|emitted| (emitted.span.span_id, emitted.service))
            .collect();
        for emitted in &spans {
            let parent = emitted.span.parent_span_id.and_then(|p| owner.get(&p));
            if parent == Some(&emitted.service) {
                durations[emitted.service].push(emitted.span.duration_ms());
            }
        }
    }
    for ((service, drawn), mut durations) in topology.services.iter_mut().zip(drawn).zip(durations)
    {
        durations.sort_by(f64::total_cmp);
        let p99 = durations
            .get(durations.len() * 99 / 100)
            .copied()
            .unwrap_or(0.0);
        service.client_timeout_ms = drawn.max(TIMEOUT_MARGIN * p99);
    }
    topology
}
