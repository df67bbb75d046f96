//! [`IncidentBook`]: the rules that turn drafts into incidents.

use std::collections::{BTreeMap, HashSet};

use aiops_analyzer::{AnomalyKind, Assessment, HealthStatus};
use aiops_telemetry_core::EndpointKey;
use serde::{Deserialize, Serialize};

use aiops_rca::IncidentDraft;

use super::grouping::{
    behind_blamed_call, blames, one_problem, sharper, shown_as_plainly, symptom_call,
};
use super::lifecycle::{Damping, LastUnwell, reopen};
use super::merge::{dedup, merge, sort_by_severity};
use super::{Incident, IncidentChange, IncidentError, IncidentStatus};
use crate::watermarks::{CauseWatermark, Watermarks};

/// How many consecutive healthy cycles resolve an incident, unless told otherwise.
pub const DEFAULT_AUTO_RESOLVE_CYCLES: u32 = 3;

/// How long after opening an incident a deeper root cause may still replace its own, unless
/// told otherwise: 90 s. SDKs hold spans a few seconds before exporting them, so the deepest
/// spans of a trace arrive last; and evidence that needs a sustained window (a shift of own
/// time, dropped calls) takes about a minute to be sure.
pub const DEFAULT_REVISE_WINDOW_NANOS: u64 = 90_000_000_000;

fn default_revise_window_nanos() -> u64 {
    DEFAULT_REVISE_WINDOW_NANOS
}

/// The least confidence (share of the sampled anomalous traces its root cause explains) with
/// which a draft opens an incident (one in twenty): below it, the traces through the anomalous
/// endpoints show almost nothing wrong at the root, and the anomaly is a few heavy-tail
/// requests.
pub const MIN_CONFIDENCE_TO_OPEN: f64 = 0.05;

/// How many resolved incidents an [`IncidentBook`] keeps in memory, unless told otherwise.
pub const DEFAULT_MAX_RESOLVED_INCIDENTS: usize = 1000;

/// The incidents of one engine and the rules that keep them one per problem.
///
/// - **Deduplication.** While an incident is active, a draft whose root cause is the
///   [same cause](RootCause::same_cause) (same service and endpoint, same fault family), or
///   another endpoint of the same service and family hurting the same callers, or only the
///   incident's own symptoms, or a deeper cause found soon after opening, updates it instead
///   of opening another (see `absorb` for the rules): affected endpoints and anomalies are
///   merged, severity only rises, `last_updated` and `alert_count` move on.
/// - **Resolution watermark.** Resolving an incident at time `t` records `t` for its cause in
///   the [`Watermarks`] lent to [`apply`](Self::apply) and [`resolve`](Self::resolve).
///   Afterwards, a draft for that cause only counts the evidence that started at or after `t`:
///   anomalies whose window starts before `t` are dropped from it, and a draft whose first
///   failing span started before `t`, or with no anomaly left, is ignored. Fresh evidence opens a
///   new incident (a new id); a resolved incident is never re-opened.
/// - **Auto-resolve.** An active incident not updated in a cycle, none of whose affected
///   endpoints has an anomaly or a non-healthy status in that cycle's assessment, counts one
///   healthy cycle (an endpoint with no traffic counts as healthy, so an incident does not stay
///   open forever once traffic stops). After `auto_resolve_cycles` consecutive healthy cycles it
///   is resolved; any anomaly on its endpoints restarts the count. Zero disables auto-resolve.
///
/// Ids are `INC-<unix seconds>-<sequence>` with a sequence that increases per book and
/// survives serialization, so ids are unique and increasing. The book serializes whole (state and
/// knobs) so that a server can persist it every cycle and reload it at start.
///
/// Memory is bounded: active incidents are at most one per cause, each keeping the latest
/// anomaly per endpoint and kind; of resolved incidents only the `max_resolved` most recent are
/// kept (older ones are expected to live in the caller's store).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentBook {
    auto_resolve_cycles: u32,
    max_resolved: usize,
    next_sequence: u64,
    /// Active and retained resolved incidents, in opening order.
    incidents: Vec<Incident>,
    /// Consecutive healthy cycles of each active incident, by id.
    healthy_cycles: BTreeMap<String, u32>,
    /// How long after opening an incident's root cause may still be revised by a deeper one.
    #[serde(default = "default_revise_window_nanos")]
    revise_window_nanos: u64,
    /// Cause watermarks of books saved when the book kept them itself; read once, handed to
    /// the engine's [`Watermarks`] on restore, never written again.
    #[serde(default, rename = "watermarks", skip_serializing)]
    legacy_watermarks: Vec<CauseWatermark>,
    /// Reopening and the resolve hold (`lifecycle.rs`).
    #[serde(default)]
    damping: Damping,
    /// When each active incident was last seen unwell, for the resolve hold.
    #[serde(default)]
    last_unwell: LastUnwell,
}

