//! The call census: a share of the settled traces, chosen by their id alone, read as the calls
//! each of their spans made.
//!
//! Call patterns must be learned from requests chosen whatever they contain. The traces read
//! for self-time learning are chosen per endpoint, so those chosen for `payment` all show
//! `checkout` calling payment, and a defect that stops checkout from calling it is diluted by
//! exactly the traces chosen to see payment. The census chooses a trace by a hash of its id
//! when its first span arrives, so its share of each caller's requests is the same whatever
//! the caller did, and reads it once it has settled.
//!
//! At high traffic that share leaves a quiet endpoint a request or two a cycle, too few to
//! tell a dropped call from chance within a window. So the endpoints whose calls are
//! dropping (`CallPatterns::watched`) are topped up from their own recent traces: every one
//! that settled since the last census and was not chosen by id (at most [`MAX_WATCHED`], then
//! again by a hash of their id, never by what they contain), reading only the watched
//! endpoint's own spans of them. Its requests are then all counted, whatever they did; the
//! other endpoints of a topped-up trace are not counted from it, as it was chosen for
//! touching the watched one (chosen for `payment`, every such trace shows checkout calling
//! payment). Watching costs nothing while no drop develops.

use std::hash::BuildHasher;

use foldhash::HashSet;
use foldhash::fast::FixedState;

use aiops_telemetry_core::{EndpointKey, Span, SpanId, SpanKind, TimeWindow, TraceId};

use super::segment::Held;
use super::state::{State, segment_bit};

/// Most chosen traces waiting to settle, as a multiple of the census's per-cycle limit...
const PENDING_LIMITS: usize = 8;
/// ...and at least this many (before the first census, every trace is chosen).
const MIN_PENDING: usize = 1024;

/// Most traces of one watched endpoint a census reads on top of those chosen by id.
const MAX_WATCHED: usize = 64;

/// How far before the last census a topped-up endpoint's traces are looked for: a span that
/// arrives late is indexed after newer ones.
const LATE_NANOS: u64 = 30_000_000_000;

/// A fixed hash, so that the same traffic is counted alike in every run.
const HASHER: FixedState = FixedState::with_seed(0x6365_6e73_7573);

/// One span of a counted trace: its endpoint, when its request began, whether it failed, and
/// how many calls it made to each endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The calling endpoint.
    pub caller: EndpointKey,
    /// The span's kind.
    pub kind: SpanKind,
    /// When the trace's earliest buffered span started.
    pub began_unix_nanos: u64,
    /// Whether the span failed (an error status, or an HTTP status of 500 or more).
    pub failed: bool,
    /// The endpoints a call of it failed to: the child span failed, or a client child's own
    /// child did (instrumentation may leave the client span's status unset).
    pub failed_calls: Vec<EndpointKey>,
    /// The endpoints it called, each with how many times.
    pub calls: Vec<(EndpointKey, u32)>,
}

/// A buffered span as its parent's call, ordered by parent, then callee (a run of one
/// callee is one count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Child {
    parent: SpanId,
    endpoint: u32,
    span_id: SpanId,
    failed: bool,
    client: bool,
}

/// Where the census stands between cycles.
#[derive(Debug)]
pub(super) struct Census {
    /// Hashes of trace ids at most this are chosen.
    bound: u64,
    /// The per-cycle limit the last census was asked for.
    limit: usize,
    /// Traces first seen since the last census.
    arrived: usize,
    /// Chosen traces not counted yet: the id, the start of the first span that arrived, and
    /// the segment it arrived in.
    pending: Vec<(TraceId, u64, u64)>,
    /// By endpoint slot: whether a counted span of it made a call. The spans of an endpoint
    /// never seen calling are not recorded (it has no pattern to keep); a slot reused by
    /// another endpoint may keep a stale mark, which records a few spans too many.
    called: Vec<bool>,
    /// The chosen traces the last census took off the waiting list. With those waiting and
    /// those taken off now, they are the traces a top-up skips, as they are (or will be)
    /// counted in full: a trace counted at the last census may hold a span of a watched
    /// endpoint that started since.
    taken_last: Vec<TraceId>,
    /// Top-ups took traces that started before this instant.
    topped_until: u64,
}

