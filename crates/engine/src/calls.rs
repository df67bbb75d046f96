//! [`CallPatterns`]: which calls each endpoint makes per request, and when that drops.
//!
//! Some defects change what a request does, not how long it takes or whether it says it
//! failed: a handler that returns early on bad data stops calling the service behind it, and
//! no span reports an error. The call graph shows it: the endpoint that used to call `cart`
//! once per request now calls it on a third of them. So the call census (settled traces chosen
//! by a hash of their id, whatever they contain: see `TraceBuffer::census`) teaches, per
//! calling endpoint, the usual number of calls per request to each endpoint it calls (learned
//! from healthy endpoints only, as self times are), and keeps its recent requests to test
//! against it.
//!
//! A drop is reported when the calling endpoint was seen in at least `min_samples` recent requests,
//! the calls it made are at least 10% fewer than usual and at least 4.5 standard deviations fewer
//! (against the learned spread of calls per request, and the uncertainty of the usual rate itself,
//! learned from a finite number of requests), the requests that made no such call are more than
//! chance explains (by the exact binomial tail: skipping a call made on nearly every request is a
//! rare event, whose tail the deviations understate), the calls to the callee's service as a whole
//! fell by at least half as much (a client span calls one operation of its peer per request, so a
//! change in the mix of the handlers above it lowers one operation's share as it raises another's),
//! and the calls fall short of the usual rate in the first and the last third of the time the
//! recent requests cover alike (a third may hold few requests, so it is asked only for the
//! direction, not the size), in every test for an analysis interval at least (as an alerting rule's
//! `for`: a chance dip is deepest for a test or two as the window slides, where a defect's drop
//! lasts). A request whose call failed tells only of the callees that failed: a handler may give up
//! or answer in part when a dependency fails, and the calls it saved are the failure's symptom,
//! which the error rules judge.
//!
//! While an endpoint's calls are reported dropped, or a drop is developing (2.5 deviations,
//! significant or not), its usual pattern is not learned, so the defect is never learned as normal,
//! and it is watched: the census counts all of its settled requests, not only its share. Rises are
//! not reported: more calls (retries) are a symptom of a callee's trouble, which other evidence
//! names.

use std::collections::VecDeque;

use foldhash::HashMap;
use smallvec::SmallVec;

use aiops_analyzer::chance::improbably_many;
use aiops_analyzer::{Anomaly, AnomalyKind, Severity};
#[cfg(test)]
use aiops_rca::TraceGraph;
use aiops_telemetry_core::{EndpointKey, SpanKind, SpanText, TimeWindow};

use crate::trace_buffer::CallRecord;

/// Most recent requests kept per calling endpoint.
const MAX_SAMPLES: usize = 256;

/// Most callees learned per calling endpoint.
const MAX_CALLEES: usize = 64;

/// Calling endpoints whose patterns are learned at most.
const MAX_CALLERS: usize = 10_000;

/// Requests after which a usual rate is trusted, and the horizon of its moving average.
const MATURE: f64 = 50.0;
const HORIZON: f64 = 500.0;

/// Least share by which calls must drop.
const MIN_DROP: f64 = 0.1;

/// Standard deviations of the drop.
const MIN_Z: f64 = 4.5;

/// Standard deviations of a drop that holds learning: one developing is not learned as usual
/// before it is significant.
const HOLD_Z: f64 = 2.5;

/// Floor of the variance of calls per request, so a call made on every request is not judged
/// certain.
const MIN_VARIANCE: f64 = 0.02;

/// Only calls made on at least this share of requests are judged (a router that sends each
/// request to one of nine callees calls each on a ninth, and its chance dips are many).
const MIN_USUAL_RATE: f64 = 0.2;

/// The calls of one request: its callees by their index in the caller's table, each with how
/// many times it was called. Kept inline: a request calls few endpoints.
type Calls = SmallVec<[(u16, u32); 4]>;

/// One recent request of a calling endpoint.
#[derive(Debug)]
struct Request {
    began: u64,
    calls: Calls,
    /// The callees a call failed to, as bits by index (`MAX_CALLEES` fit).
    failed: u64,
}

impl Request {
    /// Whether the request tells how often it calls the callees in `callees` (bits by index):
    /// a handler may give up or answer in part when a call fails, so a request with a failed
    /// call tells only of the callees that failed (their calls were made), not of the calls
    /// it may have saved.
    fn tells(&self, callees: u64) -> bool {
        self.failed == 0 || self.failed & callees != 0
    }
}

