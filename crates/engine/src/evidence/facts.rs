//! [`SpanFacts`]: what the engine remembers of spans beyond timing: their attributes (recent
//! requests per endpoint), the versions each service runs, and the exceptions each endpoint
//! raised.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use foldhash::HashMap;

use aiops_telemetry_core::{
    Attributes, Change, ChangeKind, ChangeSource, Collector, CollectorError, EndpointKey,
    RecordOutcome, Span, SpanText, TimeWindow,
};

use super::intake::EXCEPTION_TYPE;
use super::types::{ObservedVersion, ServiceVersions};

/// The attribute that names a service's version.
pub(crate) const SERVICE_VERSION: &str = "service.version";

/// Versions remembered per service.
const VERSIONS: usize = 16;
/// Exception types remembered per endpoint.
const EXCEPTIONS: usize = 32;
/// Observed changes waiting for the cycle at most.
const OBSERVED: usize = 1_000;

/// One recent request of an endpoint, with its attributes.
#[derive(Clone, Debug)]
pub(crate) struct Fact {
    pub start_unix_nanos: u64,
    pub duration_nanos: u64,
    pub error: bool,
    pub http_status: Option<u16>,
    pub attributes: Attributes,
}

impl Fact {
    pub(crate) fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A version of a service and when it served.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VersionSeen {
    pub version: String,
    pub first_seen: u64,
    pub last_seen: u64,
}

/// An exception type an endpoint raised.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExceptionSeen {
    pub exception_type: String,
    pub first_seen: u64,
    pub count: u64,
}

#[derive(Debug, Default)]
pub(crate) struct EndpointFacts {
    pub first_seen: u64,
    pub recent: VecDeque<Fact>,
    pub exceptions: Vec<ExceptionSeen>,
}

#[derive(Debug, Default)]
struct State {
    endpoints: HashMap<EndpointKey, EndpointFacts>,
    versions: HashMap<String, Vec<VersionSeen>>,
    observed: Vec<Change>,
}

/// A [`Collector`] beside the live windows and the trace buffer: per endpoint, the last
/// `recent_per_endpoint` requests with their attributes (for attribute insight and version
/// comparison) and the exception types raised; per service, the versions seen, and a
/// [`Change`] (source `observed`) whenever a service that ran one version starts running
/// another. At most `max_endpoints` endpoints and as many services; others are not
/// remembered.
#[derive(Debug)]
pub(crate) struct SpanFacts {
    recent_per_endpoint: usize,
    max_endpoints: usize,
    state: Mutex<State>,
}

