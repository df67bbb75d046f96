//! A microservice system: instrumented services in a DAG of calls, and the uninstrumented
//! dependencies (databases, caches, external APIs) they call. [`generate`](crate::generate())
//! draws one.

use aiops_telemetry_core::SpanText;

/// One operation (endpoint) of one service, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpRef {
    /// Index into [`Topology::services`].
    pub service: usize,
    /// Index into that service's [`Service::operations`].
    pub operation: usize,
}

/// One operation of one dependency, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DepOp {
    /// Index into [`Topology::dependencies`].
    pub dependency: usize,
    /// Index into that dependency's [`Dependency::operations`].
    pub operation: usize,
}

/// How a service serves its operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP: server spans `GET /api/cart`, client spans `GET` or `HTTP GET`.
    Http,
    /// gRPC: `package.Service/Method` on both sides of a call.
    Grpc,
}

/// How a service's HTTP client library names its spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientNaming {
    /// `GET` (current semantic conventions).
    Method,
    /// `HTTP GET` (older libraries).
    HttpMethod,
}

/// A system: services, dependencies and where traffic enters.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Services; calls only go to services of a deeper level, so the graph is a DAG.
    pub services: Vec<Service>,
    /// Databases, caches and external APIs: they produce no spans of their own.
    pub dependencies: Vec<Dependency>,
    /// Entry operations and the share of traffic each receives (weights, not normalised).
    pub entries: Vec<(OpRef, f64)>,
}

/// One instrumented service.
#[derive(Clone, Debug)]
pub struct Service {
    /// `service.name`.
    pub name: SpanText,
    /// `service.version`.
    pub version: SpanText,
    /// The short host name callers may use (`cartservice`).
    pub host: SpanText,
    /// The cluster's full host name (`cartservice.default.svc.cluster.local`).
    pub full_host: SpanText,
    /// HTTP or gRPC.
    pub protocol: Protocol,
    /// `rpc.service` of a gRPC service (`oteldemo.CartService`).
    pub rpc_service: SpanText,
    /// 0 for entry services; callees are deeper.
    pub level: usize,
    /// Older instrumentation: no span kind (unspecified, read as internal) and no status.
    pub legacy: bool,
    /// How this service's HTTP client names its spans.
    pub client_naming: ClientNaming,
    /// This service addresses its callees by their full host name.
    pub full_host_names: bool,
    /// This service's clients set `peer.service` for the services they call.
    pub sets_peer_service: bool,
    /// How long this service's clients wait for a callee before giving up.
    pub client_timeout_ms: f64,
    /// Median one-way network time of a call into this service.
    pub network_median_ms: f64,
    /// Operations served.
    pub operations: Vec<Operation>,
}

/// One operation of a service: its own work, internal spans and the calls it makes.
#[derive(Clone, Debug)]
pub struct Operation {
    /// The server span's name: `GET /api/cart` or `oteldemo.CartService/GetCart`.
    pub name: SpanText,
    /// The HTTP method (`POST` for gRPC).
    pub method: &'static str,
    /// `http.route`, or `rpc.method` for gRPC.
    pub route: SpanText,
    /// Median of the operation's own (self) time.
    pub self_median_ms: f64,
    /// Log-space spread of the own time.
    pub self_sigma: f64,
    /// Share of the own time spent before the calls; the rest comes after them.
    pub pre_share: f64,
    /// Internal spans, each covering part of the own time.
    pub internals: Vec<Internal>,
    /// Calls in stages: the calls of a stage run concurrently, stages one after another.
    pub stages: Vec<Vec<Call>>,
    /// Background probability of failing on its own.
    pub error_rate: f64,
}

/// An internal span inside an operation.
#[derive(Clone, Debug)]
pub struct Internal {
    /// Its name (`validate`, `render`...).
    pub name: SpanText,
    /// Share of the pre-call (or post-call) own time it covers.
    pub share: f64,
    /// Placed among the work before the calls (otherwise after them).
    pub before_calls: bool,
}