impl Default for Census {
    /// Until a census says how many it wants, every trace is chosen.
    fn default() -> Self {
        Self {
            bound: u64::MAX,
            limit: 0,
            arrived: 0,
            pending: Vec::new(),
            called: Vec::new(),
            taken_last: Vec::new(),
            topped_until: 0,
        }
    }
}

impl Census {
    /// Notes the first span of a trace in segment `sequence`, and chooses the trace when its
    /// id's hash is within the bound. Costs a hash per trace and segment.
    pub(super) fn arrived(&mut self, span: &Span, sequence: u64) {
        self.arrived += 1;
        let room = (self.limit * PENDING_LIMITS).max(MIN_PENDING);
        if self.pending.len() < room && HASHER.hash_one(span.trace_id) <= self.bound {
            self.pending
                .push((span.trace_id, span.start_unix_nanos, sequence));
        }
    }
}

impl State {
    /// The calls of the chosen traces whose first span to arrive started before
    /// `settled_until`, and of the `watched` endpoints in their other traces that settled
    /// since the last census; then sets the share chosen from now on so that about `limit`
    /// traces a cycle are, at the traffic of the cycle that ended.
    pub(super) fn census(
        &mut self,
        settled_until: u64,
        limit: usize,
        watched: &[EndpointKey],
    ) -> Vec<CallRecord> {
        let mut census = std::mem::take(&mut self.census);
        let mut records = Vec::new();
        let mut children: Vec<Child> = Vec::new();
        let mut taken: Vec<TraceId> = Vec::new();
        let (pending, called) = (&mut census.pending, &mut census.called);
        pending.retain(|&(trace_id, start, sequence)| {
            if start >= settled_until {
                return true;
            }
            taken.push(trace_id);
            // A trace whose spans arrived in two segments was seen first in the older one.
            let present = self.presence[self.presence_slot(&trace_id)];
            let seen_before = self.segments.iter().any(|segment| {
                segment.sequence < sequence
                    && present & segment_bit(segment.sequence) != 0
                    && segment.traces.contains_key(&trace_id)
            });
            let held: Vec<&Held> = self.held(&trace_id).collect();
            if !seen_before && !held.is_empty() {
                self.count(&held, None, &mut children, called, &mut records);
            }
            false
        });
        if !watched.is_empty() {
            let chosen: HashSet<TraceId> = (census.pending.iter().map(|&(id, ..)| id))
                .chain(taken.iter().copied())
                .chain(census.taken_last.iter().copied())
                .collect();
            let slice = TimeWindow::new(census.topped_until, settled_until);
            for endpoint in watched {
                self.top_up(
                    endpoint,
                    slice,
                    &chosen,
                    &mut children,
                    &mut census.called,
                    &mut records,
                );
            }
        }
        census.taken_last = taken;
        census.topped_until = census.topped_until.max(settled_until);
        let share = (limit as f64 / census.arrived.max(1) as f64).min(1.0);
        census.bound = (share * u64::MAX as f64) as u64;
        census.limit = limit;
        census.arrived = 0;
        self.census = census;
        records
    }

