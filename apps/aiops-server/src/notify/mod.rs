//! Incidents that reach people: every change of an incident goes from the analysis actor to
//! the desk (`desk.rs`), which keeps each incident's timeline and notes, applies silences, and
//! tells the receivers: every configured Alertmanager (`POST /api/v2/alerts`, re-sent while
//! active with an `endsAt` lease) and every webhook (Alertmanager's webhook payload, version
//! 4). Each receiver has its own bounded queue and delivery task (`deliver.rs`), so a slow or
//! failing receiver delays no one, and analysis never waits: the actor hands changes over
//! without waiting, and a full queue drops and counts rather than blocks.

mod alert;
mod deliver;
mod desk;
mod notes;
mod silence;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aiops_engine::Incident;
use aiops_storage_sqlite::Store;
use anyhow::Context;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use self::alert::{
    ALERT_NAME, AlertStyle, LabelSet, PostableAlert, WebhookAlert, WebhookPayload, ZERO_TIME,
    fingerprint,
};
pub use self::deliver::{ReceiverCounters, ReceiverKind, SIGNATURE_HEADER, signature};
pub use self::desk::{DeskError, LEASE_INTERVALS, RESOLVED_RESEND};
pub use self::notes::{Acknowledgement, Notes};
pub use self::silence::{MATCHABLE, Matcher, Silence, SilenceState};

use self::deliver::{Outbox, Receiver};
use self::desk::{Command, Desk};
use crate::actor::AnalysisStopped;
use crate::config::Notify;

/// Incident changes that may wait for the desk before the actor drops them.
const FEED_CAPACITY: usize = 4096;

/// Commands of the routes that may wait for the desk.
const MAILBOX_CAPACITY: usize = 64;

/// Where the analysis actor hands over the incidents each cycle changed, without waiting.
#[derive(Clone, Debug)]
pub struct IncidentFeed {
    sender: Option<mpsc::Sender<Command>>,
    dropped: Arc<AtomicU64>,
}

impl IncidentFeed {
    /// A feed that goes nowhere (an engine with no desk, in tests).
    pub fn none() -> Self {
        Self {
            sender: None,
            dropped: Arc::default(),
        }
    }

    /// Hands `incidents` (new versions of incidents) to the desk; when its queue is full they
    /// are dropped and counted.
    pub fn publish(&self, incidents: Vec<Incident>) {
        let Some(sender) = &self.sender else {
            return;
        };
        if incidents.is_empty() {
            return;
        }
        if sender.try_send(Command::Publish(incidents)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            log::warn!("The incident desk is not keeping up; incident changes were dropped.");
        }
    }
}

/// One receiver's counters, for `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverStats {
    /// `alertmanager-1`, `webhook-1`, ...
    pub name: String,
    /// `alertmanager` or `webhook`.
    pub kind: &'static str,
    /// Accepted deliveries.
    pub sent: u64,
    /// Deliveries given up.
    pub failed: u64,
    /// Repeated attempts.
    pub retries: u64,
    /// Deliveries dropped on a full queue.
    pub dropped: u64,
}

/// A cloneable handle to the desk, for the routes and `/metrics`.
#[derive(Clone, Debug)]
pub struct Notifier {
    commands: mpsc::Sender<Command>,
    feed: IncidentFeed,
    receivers: Vec<(String, ReceiverKind, Arc<ReceiverCounters>)>,
}

