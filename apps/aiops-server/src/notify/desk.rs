//! The desk: the one task that owns the incidents' notes, the silences and what the receivers
//! were told. It hears every incident change from the analysis actor, writes the timeline,
//! decides who is told what, re-sends active incidents to Alertmanager on its own schedule,
//! and answers the acknowledge and silence routes.

use std::collections::HashMap;
use std::time::Duration;

use aiops_engine::Incident;
use aiops_storage_sqlite::{IncidentEvent, LifecycleWrite, NoteRecord, SilenceRecord, Store};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use super::alert::{AlertStyle, PostableAlert};
use super::deliver::{Delivery, Outbox, Outcome};
use super::notes::{Acknowledgement, Change, Notes, Seen, changes};
use super::silence::Silence;
use crate::clock::now_unix_nanos;

/// How long a resolved incident is re-sent to Alertmanager as resolved.
pub const RESOLVED_RESEND: Duration = Duration::from_secs(5 * 60);

/// The lease of a firing alert, in resend intervals.
pub const LEASE_INTERVALS: u32 = 4;

/// Incidents whose notes are loaded at start.
const NOTES_LOADED: usize = 10_000;

/// How long expired silences stay listed.
pub const EXPIRED_LISTED: Duration = Duration::from_secs(24 * 3600);

/// Why a command failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeskError {
    /// The incident was already acknowledged.
    #[error("incident desk: already acknowledged by {}", .0.by)]
    AlreadyAcknowledged(Acknowledgement),
    /// The database refused the write; nothing changed.
    #[error("incident desk: the database refused the write: {0}")]
    Store(String),
}

pub(super) enum Command {
    Publish(Vec<Incident>),
    Acknowledge {
        incident: Box<Incident>,
        by: String,
        comment: Option<String>,
        reply: oneshot::Sender<Result<Notes, DeskError>>,
    },
    CreateSilence {
        silence: Silence,
        reply: oneshot::Sender<Result<Silence, DeskError>>,
    },
    ExpireSilence {
        id: String,
        reply: oneshot::Sender<Result<Option<Silence>, DeskError>>,
    },
    Silences {
        reply: oneshot::Sender<Vec<Silence>>,
    },
    Notes {
        ids: Vec<String>,
        reply: oneshot::Sender<HashMap<String, Notes>>,
    },
}

pub(super) struct Desk {
    pub(super) style: AlertStyle,
    pub(super) alertmanagers: Vec<Outbox>,
    pub(super) webhooks: Vec<Outbox>,
    pub(super) resend_interval: Duration,
    pub(super) store: Store,
    pub(super) notes: HashMap<String, Notes>,
    pub(super) silences: Vec<Silence>,
    /// Active incidents, and resolved ones still re-sent as resolved.
    pub(super) tracked: HashMap<String, Incident>,
}