/// The calls of one calling endpoint: usual rates per callee and recent requests.
#[derive(Debug, Default)]
struct Caller {
    /// Requests learned from.
    learned: f64,
    /// The sum of the squared weights of the requests in the usual rates (`1 / learned`
    /// while every request weighs alike, about `1 / (2 * HORIZON)` once the oldest fade): a
    /// usual rate's variance is the calls' variance times this.
    weight_square: f64,
    /// The callees seen, by index, each with its usual calls per request (the mean and the
    /// mean square) once a learned request called it.
    callees: Vec<(EndpointKey, Option<Usual>)>,
    /// Recent requests.
    recent: VecDeque<Request>,
    /// Whether the last test found a drop: learning waits until it is gone.
    dropped: bool,
    /// The callees whose calls the last test found significantly dropped, by index, each with
    /// the end of the first window in a row to find it.
    significant: Vec<(usize, u64)>,
}

/// The usual number of calls per request to one callee, as moving averages.
#[derive(Clone, Copy, Debug, Default)]
struct Usual {
    mean: f64,
    square: f64,
}

impl Usual {
    fn observe(&mut self, count: f64, alpha: f64) {
        self.mean += alpha * (count - self.mean);
        self.square += alpha * (count * count - self.square);
    }

    fn variance(&self) -> f64 {
        (self.square - self.mean * self.mean).max(MIN_VARIANCE)
    }

    /// The usual share of requests that make no such call, at most: `1 - mean² / square`
    /// (exact for a call made once or not at all, and at least the true share for any other
    /// count, as the mean squared is at most the mean square times the share that call).
    fn share_without(&self) -> f64 {
        if self.square <= 0.0 {
            return 1.0;
        }
        (1.0 - self.mean * self.mean / self.square).clamp(0.0, 1.0)
    }

    /// The usual share of requests without such a call, as learned from `taught` requests:
    /// [`share_without`](Self::share_without) with one request without and one with added,
    /// so a call seen on every one of a few requests is not taken as certain.
    fn share_without_of(&self, taught: f64) -> f64 {
        (self.share_without() * taught + 1.0) / (taught + 2.0)
    }
}

/// How many times `calls` called the callee at `index`.
fn count_of(calls: &Calls, index: usize) -> u32 {
    calls
        .iter()
        .find(|(called, _)| usize::from(*called) == index)
        .map_or(0, |&(_, count)| count)
}

/// Call patterns per calling endpoint.
#[derive(Debug, Default)]
pub(crate) struct CallPatterns {
    callers: HashMap<EndpointKey, Caller>,
}

/// What a call-pattern test needs to know.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallRule {
    pub window_nanos: u64,
    pub min_samples: usize,
    /// How long a drop must stay significant, in every test, before it is reported.
    pub persist_nanos: u64,
}

impl CallPatterns {
    /// Records the calls of every span in `records` (a census: spans of traces chosen
    /// whatever they contain); spans whose endpoint `is_healthy` accepts also teach its usual
    /// pattern. Skipped: failed spans (a failure cuts a request short by itself), client spans
    /// (their child is the callee's own span of the same call: when it goes missing, the callee
    /// hung or lost its spans, which the timeout and error rules judge; no call was left
    /// unmade), and spans of an endpoint not seen making a call yet (it has no pattern to keep).
    pub(crate) fn record(
        &mut self,
        records: Vec<CallRecord>,
        is_healthy: impl Fn(&EndpointKey) -> bool,
    ) {
        for record in records {
            if record.failed || record.kind == SpanKind::Client {
                continue;
            }
            let CallRecord {
                caller,
                began_unix_nanos: began,
                failed_calls: failed,
                calls,
                ..
            } = record;
            if let Some(entry) = self.callers.get_mut(&caller) {
                entry.add(began, calls, &failed, is_healthy(&caller));
                continue;
            }
            if calls.is_empty() || self.callers.len() >= MAX_CALLERS {
                continue;
            }
            let learn = is_healthy(&caller);
            let entry = self.callers.entry(caller).or_default();
            entry.add(began, calls, &failed, learn);
        }
    }