impl Notifier {
    /// Starts the desk and one delivery task per receiver of `settings`. `bound` is the
    /// server's own URL, for links when no external URL is configured.
    pub async fn spawn(
        settings: &Notify,
        store: Store,
        bound: &str,
    ) -> anyhow::Result<(Self, Vec<JoinHandle<()>>)> {
        let client = reqwest::Client::builder()
            .build()
            .context("building the HTTP client of the notifications")?;
        let (outcome_sender, outcomes) = mpsc::channel(deliver::QUEUE_CAPACITY);
        let mut tasks = Vec::new();
        let mut start = |kind, index: usize, url: &str, secret, token| {
            let name = match kind {
                ReceiverKind::Alertmanager => format!("alertmanager-{}", index + 1),
                ReceiverKind::Webhook => format!("webhook-{}", index + 1),
            };
            let mut url =
                reqwest::Url::parse(url.trim()).with_context(|| format!("the URL of {name}"))?;
            if kind == ReceiverKind::Alertmanager {
                let path = format!("{}/api/v2/alerts", url.path().trim_end_matches('/'));
                url.set_path(&path);
            }
            let receiver = Receiver {
                name,
                kind,
                url,
                secret,
                token,
            };
            let (outbox, task) = deliver::spawn(receiver, client.clone(), outcome_sender.clone());
            tasks.push(task);
            anyhow::Ok(outbox)
        };
        let mut alertmanagers = Vec::new();
        for (index, url) in settings.alertmanager_url.iter().enumerate() {
            alertmanagers.push(start(ReceiverKind::Alertmanager, index, url, None, None)?);
        }
        let mut webhooks = Vec::new();
        for (index, url) in settings.webhook_url.iter().enumerate() {
            webhooks.push(start(
                ReceiverKind::Webhook,
                index,
                url,
                settings.webhook_secret.clone(),
                settings.webhook_token.clone(),
            )?);
        }
        let receivers: Vec<(String, ReceiverKind, Arc<ReceiverCounters>)> = alertmanagers
            .iter()
            .chain(&webhooks)
            .map(|outbox: &Outbox| (outbox.name.clone(), outbox.kind, outbox.counters.clone()))
            .collect();
        let external_url = settings
            .external_url
            .as_deref()
            .unwrap_or(bound)
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let desk = Desk {
            style: AlertStyle {
                static_labels: settings.labels(),
                external_url,
            },
            alertmanagers,
            webhooks,
            resend_interval: settings.resend_interval,
            store,
            notes: HashMap::new(),
            silences: Vec::new(),
            tracked: HashMap::new(),
        }
        .load()
        .await;
        let (commands, inbox) = mpsc::channel(FEED_CAPACITY.max(MAILBOX_CAPACITY));
        tasks.push(tokio::spawn(desk.run(inbox, outcomes)));
        let feed = IncidentFeed {
            sender: Some(commands.clone()),
            dropped: Arc::default(),
        };
        Ok((
            Self {
                commands,
                feed,
                receivers,
            },
            tasks,
        ))
    }

    /// Where the analysis actor hands over incident changes.
    pub fn feed(&self) -> IncidentFeed {
        self.feed.clone()
    }

    /// Every receiver's counters.
    pub fn receiver_stats(&self) -> Vec<ReceiverStats> {
        self.receivers
            .iter()
            .map(|(name, kind, counters)| ReceiverStats {
                name: name.clone(),
                kind: match kind {
                    ReceiverKind::Alertmanager => "alertmanager",
                    ReceiverKind::Webhook => "webhook",
                },
                sent: counters.sent.load(Ordering::Relaxed),
                failed: counters.failed.load(Ordering::Relaxed),
                retries: counters.retries.load(Ordering::Relaxed),
                dropped: counters.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Incident changes the actor dropped because the desk was behind.
    pub fn updates_dropped(&self) -> u64 {
        self.feed.dropped.load(Ordering::Relaxed)
    }

    /// Records that `by` acknowledged `incident`, and tells the receivers.
    pub async fn acknowledge(
        &self,
        incident: Incident,
        by: String,
        comment: Option<String>,
    ) -> Result<Result<Notes, DeskError>, AnalysisStopped> {
        self.ask(|reply| Command::Acknowledge {
            incident: Box::new(incident),
            by,
            comment,
            reply,
        })
        .await
    }

    /// Stores and applies `silence`.
    pub async fn create_silence(
        &self,
        silence: Silence,
    ) -> Result<Result<Silence, DeskError>, AnalysisStopped> {
        self.ask(|reply| Command::CreateSilence { silence, reply })
            .await
    }

    /// Ends silence `id` now; `None` when there is no such silence.
    pub async fn expire_silence(
        &self,
        id: String,
    ) -> Result<Result<Option<Silence>, DeskError>, AnalysisStopped> {
        self.ask(|reply| Command::ExpireSilence { id, reply }).await
    }

    /// The silences, expired ones of the last day included.
    pub async fn silences(&self) -> Result<Vec<Silence>, AnalysisStopped> {
        self.ask(|reply| Command::Silences { reply }).await
    }

    /// The notes of the incidents `ids` that have some.
    pub async fn notes(&self, ids: Vec<String>) -> Result<HashMap<String, Notes>, AnalysisStopped> {
        self.ask(|reply| Command::Notes { ids, reply }).await
    }

    async fn ask<R>(
        &self,
        ask: impl FnOnce(oneshot::Sender<R>) -> Command,
    ) -> Result<R, AnalysisStopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(ask(reply))
            .await
            .map_err(|_| AnalysisStopped)?;
        answer.await.map_err(|_| AnalysisStopped)
    }
}

/// The lease of a firing alert for `resend_interval`.
pub fn lease(resend_interval: Duration) -> Duration {
    resend_interval * LEASE_INTERVALS
}

#[cfg(test)]
mod desk_tests;
#[cfg(test)]
mod tests;