impl Default for IncidentBook {
    fn default() -> Self {
        Self::new(DEFAULT_AUTO_RESOLVE_CYCLES)
    }
}

impl IncidentBook {
    /// An empty book that auto-resolves after `auto_resolve_cycles` healthy cycles (zero:
    /// never) and keeps [`DEFAULT_MAX_RESOLVED_INCIDENTS`] resolved incidents.
    pub fn new(auto_resolve_cycles: u32) -> Self {
        Self {
            auto_resolve_cycles,
            max_resolved: DEFAULT_MAX_RESOLVED_INCIDENTS,
            next_sequence: 1,
            incidents: Vec::new(),
            healthy_cycles: BTreeMap::new(),
            revise_window_nanos: DEFAULT_REVISE_WINDOW_NANOS,
            legacy_watermarks: Vec::new(),
            damping: Damping::default(),
            last_unwell: LastUnwell::default(),
        }
    }

    /// Damps flapping faults as `damping` says: reopening, and the resolve hold.
    pub fn set_damping(&mut self, damping: Damping) {
        self.damping = damping;
    }

    /// Keeps at most `max_resolved` resolved incidents in memory, dropping the oldest.
    pub fn with_max_resolved(mut self, max_resolved: usize) -> Self {
        self.max_resolved = max_resolved;
        self.prune_resolved();
        self
    }

    /// Lets a deeper root cause replace an incident's own for `revise_window_nanos` after it
    /// opened (zero: never).
    pub fn with_revise_window(mut self, revise_window_nanos: u64) -> Self {
        self.revise_window_nanos = revise_window_nanos;
        self
    }

    /// Changes the number of healthy cycles that resolve an incident (zero: never), e.g. after
    /// reloading a book saved under another configuration.
    pub fn set_auto_resolve_cycles(&mut self, auto_resolve_cycles: u32) {
        self.auto_resolve_cycles = auto_resolve_cycles;
    }

    /// Healthy cycles that resolve an incident; zero means never.
    pub fn auto_resolve_cycles(&self) -> u32 {
        self.auto_resolve_cycles
    }

    /// Folds one cycle's drafts into the book and auto-resolves what stayed healthy.
    ///
    /// `assessment` is the cycle's detection result (its anomalies and endpoint health decide
    /// which incidents were healthy); `now_unix_nanos` stamps every change; evidence from
    /// before a cause's mark in `watermarks` is dropped, and every incident resolved marks
    /// `watermarks`. Returns one change per incident touched, in the order they happened.
    pub fn apply(
        &mut self,
        drafts: Vec<IncidentDraft>,
        assessment: &Assessment,
        now_unix_nanos: u64,
        watermarks: &mut Watermarks,
    ) -> Vec<IncidentChange> {
        let mut changes = Vec::new();
        let mut touched = HashSet::new();
        for draft in drafts {
            let Some(draft) = fresh_evidence(draft, watermarks) else {
                continue;
            };
            let Some((change, folded)) = self.absorb(draft, now_unix_nanos) else {
                continue;
            };
            let first_touch = touched.insert(change.id().to_owned());
            if first_touch {
                changes.push(change);
            }
            if let Some(id) = folded {
                touched.insert(id.clone());
                changes.push(IncidentChange::Resolved { id });
            }
        }
        changes.extend(self.auto_resolve(&touched, assessment, now_unix_nanos, watermarks));
        self.prune_resolved();
        changes
    }