    /// Appends the calls of the watched `endpoint`'s own spans in each of its traces that
    /// started in `slice` (the time since the last census, up to the settle time) and is not
    /// `chosen` by id: at most [`MAX_WATCHED`], chosen by a hash of their id when more.
    fn top_up(
        &self,
        endpoint: &EndpointKey,
        slice: TimeWindow,
        chosen: &HashSet<TraceId>,
        children: &mut Vec<Child>,
        called: &mut Vec<bool>,
        records: &mut Vec<CallRecord>,
    ) {
        let Some((slot, ring)) = self.ring_of(endpoint) else {
            return;
        };
        // Newest first; a late span is indexed after newer ones, so the walk goes a little
        // past the last census.
        let from = slice.start_unix_nanos.saturating_sub(LATE_NANOS);
        let mut fresh: Vec<TraceId> = Vec::new();
        for entry in ring.iter().rev() {
            if entry.start_unix_nanos < from || !self.is_live(entry) {
                break;
            }
            if slice.contains(entry.start_unix_nanos) && !chosen.contains(&entry.trace_id) {
                fresh.push(entry.trace_id);
            }
        }
        if fresh.len() > MAX_WATCHED {
            let bound = (MAX_WATCHED as f64 / fresh.len() as f64 * u64::MAX as f64) as u64;
            fresh.retain(|trace_id| HASHER.hash_one(trace_id) <= bound);
        }
        for trace_id in fresh {
            let held: Vec<&Held> = self.held(&trace_id).collect();
            self.count(&held, Some(slot), children, called, records);
        }
    }

    /// Appends the calls of each span of one trace (`held`) to `records`, or of each span
    /// of endpoint slot `only` when given.
    fn count(
        &self,
        held: &[&Held],
        only: Option<u32>,
        children: &mut Vec<Child>,
        called: &mut Vec<bool>,
        records: &mut Vec<CallRecord>,
    ) {
        let began = held
            .iter()
            .map(|span| span.start_unix_nanos)
            .min()
            .unwrap_or(0);
        children.clear();
        children.extend(held.iter().filter_map(|span| {
            Some(Child {
                parent: span.parent_span_id?,
                endpoint: span.endpoint,
                span_id: span.span_id,
                failed: span.status.failed(span.http_status),
                client: span.kind == SpanKind::Client,
            })
        }));
        children.sort_unstable();
        let children_of = |parent: SpanId| {
            let from = children.partition_point(|child| child.parent < parent);
            children[from..]
                .iter()
                .take_while(move |child| child.parent == parent)
        };
        for span in held {
            if only.is_some_and(|only| span.endpoint != only) {
                continue;
            }
            let slot = span.endpoint as usize;
            let mine = children_of(span.span_id);
            let calling = mine.clone().next().is_some();
            if !calling && !called.get(slot).copied().unwrap_or(false) {
                continue;
            }
            if called.len() <= slot {
                called.resize(slot + 1, false);
            }
            called[slot] |= calling;
            let mut calls: Vec<(EndpointKey, u32)> = Vec::new();
            let mut failed_calls: Vec<EndpointKey> = Vec::new();
            let mut last: Option<u32> = None;
            for child in mine {
                // Sorted by endpoint within a parent: a run of one endpoint is one callee.
                match calls.last_mut() {
                    Some((_, count)) if last == Some(child.endpoint) => *count += 1,
                    _ => calls.push((self.key(child.endpoint), 1)),
                }
                last = Some(child.endpoint);
                let failed = child.failed
                    || (child.client && children_of(child.span_id).any(|below| below.failed));
                let callee = &calls[calls.len() - 1].0;
                if failed && failed_calls.last() != Some(callee) {
                    failed_calls.push(callee.clone());
                }
            }
            records.push(CallRecord {
                caller: self.key(span.endpoint),
                kind: span.kind,
                began_unix_nanos: began,
                failed: span.status.failed(span.http_status),
                failed_calls,
                calls,
            });
        }
    }

    /// The endpoint in slot `endpoint`, sharing its text.
    fn key(&self, endpoint: u32) -> EndpointKey {
        let endpoint = self.endpoints[endpoint as usize]
            .as_ref()
            .expect("a buffered span's endpoint is kept");
        EndpointKey::of(endpoint.service.clone(), endpoint.operation.clone())
    }
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::{Collector, Span};

    use super::*;
    use crate::TraceBuffer;

    fn key(operation: &str) -> EndpointKey {
        EndpointKey::new("shop", operation)
    }

