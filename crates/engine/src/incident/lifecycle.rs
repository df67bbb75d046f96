//! [`Damping`]: when a fault that comes and goes stays one incident. A resolved incident whose
//! cause returns within the reopen window is reopened rather than replaced, and an incident
//! resolves itself only once its cause has been gone for the resolve hold, so a flapping fault
//! is one incident that opens once and resolves once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Incident, IncidentStatus};
use aiops_rca::RootCause;

/// How an [`IncidentBook`](super::IncidentBook) damps flapping faults. Both are off (zero)
/// unless set, which keeps each return of a fault a new incident and resolves an incident
/// after its healthy cycles alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damping {
    /// How long after an incident resolved a return of its cause reopens it, in nanoseconds.
    pub reopen_window_nanos: u64,
    /// How long an incident's cause must have been gone (no update, no problem on its
    /// endpoints) before it resolves itself, in nanoseconds; on top of the healthy cycles.
    pub resolve_hold_nanos: u64,
}

/// The state damping keeps: when each active incident was last seen unwell.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LastUnwell(BTreeMap<String, u64>);

impl LastUnwell {
    /// Incident `id` showed a problem at `now`.
    pub(super) fn note(&mut self, id: &str, now: u64) {
        self.0.insert(id.to_owned(), now);
    }

    /// Incident `id` is resolved: nothing more to hold.
    pub(super) fn forget(&mut self, id: &str) {
        self.0.remove(id);
    }

    /// Whether `incident`'s cause has been gone for the hold at `now`: since its last update
    /// and since it was last seen unwell.
    pub(super) fn held(&self, damping: &Damping, incident: &Incident, now: u64) -> bool {
        let last_bad = self
            .0
            .get(&incident.id)
            .copied()
            .unwrap_or(0)
            .max(incident.last_updated_unix_nanos);
        now.saturating_sub(last_bad) >= damping.resolve_hold_nanos
    }
}

impl Damping {
    /// The index of the resolved incident in `incidents` that a draft blaming `cause` at `now`
    /// reopens: the most recently resolved one of the same cause, resolved within the window.
    pub(super) fn reopens(
        &self,
        incidents: &[Incident],
        cause: &RootCause,
        now: u64,
    ) -> Option<usize> {
        if self.reopen_window_nanos == 0 {
            return None;
        }
        let since = now.saturating_sub(self.reopen_window_nanos);
        incidents
            .iter()
            .enumerate()
            .filter(|(_, incident)| {
                // An incident folded into another lives on in that one.
                incident.status == IncidentStatus::Resolved
                    && incident.merged_into.is_none()
                    && incident.root_cause.same_cause(cause)
                    && incident
                        .resolved_at_unix_nanos
                        .is_some_and(|at| at >= since)
            })
            .max_by_key(|(_, incident)| incident.resolved_at_unix_nanos)
            .map(|(index, _)| index)
    }
}

/// Makes `incident` active again at `now`.
pub(super) fn reopen(incident: &mut Incident, now: u64) {
    incident.status = IncidentStatus::Active;
    incident.resolved_at_unix_nanos = None;
    incident.last_updated_unix_nanos = incident.last_updated_unix_nanos.max(now);
}