impl SpanFacts {
    pub(crate) fn new(recent_per_endpoint: usize, max_endpoints: usize) -> Self {
        Self {
            recent_per_endpoint: recent_per_endpoint.max(1),
            max_endpoints: max_endpoints.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The deployments observed since the last call.
    pub(crate) fn take_observed(&self) -> Vec<Change> {
        std::mem::take(&mut self.lock().observed)
    }

    /// The versions `service` ran, oldest first.
    pub(crate) fn versions(&self, service: &str) -> Vec<VersionSeen> {
        let mut versions = self
            .lock()
            .versions
            .get(service)
            .cloned()
            .unwrap_or_default();
        versions.sort_by_key(|v| v.first_seen);
        versions
    }

    /// Every service's versions, for a snapshot: services by name, versions oldest first.
    pub(crate) fn saved_versions(&self) -> Vec<ServiceVersions> {
        let state = self.lock();
        let mut saved: Vec<ServiceVersions> = state
            .versions
            .iter()
            .map(|(service, seen)| {
                let mut versions: Vec<ObservedVersion> = seen
                    .iter()
                    .map(|v| ObservedVersion {
                        version: v.version.clone(),
                        first_seen_unix_nanos: v.first_seen,
                        last_seen_unix_nanos: v.last_seen,
                    })
                    .collect();
                versions.sort_by_key(|v| v.first_seen_unix_nanos);
                ServiceVersions {
                    service: service.clone(),
                    versions,
                }
            })
            .collect();
        saved.sort_by(|a, b| a.service.cmp(&b.service));
        saved
    }

    /// Remembers the versions of a snapshot (within the bounds: the first `max_endpoints`
    /// services, the [`VERSIONS`] most recently seen of each), so that a version seen after a
    /// restart is compared with those seen before it.
    pub(crate) fn restore_versions(&self, saved: Vec<ServiceVersions>) {
        let mut state = self.lock();
        for service in saved {
            if state.versions.len() >= self.max_endpoints
                && !state.versions.contains_key(&service.service)
            {
                break;
            }
            let mut versions: Vec<VersionSeen> = service
                .versions
                .into_iter()
                .map(|v| VersionSeen {
                    version: v.version,
                    first_seen: v.first_seen_unix_nanos,
                    last_seen: v.last_seen_unix_nanos.max(v.first_seen_unix_nanos),
                })
                .collect();
            versions.sort_by_key(|v| std::cmp::Reverse(v.last_seen));
            versions.truncate(VERSIONS);
            state.versions.insert(service.service, versions);
        }
    }

    /// The services that ran more than one version: the only ones whose versions can be
    /// compared.
    pub(crate) fn services_with_several_versions(&self) -> Vec<String> {
        self.lock()
            .versions
            .iter()
            .filter(|(_, seen)| seen.len() > 1)
            .map(|(service, _)| service.clone())
            .collect()
    }

    /// Calls `visit` with the recent requests of every endpoint `wanted` accepts that started
    /// in `window`.
    pub(crate) fn visit_recent(
        &self,
        wanted: impl Fn(&EndpointKey) -> bool,
        window: TimeWindow,
        mut visit: impl FnMut(&EndpointKey, &Fact),
    ) {
        let state = self.lock();
        for (endpoint, facts) in &state.endpoints {
            if !wanted(endpoint) {
                continue;
            }
            for fact in facts
                .recent
                .iter()
                .filter(|f| window.contains(f.start_unix_nanos))
            {
                visit(endpoint, fact);
            }
        }
    }

    /// The exception types of `endpoint` first raised at or after `since`, with when the
    /// endpoint was first seen; None for an endpoint never seen.
    pub(crate) fn exceptions_since(
        &self,
        endpoint: &EndpointKey,
        since: impl Fn(u64) -> u64,
    ) -> Vec<ExceptionSeen> {
        let state = self.lock();
        let Some(facts) = state.endpoints.get(endpoint) else {
            return Vec::new();
        };
        let after = since(facts.first_seen);
        facts
            .exceptions
            .iter()
            .filter(|e| e.first_seen >= after)
            .cloned()
            .collect()
    }

    /// Notes that `endpoint` raised `exception_type` at `at` (from an ERROR log of its span).
    pub(crate) fn note_exception(&self, endpoint: &EndpointKey, exception_type: &str, at: u64) {
        let mut state = self.lock();
        if let Some(facts) = state.endpoints.get_mut(endpoint) {
            note(&mut facts.exceptions, exception_type, at);
        }
    }

    fn record_spans(&self, spans: &[Span]) {
        let mut state = self.lock();
        let state = &mut *state;
        for span in spans {
            if let Some(version) = span.attribute(SERVICE_VERSION) {
                observe_version(state, span, version, self.max_endpoints);
            }
            let endpoint = span.endpoint();
            let full = state.endpoints.len() >= self.max_endpoints;
            if full && !state.endpoints.contains_key(&endpoint) {
                continue;
            }
            let facts = state
                .endpoints
                .entry(endpoint)
                .or_insert_with(|| EndpointFacts {
                    first_seen: span.start_unix_nanos,
                    ..EndpointFacts::default()
                });
            facts.first_seen = facts.first_seen.min(span.start_unix_nanos);
            if let Some(kind) = span.attribute(EXCEPTION_TYPE) {
                note(&mut facts.exceptions, kind, span.start_unix_nanos);
            }
            if facts.recent.len() >= self.recent_per_endpoint {
                facts.recent.pop_front();
            }
            facts.recent.push_back(Fact {
                start_unix_nanos: span.start_unix_nanos,
                duration_nanos: span.duration_nanos,
                error: span.is_error(),
                http_status: span.http_status,
                attributes: span.attributes.clone(),
            });
        }
    }
}

fn note(exceptions: &mut Vec<ExceptionSeen>, exception_type: &str, at: u64) {
    let known = exceptions
        .iter()
        .position(|e| e.exception_type == exception_type);
    match known {
        Some(at_index) => {
            let seen = &mut exceptions[at_index];
            seen.count += 1;
            seen.first_seen = seen.first_seen.min(at);
        }
        None if exceptions.len() < EXCEPTIONS => exceptions.push(ExceptionSeen {
            exception_type: exception_type.to_owned(),
            first_seen: at,
            count: 1,
        }),
        None => {}
    }
}

/// Notes `version` of `span`'s service; a service that ran other versions and now runs a new
/// one was deployed.
fn observe_version(state: &mut State, span: &Span, version: &str, max_services: usize) {
    let at = span.start_unix_nanos;
    if !state.versions.contains_key(span.service.as_str()) {
        if state.versions.len() >= max_services {
            return;
        }
        state.versions.insert(span.service.to_string(), Vec::new());
    }
    let Some(versions) = state.versions.get_mut(span.service.as_str()) else {
        return;
    };
    if let Some(seen) = versions.iter_mut().find(|v| v.version == version) {
        seen.first_seen = seen.first_seen.min(at);
        seen.last_seen = seen.last_seen.max(at);
        return;
    }
    let previous = versions
        .iter()
        .max_by_key(|v| v.last_seen)
        .map(|v| v.version.clone());
    if versions.len() >= VERSIONS {
        // The version that served longest ago makes room.
        if let Some(oldest) = versions
            .iter()
            .enumerate()
            .min_by_key(|(_, v)| v.last_seen)
            .map(|(i, _)| i)
        {
            versions.swap_remove(oldest);
        }
    }
    versions.push(VersionSeen {
        version: version.to_owned(),
        first_seen: at,
        last_seen: at,
    });
    if let Some(previous) = previous
        && state.observed.len() < OBSERVED
    {
        state.observed.push(Change {
            service: span.service.clone(),
            kind: ChangeKind::Deployment,
            time_unix_nanos: at,
            version: Some(SpanText::from(version.to_owned())),
            previous_version: Some(SpanText::from(previous)),
            description: None,
            source: ChangeSource::Observed,
        });
    }
}

impl Collector for SpanFacts {
    fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
        self.record_borrowed(&spans)
    }

    fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
        self.record_spans(spans);
        RecordOutcome::accepted(spans.len())
    }

    fn flush(&self) -> Result<(), CollectorError> {
        Ok(())
    }
}