    /// A checkout at `start` calling payment `payments` times, children first (as SDKs export
    /// them: a span is sent when it ends).
    fn checkout(start: u64, payments: u64) -> Vec<Span> {
        let trace = TraceId::random();
        let root = Span::new(trace, SpanId::random(), "shop", "/checkout").with_timing(start, 50);
        let mut spans: Vec<Span> = (0..payments)
            .map(|call| {
                Span::new(trace, SpanId::random(), "shop", "/payment")
                    .with_parent(root.span_id)
                    .with_timing(start + 1 + call, 5)
            })
            .collect();
        spans.push(root);
        spans
    }

    #[test]
    fn each_settled_trace_is_counted_once_with_the_calls_of_each_span() {
        let buffer = TraceBuffer::new(1_000);
        let _ = buffer.record_batch(checkout(100, 2));
        let _ = buffer.record_batch(checkout(200, 1));
        let _ = buffer.record_batch(checkout(300, 0));

        let records = buffer.census(1_000, 48, &[]);

        let checkouts: Vec<&CallRecord> = records
            .iter()
            .filter(|r| r.caller == key("/checkout"))
            .collect();
        assert_eq!(checkouts.len(), 3, "{records:?}");
        assert_eq!(checkouts[0].calls, vec![(key("/payment"), 2)]);
        assert_eq!(checkouts[0].began_unix_nanos, 100);
        assert_eq!(checkouts[1].calls, vec![(key("/payment"), 1)]);
        // Checkout was seen calling: a request that made no call counts too.
        assert!(checkouts[2].calls.is_empty());
        // Payment never calls anything: it has no pattern to keep.
        assert!(records.iter().all(|r| r.caller != key("/payment")));
        assert!(buffer.census(2_000, 48, &[]).is_empty(), "counted twice");
    }

    #[test]
    fn a_trace_is_counted_once_it_settled_and_its_late_spans_arrived() {
        let buffer = TraceBuffer::new(1_000);
        let mut trace = checkout(500, 2);
        let late = trace.remove(1);
        let _ = buffer.record_batch(trace);

        assert!(buffer.census(400, 48, &[]).is_empty(), "not settled yet");
        let _ = buffer.record(late);
        let records = buffer.census(1_000, 48, &[]);
        let checkout = records
            .iter()
            .find(|r| r.caller == key("/checkout"))
            .expect("counted once settled");
        assert_eq!(checkout.calls, vec![(key("/payment"), 2)]);
    }

    #[test]
    fn a_trace_recorded_across_segments_is_counted_once() {
        // Sixteen segments of four spans: a trace's spans fall on both sides of a boundary.
        let buffer = TraceBuffer::new(64);
        for i in 0..10 {
            let _ = buffer.record_batch(checkout(i * 100, 2));
        }

        let records = buffer.census(10_000, 48, &[]);

        let checkouts = records.iter().filter(|r| r.caller == key("/checkout"));
        assert_eq!(checkouts.count(), 10, "{records:?}");
    }

    #[test]
    fn at_high_traffic_about_the_limit_is_counted_and_calls_keep_their_share() {
        let buffer = TraceBuffer::new(100_000);
        let (mut counted, mut calling) = (0, 0);
        // Checkouts call payment on every other request; 1,000 traces a cycle, 50 counted
        // once the first census has seen the traffic (until then every trace is chosen, as
        // many as wait to settle at most, so the next cycle chooses fewer).
        for cycle in 0..10u64 {
            for i in 0..1_000u64 {
                let _ = buffer.record_batch(checkout(cycle * 10_000 + i, i % 2));
            }
            let census = buffer.census(cycle * 10_000, 50, &[]);
            let checkouts: Vec<&CallRecord> = census
                .iter()
                .filter(|r| r.caller == key("/checkout"))
                .collect();
            if cycle >= 3 {
                assert!((25..=80).contains(&checkouts.len()), "{}", checkouts.len());
                counted += checkouts.len();
                calling += checkouts.iter().filter(|r| !r.calls.is_empty()).count();
            }
        }
        let share = calling as f64 / counted as f64;
        assert!((0.4..=0.6).contains(&share), "{share}");
    }