    /// Resolves incident `id` at `now_unix_nanos` and records its resolution in `watermarks`.
    pub fn resolve(
        &mut self,
        id: &str,
        now_unix_nanos: u64,
        watermarks: &mut Watermarks,
    ) -> Result<&Incident, IncidentError> {
        let index = self
            .incidents
            .iter()
            .position(|incident| incident.id == id)
            .ok_or_else(|| IncidentError::NotFound { id: id.to_owned() })?;
        if let Some(resolved_at) = self.incidents[index].resolved_at_unix_nanos {
            return Err(IncidentError::AlreadyResolved {
                id: id.to_owned(),
                resolved_at_unix_nanos: resolved_at,
            });
        }
        self.close(index, now_unix_nanos, watermarks);
        Ok(&self.incidents[index])
    }

    /// The incident with id `id`, if it is kept.
    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.incidents.iter().find(|incident| incident.id == id)
    }

    /// Active incidents, oldest first.
    pub fn active(&self) -> Vec<&Incident> {
        self.incidents.iter().filter(|i| i.is_active()).collect()
    }

    /// Active incidents, oldest first, for the evidence written onto them.
    pub(crate) fn active_mut(&mut self) -> impl Iterator<Item = &mut Incident> {
        self.incidents.iter_mut().filter(|i| i.is_active())
    }

    /// Every incident kept (active and recently resolved), oldest first.
    pub fn all(&self) -> Vec<&Incident> {
        self.incidents.iter().collect()
    }

    /// Cause watermarks read from a book saved by an older version, once.
    pub(crate) fn take_legacy_watermarks(&mut self) -> Vec<CauseWatermark> {
        std::mem::take(&mut self.legacy_watermarks)
    }

    /// Folds `draft` into the active incident it belongs to, or opens one. A draft belongs to
    /// an active incident (tried in this order) when:
    ///
    /// 1. it has the [same cause](aiops_rca::RootCause::same_cause);
    /// 2. everything it blames and everything it saw is already listed as affected by the
    ///    incident, and it blames one of the incident's symptoms rather than its root cause
    ///    (a different fault there is a different problem): the leftovers of the incident's
    ///    own symptoms (callers still slow while the fault clears) are not a new fault; nor is
    ///    a draft that saw only listed endpoints and blames another less than
    ///    [`MIN_CONFIDENCE_TO_REVISE`](super::MIN_CONFIDENCE_TO_REVISE) times as confidently
    ///    (the traces of a clearing fault's last window blame some endpoint by chance);
    /// 3. it names a deeper cause for an incident opened within the revision window whose
    ///    root cause it lists as affected (or, when that root cause is only a call into or out
    ///    of a service, one of the service's own operations or calls out): spans of the
    ///    deepest service often arrive last, so an early verdict is revised rather than left
    ///    open beside the right one;
    /// 4. it blames only a call into or out of a service one of whose own operations an
    ///    incident opened within the revision window lists as affected: callers giving up on a
    ///    service the incident's root cause slowed down are its symptom; or only a call some
    ///    of whose traces name the incident's root cause (`traced_to_root`);
    /// 5. its cause is another endpoint of the incident's root-cause service with the same
    ///    fault family (or either is a timeout, which its callers see as failures): a
    ///    service-wide fault (CPU saturation, a hung thread pool, a slow or failing
    ///    dependency, a bad release) hurts several of its operations at once, and that is one
    ///    problem.
    ///
    /// In cases 1 and 3 the incident takes the draft's root cause (in case 3 only when the draft
    /// is at least [`MIN_CONFIDENCE_TO_REVISE`](super::MIN_CONFIDENCE_TO_REVISE) times as
    /// confident, or names a timeout: as a fault clears, the traces of its endpoint's last
    /// anomalous window are mostly healthy, and the endpoint they blame by chance, at a
    /// confidence of 0.1, replaced a right root cause at 1.0; a hang's spans arrive when it
    /// ends, so few traces show it yet); in cases 2 and 4 it keeps its own, and in case 5 too
    /// (the first operation of a service found slow is the one named) unless it names a call
    /// into the service and the draft one of the service's own operations.
    ///
    /// In case 5 the families need not match while the incident is young (within the revision
    /// window) and either names a call into the service: callers that give up on a service
    /// that has just turned slow see failures. When
    /// an incident's root cause changes to a service another active incident already names,
    /// the two are one problem: the younger is folded into the older (see `fold`), whose id
    /// is returned beside the change.
    ///
    /// A draft that belongs to no incident opens one, unless its sampled traces contradict
    /// it: traces were sampled and (almost) none shows anything wrong at its root (confidence
    /// below [`MIN_CONFIDENCE_TO_OPEN`]). An endpoint's window can cross the thresholds on a
    /// few heavy-tail requests; when the traces through it show none of them as its own
    /// doing, there is nothing to report.
    fn absorb(
        &mut self,
        draft: IncidentDraft,
        now: u64,
    ) -> Option<(IncidentChange, Option<String>)> {
        let root = draft.root_cause.endpoint_key();
        let revise_after = now.saturating_sub(self.revise_window_nanos);
        let active = || {
            self.incidents
                .iter()
                .enumerate()
                .filter(|(_, i)| i.is_active())
        };
        let same_cause = active().find(|(_, i)| i.root_cause.same_cause(&draft.root_cause));
        let symptoms = || {
            active().find(|(_, i)| {
                // The draft's affected endpoints start with the endpoint it blames (the caller's
                // client endpoint when it blames the callee of a call).
                let listed = |e: &EndpointKey| i.affected_endpoints.contains(e);
                let blamed_listed = draft.affected_endpoints.iter().all(listed);
                // As a fault clears, its endpoints' last anomalous windows hold mostly healthy
                // traces, which blame some other endpoint by chance: a cause shown that
                // weakly, seen only on the incident's endpoints, is its leftover too.
                i.root_cause.endpoint_key() != root
                    && (blamed_listed || !shown_as_plainly(&draft.root_cause, i))
                    && draft.anomalies.iter().all(|a| listed(&a.endpoint))
            })
        };
        let same_service = || {
            active().find(|(_, i)| {
                i.root_cause.service == draft.root_cause.service
                    && one_problem(i, &draft.root_cause, revise_after)
            })
        };
        let deeper = || {
            active().find(|(_, i)| {
                i.first_detected_unix_nanos >= revise_after
                    && i.root_cause.endpoint_key() != root
                    && draft.affected_endpoints.iter().any(|e| {
                        blames(i, e)
                            || (i.root_cause.service != draft.root_cause.service
                                && behind_blamed_call(i, &draft.root_cause, e))
                    })
            })
        };
        let hurt_callee = || {
            active().find(|(_, i)| {
                i.first_detected_unix_nanos >= revise_after
                    && i.root_cause.service != draft.root_cause.service
                    && symptom_call(i, &draft.root_cause)
            })
        };
        let found = same_cause
            .map(|(index, _)| (index, true))
            .or_else(|| symptoms().map(|(index, _)| (index, false)))
            .or_else(|| {
                deeper().map(|(index, incident)| {
                    // A hang's spans arrive when it ends: few traces show it yet, and its
                    // callers' early verdict is the one to revise.
                    let hang = draft.root_cause.kind == AnomalyKind::Timeout;
                    (index, hang || shown_as_plainly(&draft.root_cause, incident))
                })
            })
            .or_else(|| hurt_callee().map(|(index, _)| (index, false)))
            .or_else(|| {
                // The service's own operation names the place better than a call into it.
                same_service().map(|(index, incident)| {
                    (index, sharper(&incident.root_cause, &draft.root_cause))
                })
            });
        // A draft its own traces contradict opens (or reopens) nothing.
        let opens = draft.root_cause.confidence >= MIN_CONFIDENCE_TO_OPEN;
        // A cause that returned soon after its incident resolved: the same incident again.
        let reopened = match found {
            Some(_) => None,
            None if !opens => None,
            None => self
                .damping
                .reopens(&self.incidents, &draft.root_cause, now),
        };
        if let Some(index) = reopened {
            reopen(&mut self.incidents[index], now);
        }
        let found = found.or(reopened.map(|index| (index, true)));
        match found {
            Some((index, take_cause)) => {
                let incident = &mut self.incidents[index];
                merge(incident, draft, now, take_cause);
                let id = incident.id.clone();
                self.healthy_cycles.insert(id.clone(), 0);
                let folded = if take_cause {
                    self.fold(index, now)
                } else {
                    None
                };
                // The change names the incident that lives on (this one, unless it was folded).
                let id = self.incidents[index].merged_into.clone().unwrap_or(id);
                let change = if reopened.is_some() {
                    IncidentChange::Reopened { id }
                } else {
                    IncidentChange::Updated { id }
                };
                Some((change, folded))
            }
            None if !opens => None,
            None => {
                let id = format!("INC-{}-{}", now / 1_000_000_000, self.next_sequence);
                self.next_sequence += 1;
                let mut anomalies = draft.anomalies;
                sort_by_severity(&mut anomalies);
                self.incidents.push(Incident {
                    id: id.clone(),
                    severity: draft.severity,
                    title: draft.title,
                    status: IncidentStatus::Active,
                    root_cause: draft.root_cause,
                    affected_endpoints: dedup(draft.affected_endpoints),
                    alert_count: anomalies.len() as u64,
                    anomalies,
                    first_detected_unix_nanos: now,
                    last_updated_unix_nanos: now,
                    resolved_at_unix_nanos: None,
                    merged_into: None,
                    evidence: Default::default(),
                });
                self.healthy_cycles.insert(id.clone(), 0);
                Some((IncidentChange::Opened { id }, None))
            }
        }
    }

    /// After incident `index` took a new root cause: when another active incident names the
    /// same service with a related fault (or either is young), the younger of the two is
    /// folded into the older: the older takes its anomalies and affected endpoints (and its
    /// root cause when that names one of the service's own operations where the older names
    /// only a call into it), and the younger is resolved with `merged_into` set. No cause
    /// watermark is set: the evidence lives on in the older incident. Returns the folded id.
    fn fold(&mut self, index: usize, now: u64) -> Option<String> {
        let revise_after = now.saturating_sub(self.revise_window_nanos);
        let changed = &self.incidents[index];
        let other = self.incidents.iter().position(|i| {
            i.is_active()
                && i.id != changed.id
                && i.root_cause.service == changed.root_cause.service
                && (one_problem(i, &changed.root_cause, revise_after)
                    || one_problem(changed, &i.root_cause, revise_after))
        })?;
        let (older, younger) = if other < index {
            (other, index)
        } else {
            (index, other)
        };
        let gone = self.incidents[younger].clone();
        let take_cause = sharper(&self.incidents[older].root_cause, &gone.root_cause);
        let survivor_id = self.incidents[older].id.clone();
        let draft = IncidentDraft {
            title: gone.title.clone(),
            severity: gone.severity,
            root_cause: gone.root_cause.clone(),
            affected_endpoints: gone.affected_endpoints.clone(),
            anomalies: gone.anomalies.clone(),
        };
        let survivor = &mut self.incidents[older];
        merge(survivor, draft, now, take_cause);
        survivor.first_detected_unix_nanos = survivor
            .first_detected_unix_nanos
            .min(gone.first_detected_unix_nanos);
        self.healthy_cycles.insert(survivor_id.clone(), 0);
        let folded = &mut self.incidents[younger];
        folded.status = IncidentStatus::Resolved;
        folded.resolved_at_unix_nanos = Some(now);
        folded.last_updated_unix_nanos = folded.last_updated_unix_nanos.max(now);
        folded.merged_into = Some(survivor_id);
        self.healthy_cycles.remove(&gone.id);
        self.last_unwell.forget(&gone.id);
        Some(gone.id)
    }

    fn auto_resolve(
        &mut self,
        touched: &HashSet<String>,
        assessment: &Assessment,
        now: u64,
        watermarks: &mut Watermarks,
    ) -> Vec<IncidentChange> {
        if self.auto_resolve_cycles == 0 {
            return Vec::new();
        }
        let mut resolved = Vec::new();
        for index in 0..self.incidents.len() {
            let incident = &self.incidents[index];
            if !incident.is_active() || touched.contains(&incident.id) {
                continue;
            }
            let healthy = is_healthy(incident, assessment);
            if !healthy {
                self.last_unwell.note(&incident.id, now);
            }
            let held = self.last_unwell.held(&self.damping, incident, now);
            let streak = self.healthy_cycles.entry(incident.id.clone()).or_insert(0);
            *streak = if healthy { *streak + 1 } else { 0 };
            if *streak >= self.auto_resolve_cycles && held {
                self.close(index, now, watermarks);
                resolved.push(IncidentChange::Resolved {
                    id: self.incidents[index].id.clone(),
                });
            }
        }
        resolved
    }

    fn close(&mut self, index: usize, now: u64, watermarks: &mut Watermarks) {
        let incident = &mut self.incidents[index];
        incident.status = IncidentStatus::Resolved;
        incident.resolved_at_unix_nanos = Some(now);
        incident.last_updated_unix_nanos = incident.last_updated_unix_nanos.max(now);
        self.healthy_cycles.remove(&incident.id);
        self.last_unwell.forget(&incident.id);
        watermarks.resolve(incident, now);
    }

    fn prune_resolved(&mut self) {
        let resolved = self.incidents.iter().filter(|i| !i.is_active()).count();
        let mut excess = resolved.saturating_sub(self.max_resolved);
        if excess == 0 {
            return;
        }
        // Drop the earliest resolved first; ties keep opening order.
        let mut by_resolution: Vec<(u64, usize)> = self
            .incidents
            .iter()
            .enumerate()
            .filter_map(|(index, i)| i.resolved_at_unix_nanos.map(|at| (at, index)))
            .collect();
        by_resolution.sort_unstable();
        let mut doomed = HashSet::new();
        for (_, index) in by_resolution {
            if excess == 0 {
                break;
            }
            doomed.insert(index);
            excess -= 1;
        }
        let mut index = 0;
        self.incidents.retain(|_| {
            let keep = !doomed.contains(&index);
            index += 1;
            keep
        });
    }
}