    /// As [`record`](Self::record), for every span of `graphs`.
    #[cfg(test)]
    pub(crate) fn observe(
        &mut self,
        graphs: &[TraceGraph<'_>],
        is_healthy: impl Fn(&EndpointKey) -> bool,
    ) {
        let mut records = Vec::new();
        for graph in graphs {
            let began = graph
                .nodes()
                .map(|(_, span)| span.start_unix_nanos)
                .min()
                .unwrap_or(0);
            for (node, span) in graph.nodes() {
                let mut calls: Vec<(EndpointKey, u32)> = Vec::new();
                let mut failed_calls: Vec<EndpointKey> = Vec::new();
                let failed = |node: usize| graph.span(node).is_error();
                for &child in graph.children(node) {
                    let callee = graph.span(child).endpoint();
                    let call_failed = failed(child)
                        || (graph.span(child).kind == SpanKind::Client
                            && graph.children(child).iter().any(|&below| failed(below)));
                    if call_failed && !failed_calls.contains(&callee) {
                        failed_calls.push(callee.clone());
                    }
                    match calls.iter_mut().find(|(known, _)| *known == callee) {
                        Some((_, count)) => *count += 1,
                        None => calls.push((callee, 1)),
                    }
                }
                records.push(CallRecord {
                    caller: span.endpoint(),
                    kind: span.kind,
                    began_unix_nanos: began,
                    failed: span.is_error(),
                    failed_calls,
                    calls,
                });
            }
        }
        self.record(records, is_healthy);
    }

    /// The calling endpoints whose calls the last test found dropped or dropping (at
    /// `HOLD_Z` deviations at least): the census reads all of their settled requests (up to
    /// a cap) until the drop is gone, so that a quiet caller's drop is judged on its
    /// requests, not on the few the census's share would count.
    pub(crate) fn watched(&self) -> Vec<EndpointKey> {
        let mut watched: Vec<EndpointKey> = self
            .callers
            .iter()
            .filter(|(_, entry)| entry.dropped)
            .map(|(caller, _)| caller.clone())
            .collect();
        watched.sort();
        watched
    }

    /// The calling endpoints whose usual calls dropped, as anomalies; forgets requests older
    /// than the rule's window first.
    pub(crate) fn detect(&mut self, rule: CallRule, now: u64) -> Vec<Anomaly> {
        let since = now.saturating_sub(rule.window_nanos);
        let window = TimeWindow::new(since, now);
        let mut anomalies = Vec::new();
        for (caller, entry) in &mut self.callers {
            while entry
                .recent
                .front()
                .is_some_and(|request| request.began < since)
            {
                entry.recent.pop_front();
            }
            let (found, developing) = entry.test(caller, rule, window);
            entry.dropped = found.is_some() || developing;
            anomalies.extend(found);
        }
        self.callers
            .retain(|_, entry| !entry.recent.is_empty() || entry.learned > 0.0);
        anomalies.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        anomalies
    }
}

impl Caller {
    fn learn(&mut self, request: &Request) {
        self.learned += 1.0;
        let alpha = 1.0 / self.learned.min(HORIZON);
        self.weight_square = (1.0 - alpha).powi(2) * self.weight_square + alpha * alpha;
        for (index, (_, usual)) in self.callees.iter_mut().enumerate() {
            if !request.tells(1 << index) {
                continue;
            }
            let count = f64::from(count_of(&request.calls, index));
            match usual {
                Some(usual) => usual.observe(count, alpha),
                // A callee first learned now was called zero times on every request before.
                None if count > 0.0 => {
                    *usual = Some(Usual {
                        mean: count / self.learned,
                        square: count * count / self.learned,
                    });
                }
                None => {}
            }
        }
    }

    /// Adds one request, which began at `began`, made `calls` and failed the calls to the
    /// callees in `failed`: to the recent ones, and to the usual pattern when `learn`.
    fn add(
        &mut self,
        began: u64,
        calls: Vec<(EndpointKey, u32)>,
        failed: &[EndpointKey],
        learn: bool,
    ) {
        let mut request = Request {
            began,
            calls: Calls::new(),
            failed: 0,
        };
        for (callee, count) in calls {
            let index = match self.callees.iter().position(|(known, _)| *known == callee) {
                Some(index) => index,
                None if self.callees.len() < MAX_CALLEES => {
                    self.callees.push((callee, None));
                    self.callees.len() - 1
                }
                None => continue,
            };
            if failed.contains(&self.callees[index].0) {
                request.failed |= 1 << index;
            }
            request.calls.push((index as u16, count));
        }
        if learn && !self.dropped {
            self.learn(&request);
        }
        if self.recent.len() == MAX_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(request);
    }

    /// The usual and the recent calls per request to any operation of `service`.
    fn to_service(&self, service: &SpanText) -> (f64, f64) {
        let (mut usual, mut of_service) = (0.0, 0u64);
        for (index, (callee, learned)) in self.callees.iter().enumerate() {
            if callee.service == *service {
                of_service |= 1 << index;
                usual += learned.map_or(0.0, |learned| learned.mean);
            }
        }
        let (mut requests, mut calls) = (0u64, 0u64);
        for request in self.recent.iter().filter(|r| r.tells(of_service)) {
            requests += 1;
            calls += request
                .calls
                .iter()
                .filter(|(index, _)| of_service & (1 << index) != 0)
                .map(|&(_, count)| u64::from(count))
                .sum::<u64>();
        }
        (usual, calls as f64 / requests.max(1) as f64)
    }

