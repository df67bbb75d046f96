//! The realistic workload suite: the reference benchmark of detection quality.
//!
//! ```text
//! cargo run -p aiops-workloads --release -- --seeds report
//! ```
//!
//! Each case draws a random microservice system, runs healthy traffic through it, injects a
//! fault (or, in healthy cases, only changes the traffic), and drives the engine on a virtual
//! clock exactly as the server does. The engine's incidents are scored against the ground
//! truth, and the runner prints markdown tables per fault class and magnitude and per healthy
//! class. Options: `--seeds tune|report|<first seed>`, `--cases N` per scenario (default 16),
//! `--class TEXT` (only scenarios whose name contains it), `--seed S` (only the case with
//! seed `S`, to look again at a case from a listing), `--threads N`, `--verbose` (every miss,
//! false incident and extra incident on standard error). `WORKLOADS_LATENCY_MULTIPLIER` and
//! `WORKLOADS_MIN_LATENCY_INCREASE_MS` change the detection sensitivity.
//!
//! # Tuning and reporting seeds
//!
//! `--seeds tune` draws cases from seeds 1 upwards, `--seeds report` from 1,000,000 upwards
//! (scenario `i`, case `j` has seed `first + 1000 i + j`). Tune the engine on `tune` only;
//! `report` measures it on systems it was never tuned on. A case depends only on its scenario
//! and seed.
//!
//! # The traces
//!
//! Traces are shaped as OpenTelemetry instrumentation makes them ([`topology`], [`trace`],
//! [`instrument`]):
//!
//! - 5 to 30 services in levels below one or two entry services (`frontend`,
//!   `api-gateway`...), HTTP or gRPC, 1 to 4 operations each. Calls form a DAG: every
//!   operation of a non-entry service has a caller; some services have several (fan-in);
//!   operations call in stages, the calls of a stage concurrently. 30% of calls are made only
//!   sometimes; 10% do not propagate failures.
//! - Every call between services is the caller's CLIENT span and the callee's SERVER span as
//!   its child, with a network gap of a few hundred microseconds to a few milliseconds
//!   (lognormal) on each side. HTTP client spans are named `GET` or `HTTP GET` (no route) and
//!   carry `server.address` (`cartservice` or `cartservice.shop.svc.cluster.local`),
//!   `http.request.method`, `http.response.status_code`, and in some services
//!   `peer.service`; gRPC spans are named `package.Service/Method` on both sides with
//!   `rpc.system`, `rpc.service`, `rpc.method` and `rpc.grpc.status_code`. Server spans are
//!   named `GET /api/cart/{id}` or `oteldemo.CartService/GetCart`.
//! - Databases (PostgreSQL, MySQL, MongoDB), caches (Redis, Memcached) and external APIs
//!   (`api.stripe.com`...) have no spans of their own: their callers' CLIENT spans
//!   (`SELECT orders`, `HGET`, `redis GET`, `POST`) carry `db.system`, `db.name` or
//!   `db.namespace`, `server.address` and sometimes `peer.service`. Database calls take 0.3 to
//!   3 ms with a Pareto tail of multiples; some are N+1 loops; cache-aside look-ups skip the
//!   database on a hit.
//! - Own time is lognormal per operation (1 to 25 ms median), partly covered by 1 to 3
//!   INTERNAL spans in some operations; 0.2% of requests are healthy outliers (3 to 10 times).
//! - 15% of services run older instrumentation: no span kind (read as internal), no status;
//!   their HTTP spans still carry the status code, their gRPC spans show no error at all.
//! - Each service's clients give up at a timeout drawn between 1 and 5 s, and never below 1.5
//!   times the 99th percentile of its handlers' healthy calls (measured on 400 simulated
//!   requests): on a healthy day calls rarely time out.
//! - Traffic is Poisson at about 10 requests/s at the entry operations. Each service's SDK
//!   exports its spans in batches every 1 to 5 s (its own delay and phase); the collector
//!   receives them when they arrive ([`export`]), late and out of order.
//!
//! # The cases
//!
//! Fault classes ([`case::FaultClass`]), each in magnitude buckets, starting after the
//! warm-up (10 minutes, or 1 minute in a quarter of the cases) and lasting 60 to 120 s:
//! network delay into a service; CPU saturation of a service; a slow database, cache or
//! external API; one slow operation (own time about 10 ms, +20 ms, +50 ms, or +0.1 to 1 s);
//! errors with status (5% to 80%); a defect that returns early and stops calling downstream,
//! with no error status (or only a 500 at the entry); a callee hanging past its callers'
//! client timeout; two concurrent faults in unrelated services. Healthy classes
//! ([`case::HealthyClass`]): steady traffic, load doubling, a diurnal ramp, a one-second burst
//! of outliers, a noisy 1 ms database, and a 60 s warm-up.
//!
//! The ground truth is the faulty service, or for a dependency its node name by the rule
//! the engine applies to client span attributes: `peer.service`, else
//! `{db.system}/{db.name}`, else `server.address` ([`topology::Dependency::node_name`]).
//! For a network delay into a service, that service is the answer. [`truth`] says which
//! endpoints and edges are right answers, and [`score`] how incidents are ranked and counted.
//!
//! # Visibility
//!
//! Each fault also carries, from its own ground truth, whether it is visible in traces
//! ([`visibility::visibility`], [`case::Fault::visibility`]): whether it adds at least 20 ms
//! **and** at least 50% to the own time of the faulty place. The place's own time is, for a
//! network delay, the gap of the edges into the service (client span minus server span, twice
//! the one-way network median); for CPU saturation, the own time of the service's typical
//! operation (the drawn factor times the traffic-weighted median of its operations' median own
//! times); for a slow dependency or operation, that place's median latency or own time.
//! Errors are visible at a rate of 20% or more (the engine's default `error_rate_threshold`,
//! fixed in the suite) when some span records their status; hangs always. An early return is
//! visible when it drops 20% or more of the calls on an edge out of its service, and those
//! calls are 3 standard deviations or more of the edge's count of calls in a minute at 10
//! requests/s (a quarter of an edge carrying 25 calls a minute is not): it shows in the call
//! structure only, not in timing or (without the 500 at the edge) in statuses.
//! Invisible faults are still run and scored in the tables; the targets count visible ones.
//! `--verbose` prints each listed fault's visibility and the measure that decided it.
//!
//! # Output
//!
//! - The table of fault classes by magnitude: detection, top-1 and top-3 at service and at
//!   endpoint or edge level, incidents per fault and times to detect, over all faults; then
//!   the share of faults that are visible, detection over the visible ones, and time to the
//!   right cause over the visible ones.
//! - Two concurrent faults named, the table of healthy classes, false incidents before the
//!   fault, and the summary line.
//! - The targets block, the project's targets with the result, the target and `met` or
//!   `missed` ([`report`]):
//!   - per fault class, over its visible faults: detected >= 0.95; over the visible faults
//!     detected: top-1 service >= 0.90, top-3 service >= 0.97, and, of single-fault cases,
//!     exactly one incident >= 0.90; the mean incidents per detected fault (a case's incidents
//!     shared among its faults) and the time to the right cause over visible faults are
//!     reported without a target; a class with no visible fault is not judged (`-`);
//!   - no false incident in the healthy cases;
//!   - two concurrent faults: both places the root cause of some incident in >= 0.90 of the
//!     cases whose two faults are both visible (all cases in parentheses);
//!   - a last line counting the targets met, missed and not judged.
//!
//! The output is a function of the seeds and the engine: two runs of the same seeds print the
//! same tables and listings (whatever `--threads`); only the last line's wall-clock seconds
//! and thread count differ.

#![deny(missing_docs)]

pub mod case;
pub mod dependency;
pub mod draw;
pub mod engine;
pub mod evidence;
pub mod export;
pub mod fault;
pub mod generate;
pub mod instrument;
pub mod logs;
pub mod naming;
pub mod report;
pub mod report_evidence;
pub mod runner;
pub mod sample;
pub mod score;
pub mod score_evidence;
pub mod suite;
pub mod topology;
pub mod trace;
pub mod traffic;
pub mod truth;
pub mod visibility;

pub use generate::generate;

#[cfg(test)]
mod tests;