/// Keeps only the part of `draft` that started after its cause's watermark, or nothing.
fn fresh_evidence(mut draft: IncidentDraft, watermarks: &Watermarks) -> Option<IncidentDraft> {
    let Some(not_before) = watermarks.of_cause(&draft.root_cause) else {
        return Some(draft);
    };
    if draft
        .root_cause
        .first_failing_span
        .as_ref()
        .is_some_and(|span| span.start_unix_nanos < not_before)
    {
        return None;
    }
    draft
        .anomalies
        .retain(|anomaly| anomaly.window.start_unix_nanos >= not_before);
    let severity = draft.anomalies.iter().map(|a| a.severity).max()?;
    let root = draft.root_cause.endpoint_key();
    let anomalies = &draft.anomalies;
    draft
        .affected_endpoints
        .retain(|endpoint| *endpoint == root || anomalies.iter().any(|a| a.endpoint == *endpoint));
    draft.severity = severity;
    Some(draft)
}

/// True when none of the incident's endpoints showed a problem in the assessment.
fn is_healthy(incident: &Incident, assessment: &Assessment) -> bool {
    let affected = |endpoint: &EndpointKey| incident.affected_endpoints.contains(endpoint);
    let anomalous = assessment.anomalies.iter().any(|a| affected(&a.endpoint));
    let unwell = assessment
        .endpoints
        .iter()
        .any(|e| affected(&e.endpoint) && e.health.status != HealthStatus::Healthy);
    !anomalous && !unwell
}
