//! [`Watermarks`]: the one store of resolution watermarks, per endpoint and per cause.

use aiops_analyzer::EndpointWatermarks;
use aiops_rca::{FaultFamily, RootCause};
use aiops_telemetry_core::EndpointKey;
use serde::{Deserialize, Serialize};

use crate::incident::Incident;

/// When an incident is resolved at `t`, evidence that started before `t` must never bring it
/// back. Two readers need that fact in two shapes, and both read it from here:
///
/// - detection and trace sampling read an endpoint's traffic from its mark on
///   ([`endpoints`](Self::endpoints), lent to the analyzer every cycle); these marks are
///   forgotten once no window read starts before them;
/// - the incident book drops a draft's evidence from before its cause's mark
///   ([`of_cause`](Self::of_cause)); a cause (service, endpoint, fault family) keeps its mark
///   for good, one number per cause ever resolved.
///
/// Resolving an incident ([`resolve`](Self::resolve)) sets both: the cause's mark, and the mark
/// of the root-cause endpoint and of every affected endpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Watermarks {
    endpoints: EndpointWatermarks,
    causes: Vec<CauseWatermark>,
}

/// The resolution watermark of one cause (a root-cause endpoint and fault family), as
/// persisted in an [`EngineSnapshot`](crate::EngineSnapshot).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CauseWatermark {
    /// The root cause's service.
    pub service: String,
    /// The root cause's endpoint (operation).
    pub endpoint: String,
    /// The fault family.
    pub family: FaultFamily,
    /// The latest resolution, in Unix nanoseconds.
    pub not_before_unix_nanos: u64,
}

impl CauseWatermark {
    fn is_of(&self, root: &RootCause, family: FaultFamily) -> bool {
        self.family == family && self.service == root.service && self.endpoint == root.endpoint
    }
}

impl Watermarks {
    /// Records that `incident` was resolved at `now_unix_nanos`.
    pub fn resolve(&mut self, incident: &Incident, now_unix_nanos: u64) {
        let root = &incident.root_cause;
        let family = FaultFamily::of(root.kind);
        match self.causes.iter_mut().find(|w| w.is_of(root, family)) {
            Some(mark) => {
                mark.not_before_unix_nanos = mark.not_before_unix_nanos.max(now_unix_nanos);
            }
            None => self.causes.push(CauseWatermark {
                service: root.service.clone(),
                endpoint: root.endpoint.clone(),
                family,
                not_before_unix_nanos: now_unix_nanos,
            }),
        }
        self.endpoints.raise(&root.endpoint_key(), now_unix_nanos);
        for endpoint in &incident.affected_endpoints {
            self.endpoints.raise(endpoint, now_unix_nanos);
        }
    }

    /// Evidence on `endpoint` that started before `not_before_unix_nanos` no longer counts.
    pub fn raise_endpoint(&mut self, endpoint: &EndpointKey, not_before_unix_nanos: u64) {
        self.endpoints.raise(endpoint, not_before_unix_nanos);
    }

    /// The time before which evidence no longer counts for `root_cause`'s cause: its latest
    /// resolution, if it was ever resolved.
    pub fn of_cause(&self, root_cause: &RootCause) -> Option<u64> {
        let family = FaultFamily::of(root_cause.kind);
        self.causes
            .iter()
            .find(|w| w.is_of(root_cause, family))
            .map(|w| w.not_before_unix_nanos)
    }

    /// The per-endpoint marks, as detection and sampling read them.
    pub fn endpoints(&self) -> &EndpointWatermarks {
        &self.endpoints
    }

    /// Forgets the endpoint marks at or before `unix_nanos`, the start of the oldest window
    /// still read: they clip nothing any more. Cause marks are kept.
    pub fn forget_endpoints_until(&mut self, unix_nanos: u64) {
        self.endpoints.forget_until(unix_nanos);
    }

    /// The cause marks, for persistence.
    pub fn causes(&self) -> &[CauseWatermark] {
        &self.causes
    }

    /// Adds persisted cause marks (a later mark of the same cause wins).
    pub fn restore_causes(&mut self, causes: impl IntoIterator<Item = CauseWatermark>) {
        for mark in causes {
            match self.causes.iter_mut().find(|w| {
                w.family == mark.family && w.service == mark.service && w.endpoint == mark.endpoint
            }) {
                Some(known) => {
                    known.not_before_unix_nanos =
                        known.not_before_unix_nanos.max(mark.not_before_unix_nanos);
                }
                None => self.causes.push(mark),
            }
        }
    }
}
