//! One request through a [`Topology`]: the spans of its trace, as each service's
//! instrumentation records them, with the conditions (faults, disturbances) of the moment.
//!
//! Every call between services is a CLIENT span in the caller and a SERVER span in the
//! callee as its child, with a network gap on each side; calls to dependencies are CLIENT
//! spans with no child. Own time is lognormal, partly covered by INTERNAL spans, and split
//! around the calls; calls run in stages (the calls of a stage concurrently).

use aiops_telemetry_core::{Span, SpanId, TraceId};
use rand::Rng;
use rand::rngs::StdRng;

use crate::fault::{CAUGHT_EXCEPTION, Conditions, Note};
use crate::instrument::{self, Place, Reply};
use crate::sample::{lognormal, pareto, span_id, trace_id};
use crate::topology::{Call, DepOp, OpRef, Target, Topology};

/// A span and the index of the service whose SDK exports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Emitted {
    /// Index into [`Topology::services`].
    pub service: usize,
    /// The span.
    pub span: Span,
    /// What went wrong that its status does not show, for the logs about it.
    pub note: Note,
    /// The span of the service's handler of the request (its server span, whatever kind older
    /// instrumentation gives it): the one the service's logs about the request belong to.
    pub handler: bool,
}

/// Share of requests whose own time is a healthy outlier (a multiple of the usual).
const OUTLIER_PROBABILITY: f64 = 0.002;

/// The spans of one request to `entry` starting at `start_ns`, under `conditions`, with own
/// times scaled by `load_factor` (busier systems are a little slower).
pub fn request(
    rng: &mut StdRng,
    topology: &Topology,
    conditions: Conditions<'_>,
    load_factor: f64,
    entry: OpRef,
    start_ns: u64,
) -> Vec<Emitted> {
    let mut builder = Builder {
        topology,
        conditions,
        load_factor,
        trace: trace_id(rng),
        origin_ns: start_ns,
        spans: Vec::new(),
        defect_seen: false,
        logged_defects: 0,
    };
    builder.serve(rng, entry, None, 0.0);
    builder.spans
}

struct Builder<'a> {
    topology: &'a Topology,
    conditions: Conditions<'a>,
    load_factor: f64,
    trace: TraceId,
    /// Start of the request; times below are milliseconds after it.
    origin_ns: u64,
    spans: Vec<Emitted>,
    /// A defect returned early and asked for an error at the edge.
    defect_seen: bool,
    /// Defects that answered a bad result with no error status (their callers fail on it).
    logged_defects: u32,
}

/// How a server or a call ended, in milliseconds after the request's start.
struct Ended {
    end_ms: f64,
    reply: Reply,
}