    #[test]
    fn a_failed_span_is_marked() {
        let buffer = TraceBuffer::new(1_000);
        let mut trace = checkout(100, 1);
        trace[1] = trace[1].clone().with_http_status(503);
        let _ = buffer.record_batch(trace);

        let records = buffer.census(1_000, 48, &[]);
        let checkout = records
            .iter()
            .find(|r| r.caller == key("/checkout"))
            .expect("counted");
        assert!(checkout.failed);
    }

    #[test]
    fn a_call_that_failed_below_a_client_span_without_status_is_marked() {
        let buffer = TraceBuffer::new(1_000);
        let trace = TraceId::random();
        let root = Span::new(trace, SpanId::random(), "shop", "/checkout").with_timing(100, 50);
        let client = Span::new(trace, SpanId::random(), "shop", "GET -> payments")
            .with_kind(SpanKind::Client)
            .with_parent(root.span_id)
            .with_timing(101, 20);
        let payment = Span::new(trace, SpanId::random(), "payments", "/payment")
            .with_parent(client.span_id)
            .with_timing(102, 10)
            .with_http_status(503);
        let audit = Span::new(trace, SpanId::random(), "shop", "/audit")
            .with_parent(root.span_id)
            .with_timing(125, 5);
        let _ = buffer.record_batch(vec![payment, client, audit, root]);

        let records = buffer.census(1_000, 48, &[]);
        let record = |caller: &str| {
            records
                .iter()
                .find(|r| r.caller == key(caller))
                .expect("counted")
        };
        let checkout = record("/checkout");
        assert!(!checkout.failed);
        assert_eq!(checkout.failed_calls, vec![key("GET -> payments")]);
        assert_eq!(
            record("GET -> payments").failed_calls,
            vec![EndpointKey::new("payments", "/payment")]
        );
    }

    /// An account request at `start` calling refund, which calls payment.
    fn refund(start: u64) -> Vec<Span> {
        let trace = TraceId::random();
        let account = Span::new(trace, SpanId::random(), "shop", "/account").with_timing(start, 30);
        let refund = Span::new(trace, SpanId::random(), "shop", "/refund")
            .with_parent(account.span_id)
            .with_timing(start + 1, 20);
        let payment = Span::new(trace, SpanId::random(), "shop", "/payment")
            .with_parent(refund.span_id)
            .with_timing(start + 2, 5);
        vec![payment, refund, account]
    }

    #[test]
    fn a_watched_endpoint_is_counted_in_full_and_only_it() {
        let buffer = TraceBuffer::new(100_000);
        // A thousand checkouts a cycle: the census chooses about ten of them.
        for i in 0..1_000 {
            let _ = buffer.record_batch(checkout(i, 1));
        }
        let _ = buffer.census(10_000, 10, &[]);
        for i in 0..1_000 {
            let _ = buffer.record_batch(checkout(10_000 + i, 1));
        }
        for i in 0..20 {
            let _ = buffer.record_batch(refund(10_000 + 50 * i));
        }

        let watched = [key("/refund")];
        let records = buffer.census(20_000, 10, &watched);

        let of = |records: &[CallRecord], caller: &str| {
            records.iter().filter(|r| r.caller == key(caller)).count()
        };
        // Every refund once, whether its trace was chosen by id or not.
        assert_eq!(of(&records, "/refund"), 20, "{records:?}");
        assert!(
            records
                .iter()
                .filter(|r| r.caller == key("/refund"))
                .all(|r| r.calls == vec![(key("/payment"), 1)])
        );
        // Account is counted only in the traces chosen by id: a trace read for refund shows
        // account calling refund every time.
        assert!(of(&records, "/account") < 5, "{records:?}");
        assert!((2..=40).contains(&of(&records, "/checkout")), "{records:?}");
        // Read once: the next census finds no new refund.
        assert_eq!(of(&buffer.census(30_000, 10, &watched), "/refund"), 0);
    }
}