/// One call an operation makes.
#[derive(Clone, Debug)]
pub struct Call {
    /// What is called.
    pub target: Target,
    /// Probability the call is made at all.
    pub probability: f64,
    /// Whether a failure of the callee fails the caller (otherwise it falls back).
    pub propagates: bool,
    /// Times the call is made one after another (an N+1 loop when above 1).
    pub repeat: u32,
}

/// The callee of a [`Call`].
#[derive(Clone, Debug)]
pub enum Target {
    /// An operation of an instrumented service: a CLIENT span and the callee's SERVER span.
    Service(OpRef),
    /// A dependency: one CLIENT span with no child.
    Dependency(DepOp),
    /// A cache look-up, and on a miss a read of the backing store.
    CacheAside {
        /// The cache read.
        cache: DepOp,
        /// The store read on a miss.
        store: DepOp,
        /// Share of look-ups that hit the cache.
        hit_ratio: f64,
    },
}

/// What a dependency is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DependencyKind {
    /// PostgreSQL, MySQL or MongoDB.
    Database,
    /// Redis or Memcached.
    Cache,
    /// An HTTP API outside the system.
    ExternalApi,
}

/// An uninstrumented dependency, seen only through its callers' CLIENT spans.
#[derive(Clone, Debug)]
pub struct Dependency {
    /// Database, cache or external API.
    pub kind: DependencyKind,
    /// `db.system`, for databases and caches.
    pub system: Option<&'static str>,
    /// The attribute key (`db.name` or `db.namespace`) and value, when callers set one.
    pub db_name: Option<(&'static str, SpanText)>,
    /// `server.address`.
    pub host: SpanText,
    /// `peer.service`, when callers set one.
    pub peer_service: Option<SpanText>,
    /// Operations callers perform.
    pub operations: Vec<DependencyOp>,
    /// Median latency of one operation, network included.
    pub latency_median_ms: f64,
    /// Log-space spread of the latency.
    pub latency_sigma: f64,
    /// Share of operations that hit the Pareto tail (a multiple of the latency).
    pub tail_probability: f64,
    /// Tail index of the Pareto tail (smaller is heavier).
    pub tail_alpha: f64,
    /// Background probability an operation fails.
    pub error_rate: f64,
}

/// One operation on a dependency.
#[derive(Clone, Debug)]
pub struct DependencyOp {
    /// The span name for databases and caches (`SELECT orders`, `HGET`).
    pub name: SpanText,
    /// `db.operation.name` for databases and caches (`SELECT`, `HGET`); the HTTP method for
    /// external APIs (the caller's client names the span after it).
    pub method: &'static str,
}

impl Dependency {
    /// The node name the engine gives the dependency, from its callers' span attributes:
    /// `peer.service` if set, else `{db.system}/{db.name}`, else `server.address`.
    pub fn node_name(&self) -> String {
        if let Some(peer) = &self.peer_service {
            return peer.to_string();
        }
        match (self.system, &self.db_name) {
            (Some(system), Some((_, name))) => format!("{system}/{name}"),
            _ => self.host.to_string(),
        }
    }
}

impl Topology {
    /// The operation `op` refers to.
    pub fn operation(&self, op: OpRef) -> &Operation {
        &self.services[op.service].operations[op.operation]
    }

    /// The services `op` calls (directly), each once, in order.
    pub fn callee_services(&self, op: OpRef) -> Vec<usize> {
        let mut callees: Vec<usize> = self
            .operation(op)
            .stages
            .iter()
            .flatten()
            .filter_map(|call| match call.target {
                Target::Service(callee) => Some(callee.service),
                _ => None,
            })
            .collect();
        callees.sort_unstable();
        callees.dedup();
        callees
    }

    /// Every operation of every service.
    pub fn operations(&self) -> impl Iterator<Item = OpRef> + '_ {
        self.services.iter().enumerate().flat_map(|(service, s)| {
            (0..s.operations.len()).map(move |operation| OpRef { service, operation })
        })
    }