impl Builder<'_> {
    fn place(&self, id: SpanId, parent: Option<SpanId>, start_ms: f64, end_ms: f64) -> Place {
        let start_ns = self.origin_ns + (start_ms * 1e6).round() as u64;
        let end_ns = self.origin_ns + (end_ms * 1e6).round() as u64;
        Place {
            trace: self.trace,
            id,
            parent,
            start_ns,
            duration_ns: end_ns.saturating_sub(start_ns),
        }
    }

    fn emit(&mut self, service: usize, span: Span) {
        self.spans.push(Emitted {
            service,
            span,
            note: Note::None,
            handler: false,
        });
    }

    /// Serves `op`: its SERVER span, internal spans and calls.
    fn serve(&mut self, rng: &mut StdRng, op: OpRef, parent: Option<SpanId>, start: f64) -> Ended {
        let topology = self.topology;
        let spec = topology.operation(op);
        let id = span_id(rng);
        let mut self_ms = lognormal(rng, spec.self_median_ms, spec.self_sigma) * self.load_factor;
        if rng.random_bool(OUTLIER_PROBABILITY) {
            self_ms *= rng.random_range(3.0..10.0);
        }
        let self_ms = self.conditions.self_time(rng, op, self_ms);
        let hang = self.conditions.hang_ms(rng, op.service).unwrap_or(0.0);
        let mut failed = self.conditions.fails(rng, op, spec.error_rate);
        if self
            .conditions
            .deployed(self.trace, op.service, self.origin_ns)
        {
            failed |= self.conditions.deployment_fails(rng, op.service);
        }
        let note = self.conditions.note(rng, op);
        let defects_below = self.logged_defects;
        let early = self.conditions.returns_early(rng, op);
        let fail_early = failed && rng.random_bool(0.5);

        let pre = self_ms * spec.pre_share;
        let mut cursor = start + pre + hang;
        let mut reply = if failed { Reply::Failed } else { Reply::Ok };
        if !fail_early && early.is_none() {
            for stage in &spec.stages {
                let (end, failure) = self.stage(rng, op.service, id, stage, cursor);
                cursor = end;
                if let Some(failure) = failure {
                    if !failed {
                        reply = failure;
                    }
                    break;
                }
            }
        }
        let mut post = self_ms * (1.0 - spec.pre_share);
        if fail_early {
            post = 0.0;
        } else if early.is_some() || reply != Reply::Ok {
            post *= rng.random_range(0.1..0.3);
        }
        let end = cursor + post;
        self.internals(rng, op, id, start, pre, cursor, post);
        if early == Some(true) {
            self.defect_seen = true;
        }
        if parent.is_none() && self.defect_seen && reply == Reply::Ok {
            reply = Reply::Failed;
        }
        // A callee's bad answer, sent with no error status, fails this request.
        if self.logged_defects > defects_below && reply == Reply::Ok {
            reply = Reply::Failed;
        }
        let place = self.place(id, parent, start, end);
        let service = &topology.services[op.service];
        let mut span = instrument::server(service, spec, place, reply);
        if note == Note::Caught {
            span = span
                .with_attribute("exception.type", CAUGHT_EXCEPTION)
                .with_attribute("exception.message", "price is null");
        }
        if note == Note::Defect && reply == Reply::Ok {
            self.logged_defects += 1;
        }
        self.spans.push(Emitted {
            service: op.service,
            span,
            note,
            handler: true,
        });
        Ended { end_ms: end, reply }
    }

    /// INTERNAL spans laid out inside the work before the calls (`[start, start + pre]`) and
    /// after them (`[after, after + post]`).
    #[allow(clippy::too_many_arguments)]
    fn internals(
        &mut self,
        rng: &mut StdRng,
        op: OpRef,
        parent: SpanId,
        start: f64,
        pre: f64,
        after: f64,
        post: f64,
    ) {
        let spec = self.topology.operation(op);
        // Internal work starts a moment after its segment does.
        let (mut before_cursor, mut after_cursor) = (start + 0.02 * pre, after + 0.02 * post);
        for internal in &spec.internals {
            let (cursor, length) = if internal.before_calls {
                (&mut before_cursor, pre)
            } else {
                (&mut after_cursor, post)
            };
            let duration = length * internal.share;
            if duration <= 0.0 {
                continue;
            }
            let place = self.place(span_id(rng), Some(parent), *cursor, *cursor + duration);
            *cursor += duration;
            let span =
                instrument::internal(&self.topology.services[op.service], &internal.name, place);
            self.emit(op.service, span);
        }
    }

    /// Runs one stage's calls concurrently from `start`; returns when the last ends, and the
    /// failure that propagates to the caller, if any.
    fn stage(
        &mut self,
        rng: &mut StdRng,
        caller: usize,
        parent: SpanId,
        calls: &[Call],
        start: f64,
    ) -> (f64, Option<Reply>) {
        let (mut end, mut failure, mut dispatch) = (start, None, start);
        for call in calls {
            if call.probability < 1.0 && !rng.random_bool(call.probability) {
                continue;
            }
            dispatch += rng.random_range(0.01..0.08);
            let mut at = dispatch;
            for _ in 0..call.repeat {
                let ended = self.call(rng, caller, parent, &call.target, at);
                at = ended.end_ms + rng.random_range(0.01..0.05);
                if ended.reply.is_failure() && call.propagates {
                    failure = worse(failure, ended.reply);
                    break;
                }
            }
            end = end.max(at);
        }
        (end, failure)
    }

    fn call(
        &mut self,
        rng: &mut StdRng,
        caller: usize,
        parent: SpanId,
        target: &Target,
        at: f64,
    ) -> Ended {
        match target {
            Target::Service(op) => self.call_service(rng, caller, parent, *op, at),
            Target::Dependency(dep) => self.call_dependency(rng, caller, parent, *dep, at),
            Target::CacheAside {
                cache,
                store,
                hit_ratio,
            } => {
                let looked_up = self.call_dependency(rng, caller, parent, *cache, at);
                if rng.random_bool(*hit_ratio) {
                    return looked_up;
                }
                let at = looked_up.end_ms + rng.random_range(0.01..0.05);
                self.call_dependency(rng, caller, parent, *store, at)
            }
        }
    }

    /// A CLIENT span of `caller` around the callee's SERVER span, a network gap each side.
    fn call_service(
        &mut self,
        rng: &mut StdRng,
        caller: usize,
        parent: SpanId,
        op: OpRef,
        start: f64,
    ) -> Ended {
        let topology = self.topology;
        let client_id = span_id(rng);
        let callee = &topology.services[op.service];
        let extra = self.conditions.network_extra_ms(rng, op.service);
        let request_gap = lognormal(rng, callee.network_median_ms, 0.5) + 0.6 * extra;
        let served = self.serve(rng, op, Some(client_id), start + request_gap);
        let response_gap = lognormal(rng, callee.network_median_ms, 0.5) + 0.4 * extra;
        let caller_service = &topology.services[caller];
        let timeout = caller_service.client_timeout_ms;
        let (end, reply) = if served.end_ms + response_gap - start > timeout {
            (start + timeout, Reply::TimedOut)
        } else {
            (served.end_ms + response_gap, served.reply)
        };
        let place = self.place(client_id, Some(parent), start, end);
        let span = instrument::client(caller_service, callee, topology.operation(op), place, reply);
        self.emit(caller, span);
        let reply = match reply {
            Reply::Ok => Reply::Ok,
            Reply::TimedOut => Reply::CalleeTimedOut,
            _ => Reply::CalleeFailed,
        };
        Ended { end_ms: end, reply }
    }

    /// A CLIENT span of `caller` on an uninstrumented dependency.
    fn call_dependency(
        &mut self,
        rng: &mut StdRng,
        caller: usize,
        parent: SpanId,
        dep: DepOp,
        start: f64,
    ) -> Ended {
        let topology = self.topology;
        let dependency = &topology.dependencies[dep.dependency];
        let mut latency = lognormal(rng, dependency.latency_median_ms, dependency.latency_sigma);
        if rng.random_bool(dependency.tail_probability) {
            latency *= pareto(rng, dependency.tail_alpha).min(100.0);
        }
        latency += self.conditions.dependency_extra_ms(rng, dep.dependency);
        let caller_service = &topology.services[caller];
        let mut failed = rng.random_bool(dependency.error_rate);
        if latency > caller_service.client_timeout_ms {
            latency = caller_service.client_timeout_ms;
            failed = true;
        }
        let place = self.place(span_id(rng), Some(parent), start, start + latency);
        let span = instrument::dependency(caller_service, dependency, dep.operation, place, failed);
        self.emit(caller, span);
        Ended {
            end_ms: start + latency,
            reply: if failed {
                Reply::CalleeFailed
            } else {
                Reply::Ok
            },
        }
    }
}

/// The reply a caller gives when several callees failed: a timeout wins.
fn worse(current: Option<Reply>, new: Reply) -> Option<Reply> {
    match current {
        Some(Reply::CalleeTimedOut) => current,
        _ => Some(new),
    }
}
