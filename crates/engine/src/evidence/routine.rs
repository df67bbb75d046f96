//! Spans failed by nothing but an ERROR log the service routinely writes.
//!
//! An ERROR record fails its span (ADR 0011), whatever the record says. Many services log at
//! ERROR in healthy requests ("cache miss, falling back to the database"); their spans then
//! count as failed in their baseline too, which detection takes in its stride, but error
//! provenance would walk into them: below a defect that logs news, a callee that routinely
//! logs ERROR is the deepest failure and would be named. So root causes are explained as if
//! spans failed only by routine templates had not failed: the deepest service whose *new* (or
//! risen) error template appears in the anomalous traces is the origin.

use std::collections::VecDeque;

use foldhash::HashMap;

use aiops_analyzer::logs::{LogPatterns, TemplateRef};
use aiops_telemetry_core::{Span, SpanId, SpanStatus, TraceId};

/// A span's identity.
type SpanKey = (TraceId, SpanId);

/// Templates remembered per span at most.
const TEMPLATES_PER_SPAN: usize = 4;

#[derive(Debug, Default)]
struct Failure {
    /// The templates of the ERROR records logged in the span.
    templates: Vec<TemplateRef>,
    /// True when the records were all that failed it (no error status of its own, no
    /// exception event).
    log_only: bool,
}

/// The ERROR records' templates of recent spans, and which spans they alone failed; at most
/// `max` spans, the oldest forgotten first.
#[derive(Debug)]
pub(crate) struct LogFailures {
    max: usize,
    spans: HashMap<SpanKey, Failure>,
    order: VecDeque<SpanKey>,
}

impl LogFailures {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            spans: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    fn entry(&mut self, key: SpanKey) -> &mut Failure {
        if !self.spans.contains_key(&key) {
            while self.order.len() >= self.max {
                if let Some(old) = self.order.pop_front() {
                    self.spans.remove(&old);
                }
            }
            self.order.push_back(key);
        }
        self.spans.entry(key).or_default()
    }

    /// An ERROR record of `template` was logged in span `key`.
    pub(crate) fn logged(&mut self, key: SpanKey, template: TemplateRef) {
        let failure = self.entry(key);
        if !failure.templates.contains(&template) && failure.templates.len() < TEMPLATES_PER_SPAN {
            failure.templates.push(template);
        }
    }

    /// Span `key` was marked failed by its ERROR records alone.
    pub(crate) fn failed_by_logs(&mut self, key: SpanKey) {
        self.entry(key).log_only = true;
    }

    /// Clears the failure of every span of `traces` that only routine ERROR records failed
    /// (each of its templates [routine](LogPatterns::is_routine) now).
    pub(crate) fn clear_routine(&self, patterns: &LogPatterns, traces: &mut [Vec<Span>]) {
        if self.spans.is_empty() {
            return;
        }
        for span in traces.iter_mut().flatten() {
            if span.status != SpanStatus::Error || span.http_status.is_some_and(|c| c >= 500) {
                continue;
            }
            let Some(failure) = self.spans.get(&(span.trace_id, span.span_id)) else {
                continue;
            };
            if failure.log_only
                && !failure.templates.is_empty()
                && failure.templates.iter().all(|t| patterns.is_routine(t))
            {
                span.status = SpanStatus::Unset;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_spans_are_forgotten_beyond_the_cap() {
        let mut failures = LogFailures::new(2);
        let keys: Vec<SpanKey> = (0..3)
            .map(|_| (TraceId::random(), SpanId::random()))
            .collect();
        for key in &keys {
            failures.failed_by_logs(*key);
        }
        failures.failed_by_logs(keys[2]);
        assert_eq!(failures.spans.len(), 2);
        assert_eq!(failures.order.len(), 2);
        assert!(!failures.spans.contains_key(&keys[0]));
        assert!(failures.spans[&keys[1]].log_only && failures.spans[&keys[2]].log_only);
    }
}