impl Desk {
    /// Reads the notes and the silences still listed from the store.
    pub(super) async fn load(mut self) -> Self {
        let store = self.store.clone();
        let since = now_unix_nanos().saturating_sub(nanos(EXPIRED_LISTED));
        let loaded = tokio::task::spawn_blocking(move || {
            Ok::<_, aiops_storage_sqlite::StoreError>((
                store.incident_notes(NOTES_LOADED)?,
                store.silences(since)?,
            ))
        })
        .await;
        match loaded {
            Ok(Ok((notes, silences))) => {
                for record in notes {
                    match serde_json::from_value(record.body) {
                        Ok(notes) => {
                            self.notes.insert(record.incident_id, notes);
                        }
                        Err(error) => log::warn!(
                            "incident={} error={error} Stored incident notes are unreadable.",
                            record.incident_id
                        ),
                    }
                }
                self.silences = silences
                    .into_iter()
                    .filter_map(|record| serde_json::from_value(record.body).ok())
                    .collect();
            }
            Ok(Err(error)) => {
                log::warn!("error={error} Could not read incident notes and silences.");
            }
            Err(error) => log::warn!("error={error} Could not read incident notes and silences."),
        }
        self
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut outcomes: mpsc::Receiver<Outcome>,
    ) {
        let mut resend = tokio::time::interval(self.resend_interval);
        resend.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                Some(outcome) = outcomes.recv() => self.record(outcome).await,
                _ = resend.tick() => self.resend().await,
            }
        }
    }

    pub(super) async fn handle(&mut self, command: Command) {
        match command {
            Command::Publish(incidents) => {
                let now = now_unix_nanos();
                let mut write = LifecycleWrite::default();
                for incident in incidents {
                    self.publish(incident, now, &mut write);
                }
                if let Err(error) = self.save(write).await {
                    log::warn!("error={error} Could not save incident timelines.");
                }
            }
            Command::Acknowledge {
                incident,
                by,
                comment,
                reply,
            } => {
                let result = self.acknowledge(*incident, by, comment).await;
                let _ = reply.send(result);
            }
            Command::CreateSilence { silence, reply } => {
                let record = silence_record(&silence);
                let write = LifecycleWrite {
                    silences: vec![record],
                    ..LifecycleWrite::default()
                };
                let result = self.save(write).await.map(|()| {
                    log::info!("silence={} Silence created.", silence.id);
                    self.silences.push(silence.clone());
                    silence
                });
                let _ = reply.send(result);
            }
            Command::ExpireSilence { id, reply } => {
                let _ = reply.send(self.expire(&id).await);
            }
            Command::Silences { reply } => {
                let since = now_unix_nanos().saturating_sub(nanos(EXPIRED_LISTED));
                let listed = self
                    .silences
                    .iter()
                    .filter(|silence| silence.ends_at_unix_nanos >= since)
                    .cloned()
                    .collect();
                let _ = reply.send(listed);
            }
            Command::Notes { ids, reply } => {
                let found = ids
                    .into_iter()
                    .filter_map(|id| self.notes.get(&id).cloned().map(|notes| (id, notes)))
                    .collect();
                let _ = reply.send(found);
            }
        }
    }

    /// Takes in a new version of `incident`: timeline, silences, notifications.
    fn publish(&mut self, incident: Incident, now: u64, write: &mut LifecycleWrite) {
        let mut notes = self.notes.get(&incident.id).cloned().unwrap_or_default();
        let (events, change) = changes(notes.seen.as_ref(), &incident, now);
        write.events.extend(events);
        let before = notes.clone();
        notes.seen = Some(Seen::of(&incident));
        if notes.labels.is_none() {
            notes.labels = Some(self.style.labels(&incident));
        }
        let silencing = self.silencing(&incident, now);
        note_silences(&incident, &mut notes, &silencing, now, write);
        if change.is_news() || change == Change::Joined {
            self.tell(&incident, &mut notes, change, silencing.is_empty());
        }
        if incident.is_active() || within_resend(&incident, now) {
            self.tracked.insert(incident.id.clone(), incident.clone());
        } else {
            self.tracked.remove(&incident.id);
        }
        if notes != before {
            write.notes.push(note_record(&incident.id, &notes));
        }
        self.notes.insert(incident.id, notes);
    }

    /// Tells the receivers about `change` of `incident`, unless a silence holds it back: a
    /// resolution is told to whoever heard of the incident, silence or not.
    fn tell(&self, incident: &Incident, notes: &mut Notes, change: Change, unsilenced: bool) {
        let resolved = !incident.is_active();
        let told = if resolved { notes.notified } else { unsilenced };
        if !told {
            return;
        }
        notes.notified = true;
        // Alertmanager hears of every version at once (an update refreshes its annotations);
        // the webhooks only of news. Timelines record the deliveries of news only, or an
        // incident absorbing anomalies every cycle would fill its timeline with them.
        let record_for = if change.is_news() {
            vec![incident.id.clone()]
        } else {
            Vec::new()
        };
        self.push_alerts(&[(incident, &*notes)], record_for.clone());
        if change.is_news() {
            self.post_webhooks(incident, notes, record_for);
        }
    }

    fn push_alerts(&self, alerts: &[(&Incident, &Notes)], record_for: Vec<String>) {
        if self.alertmanagers.is_empty() || alerts.is_empty() {
            return;
        }
        let lease_end = now_unix_nanos() + nanos(self.resend_interval * LEASE_INTERVALS);
        let body: Vec<PostableAlert> = alerts
            .iter()
            .map(|(incident, notes)| self.style.postable(incident, notes, lease_end))
            .collect();
        let Ok(body) = serde_json::to_vec(&body) else {
            return;
        };
        for outbox in &self.alertmanagers {
            outbox.send(Delivery {
                body: body.clone(),
                record_for: record_for.clone(),
            });
        }
    }

    fn post_webhooks(&self, incident: &Incident, notes: &Notes, record_for: Vec<String>) {
        for outbox in &self.webhooks {
            let payload = self.style.webhook(incident, notes, &outbox.name);
            let Ok(body) = serde_json::to_vec(&payload) else {
                continue;
            };
            outbox.send(Delivery {
                body,
                record_for: record_for.clone(),
            });
        }
    }

    /// The silences in force at `now` that hold back notifications about `incident`, judged
    /// on its current labels.
    fn silencing(&self, incident: &Incident, now: u64) -> Vec<String> {
        let labels = self.style.labels(incident);
        self.silences
            .iter()
            .filter(|silence| silence.silences(&labels, now))
            .map(|silence| silence.id.clone())
            .collect()
    }

    /// Every resend interval: active incidents again to Alertmanager with a fresh lease,
    /// resolved ones as resolved for [`RESOLVED_RESEND`]; an incident a silence held back and
    /// that is free now is told at last.
    pub(super) async fn resend(&mut self) {
        let now = now_unix_nanos();
        let mut write = LifecycleWrite::default();
        let ids: Vec<String> = self.tracked.keys().cloned().collect();
        let mut due = Vec::new();
        for id in ids {
            let Some(incident) = self.tracked.get(&id).cloned() else {
                continue;
            };
            if !incident.is_active() && !within_resend(&incident, now) {
                self.tracked.remove(&id);
                continue;
            }
            let mut notes = self.notes.get(&id).cloned().unwrap_or_default();
            let before = notes.clone();
            let silencing = self.silencing(&incident, now);
            note_silences(&incident, &mut notes, &silencing, now, &mut write);
            if incident.is_active() && silencing.is_empty() && !notes.notified {
                // Held back until now: told as it opens for the receivers.
                self.tell(&incident, &mut notes, Change::Opened, true);
            } else if (incident.is_active() && silencing.is_empty())
                || (!incident.is_active() && notes.notified)
            {
                due.push(id.clone());
            }
            if notes != before {
                write.notes.push(note_record(&id, &notes));
            }
            self.notes.insert(id, notes);
        }
        let alerts: Vec<(&Incident, &Notes)> = due
            .iter()
            .filter_map(|id| Some((self.tracked.get(id)?, self.notes.get(id)?)))
            .collect();
        self.push_alerts(&alerts, Vec::new());
        if let Err(error) = self.save(write).await {
            log::warn!("error={error} Could not save incident notes.");
        }
    }

    async fn acknowledge(
        &mut self,
        incident: Incident,
        by: String,
        comment: Option<String>,
    ) -> Result<Notes, DeskError> {
        let mut notes = self.notes.get(&incident.id).cloned().unwrap_or_default();
        if let Some(ack) = &notes.acknowledged {
            return Err(DeskError::AlreadyAcknowledged(ack.clone()));
        }
        let now = now_unix_nanos();
        notes.acknowledged = Some(Acknowledgement {
            by: by.clone(),
            comment: comment.clone(),
            at_unix_nanos: now,
        });
        let write = LifecycleWrite {
            events: vec![IncidentEvent {
                incident_id: incident.id.clone(),
                at_unix_nanos: now,
                kind: "acknowledged".to_owned(),
                body: json!({"by": by, "comment": comment}),
            }],
            notes: vec![note_record(&incident.id, &notes)],
            ..LifecycleWrite::default()
        };
        self.save(write).await?;
        log::info!("incident={} Incident acknowledged.", incident.id);
        if notes.notified && self.silencing(&incident, now).is_empty() {
            let record_for = vec![incident.id.clone()];
            self.push_alerts(&[(&incident, &notes)], record_for.clone());
            self.post_webhooks(&incident, &notes, record_for);
        }
        self.notes.insert(incident.id.clone(), notes.clone());
        Ok(notes)
    }

    async fn expire(&mut self, id: &str) -> Result<Option<Silence>, DeskError> {
        let now = now_unix_nanos();
        let Some(index) = self.silences.iter().position(|silence| silence.id == id) else {
            return Ok(None);
        };
        let mut silence = self.silences[index].clone();
        silence.ends_at_unix_nanos = silence.ends_at_unix_nanos.min(now);
        silence.starts_at_unix_nanos = silence.starts_at_unix_nanos.min(now);
        let write = LifecycleWrite {
            silences: vec![silence_record(&silence)],
            ..LifecycleWrite::default()
        };
        self.save(write).await?;
        log::info!("silence={id} Silence expired by request.");
        self.silences[index] = silence.clone();
        Ok(Some(silence))
    }

    /// Records the outcome of a delivery in the timelines it names.
    async fn record(&mut self, outcome: Outcome) {
        let now = now_unix_nanos();
        let events = outcome
            .record_for
            .iter()
            .map(|id| IncidentEvent {
                incident_id: id.clone(),
                at_unix_nanos: now,
                kind: "notified".to_owned(),
                body: json!({
                    "receiver": outcome.receiver,
                    "status": outcome.status,
                    "error": outcome.error,
                    "attempts": outcome.attempts,
                }),
            })
            .collect();
        let write = LifecycleWrite {
            events,
            ..LifecycleWrite::default()
        };
        if let Err(error) = self.save(write).await {
            log::warn!("error={error} Could not save a delivery to the timeline.");
        }
    }

    async fn save(&self, write: LifecycleWrite) -> Result<(), DeskError> {
        if write.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.save_lifecycle(&write))
            .await
            .map_err(|error| DeskError::Store(error.to_string()))?
            .map_err(|error| DeskError::Store(error.to_string()))
    }
}