    /// The largest significant drop of a usual call, as an anomaly on `caller`, and whether
    /// a drop is developing (`HOLD_Z` deviations at least, significant or not), which holds
    /// learning: the requests of a defect's first minute would otherwise teach its pattern.
    fn test(
        &mut self,
        caller: &EndpointKey,
        rule: CallRule,
        window: TimeWindow,
    ) -> (Option<Anomaly>, bool) {
        let n = self.recent.len();
        if self.learned < MATURE || n < rule.min_samples.max(1) {
            self.significant.clear();
            return (None, false);
        }
        // The thirds are those of the time the recent requests cover: a busy caller's may
        // cover less than the window, and the newest settled ones began a settle time ago.
        let (oldest, newest) = self
            .recent
            .iter()
            .fold((u64::MAX, 0), |(oldest, newest), request| {
                (oldest.min(request.began), newest.max(request.began))
            });
        let (first, last) = TimeWindow::new(oldest, newest.saturating_add(1)).end_thirds();
        // Requests that tell of the callee, calls made, and requests that made none.
        let calls_to = |callee: usize, keep: &dyn Fn(u64) -> bool| {
            let (mut requests, mut calls, mut without) = (0u64, 0u64, 0u64);
            for request in &self.recent {
                if keep(request.began) && request.tells(1 << callee) {
                    requests += 1;
                    let count = u64::from(count_of(&request.calls, callee));
                    calls += count;
                    without += u64::from(count == 0);
                }
            }
            (requests, calls, without)
        };
        // What the usual rates are worth, in requests.
        let taught = 1.0 / self.weight_square.max(f64::MIN_POSITIVE);
        let mut developing = false;
        let mut significant = Vec::new();
        let mut largest: Option<(&EndpointKey, f64, f64, u64)> = None;
        for (index, (callee, learned)) in self.callees.iter().enumerate() {
            let Some(learned) = learned else { continue };
            if learned.mean < MIN_USUAL_RATE {
                continue;
            }
            let usual = learned.mean;
            let (requests, calls, without) = calls_to(index, &|_| true);
            if requests < rule.min_samples.max(1) as u64 {
                continue;
            }
            let expected = usual * requests as f64;
            let drop = expected - calls as f64;
            // The usual rate is itself an estimate, worth `taught` requests: the drop's
            // variance is that of the recent calls plus that of the estimate.
            let n = requests as f64;
            let z = drop / (learned.variance() * n * (1.0 + n / taught)).sqrt();
            developing |= z >= HOLD_Z;
            if drop < MIN_DROP * expected
                || z < MIN_Z
                || !improbably_many(without, requests, learned.share_without_of(taught))
            {
                continue;
            }
            let sustained = [
                calls_to(index, &|began| first.contains(began)),
                calls_to(index, &|began| last.contains(began)),
            ]
            .iter()
            .all(|&(requests, calls, _)| requests > 0 && (calls as f64) < usual * requests as f64);
            let observed = calls as f64 / requests as f64;
            // The calls to the callee's service in all must drop too: a client span calls one
            // operation of its peer per request, and when the handlers above it change their
            // mix, one operation's share falls as another's rises.
            let (usual_service, observed_service) = self.to_service(&callee.service);
            let replaced = usual_service - observed_service < 0.5 * (usual - observed);
            if !sustained || replaced {
                continue;
            }
            // A chance dip peaks for a test or two as the window slides; a defect's drop lasts.
            let since = self
                .significant
                .iter()
                .find(|(known, _)| *known == index)
                .map_or(window.end_unix_nanos, |&(_, since)| since);
            significant.push((index, since));
            let persisted = window.end_unix_nanos - since >= rule.persist_nanos;
            if persisted && largest.is_none_or(|(_, u, o, _)| usual - observed > u - o) {
                largest = Some((callee, usual, observed, requests));
            }
        }
        let found = largest.map(|(callee, usual, observed, requests)| Anomaly {
            kind: AnomalyKind::CallDrop,
            endpoint: caller.clone(),
            observed,
            baseline: usual,
            ratio: observed / usual,
            sample_count: requests,
            window,
            severity: if observed <= 0.5 * usual {
                Severity::High
            } else {
                Severity::Medium
            },
            description: aiops_analyzer::describe::call_drop(
                &callee.service,
                &callee.operation,
                observed,
                usual,
            ),
        });
        self.significant = significant;
        (found, developing)
    }
}

#[cfg(test)]
mod tests;