    /// Expected server spans per request of every operation (visits), and expected calls
    /// per request of every dependency.
    pub fn expected_visits(&self) -> (Vec<Vec<f64>>, Vec<f64>) {
        let mut ops: Vec<Vec<f64>> = self
            .services
            .iter()
            .map(|s| vec![0.0; s.operations.len()])
            .collect();
        let mut deps = vec![0.0; self.dependencies.len()];
        let total: f64 = self.entries.iter().map(|(_, w)| w).sum();
        for (entry, weight) in &self.entries {
            ops[entry.service][entry.operation] += weight / total;
        }
        // Services are ordered by level and calls go deeper, so one pass in order settles
        // every operation's visits before its calls are followed.
        for service in 0..self.services.len() {
            for (operation, spec) in self.services[service].operations.iter().enumerate() {
                let visits = ops[service][operation];
                for call in spec.stages.iter().flatten() {
                    let calls = visits * call.probability * f64::from(call.repeat);
                    match &call.target {
                        Target::Service(op) => ops[op.service][op.operation] += calls,
                        Target::Dependency(dep) => deps[dep.dependency] += calls,
                        Target::CacheAside {
                            cache,
                            store,
                            hit_ratio,
                        } => {
                            deps[cache.dependency] += calls;
                            deps[store.dependency] += calls * (1.0 - hit_ratio);
                        }
                    }
                }
            }
        }
        (ops, deps)
    }

    /// Expected spans in one request.
    pub fn expected_spans(&self) -> f64 {
        let (ops, deps) = self.expected_visits();
        let mut spans: f64 = deps.iter().sum();
        for op in self.operations() {
            let spec = self.operation(op);
            let visits = ops[op.service][op.operation];
            // The server span, its internal spans, and the client span of each service call.
            let service_calls: f64 = spec
                .stages
                .iter()
                .flatten()
                .filter(|c| matches!(c.target, Target::Service(_)))
                .map(|c| c.probability * f64::from(c.repeat))
                .sum();
            spans += visits * (1.0 + spec.internals.len() as f64 + service_calls);
        }
        spans
    }

    /// Operations that call service `service`.
    pub fn callers_of(&self, service: usize) -> Vec<OpRef> {
        self.operations()
            .filter(|&op| {
                self.operation(op)
                    .stages
                    .iter()
                    .flatten()
                    .any(|c| matches!(c.target, Target::Service(t) if t.service == service))
            })
            .collect()
    }

    /// Operations that call dependency `dependency`, with the dependency operations they use.
    pub fn users_of(&self, dependency: usize) -> Vec<(OpRef, usize)> {
        let mut users = Vec::new();
        for op in self.operations() {
            for call in self.operation(op).stages.iter().flatten() {
                let used: &[DepOp] = match &call.target {
                    Target::Service(_) => &[],
                    Target::Dependency(dep) => std::slice::from_ref(dep),
                    Target::CacheAside { cache, store, .. } => &[*cache, *store],
                };
                for dep in used.iter().filter(|d| d.dependency == dependency) {
                    if !users.contains(&(op, dep.operation)) {
                        users.push((op, dep.operation));
                    }
                }
            }
        }
        users
    }

    /// Services reachable from `service` by calls (itself excluded).
    pub fn downstream_of(&self, service: usize) -> Vec<usize> {
        let mut reached = vec![false; self.services.len()];
        let mut stack = vec![service];
        while let Some(current) = stack.pop() {
            for call in self.services[current]
                .operations
                .iter()
                .flat_map(|op| op.stages.iter().flatten())
            {
                if let Target::Service(op) = call.target
                    && !reached[op.service]
                {
                    reached[op.service] = true;
                    stack.push(op.service);
                }
            }
        }
        (0..self.services.len()).filter(|&s| reached[s]).collect()
    }

    /// True when neither service calls the other, directly or through others.
    pub fn unrelated(&self, a: usize, b: usize) -> bool {
        a != b && !self.downstream_of(a).contains(&b) && !self.downstream_of(b).contains(&a)
    }
}