/// Adds the silences holding back `incident` to its notes, with a timeline event for each new
/// one; a resolved incident is no longer silenced.
fn note_silences(
    incident: &Incident,
    notes: &mut Notes,
    silencing: &[String],
    now: u64,
    write: &mut LifecycleWrite,
) {
    if !incident.is_active() {
        return;
    }
    for id in silencing {
        if !notes.silenced_by.contains(id) {
            notes.silenced_by.push(id.clone());
            write.events.push(IncidentEvent {
                incident_id: incident.id.clone(),
                at_unix_nanos: now,
                kind: "silenced".to_owned(),
                body: json!({"silence_id": id}),
            });
        }
    }
}

fn within_resend(incident: &Incident, now: u64) -> bool {
    incident
        .resolved_at_unix_nanos
        .is_some_and(|at| now < at.saturating_add(nanos(RESOLVED_RESEND)))
}

fn note_record(id: &str, notes: &Notes) -> NoteRecord {
    NoteRecord {
        incident_id: id.to_owned(),
        body: serde_json::to_value(notes).unwrap_or_default(),
    }
}

fn silence_record(silence: &Silence) -> SilenceRecord {
    SilenceRecord {
        id: silence.id.clone(),
        ends_unix_nanos: silence.ends_at_unix_nanos,
        body: serde_json::to_value(silence).unwrap_or_default(),
    }
}

/// `duration` in nanoseconds, saturating.
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
