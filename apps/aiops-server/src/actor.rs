//! The analysis actor: one tokio task owns the [`Engine`] and runs its cycle on an interval or
//! on demand; everything else reaches it through a cloneable [`AnalysisHandle`].
//!
//! The interval tick and the commands share one `select!` loop, so a cycle, a resolution and a
//! query never interleave. After every cycle and resolution the engine's state is persisted in
//! one transaction; a storage failure is logged and retried at the next cycle, and never stops
//! analysis.

use std::sync::Arc;
use std::time::Duration;

use aiops_analyzer::Baseline;
use aiops_engine::{CycleReport, Engine, Incident, IncidentError, IncidentStatus};
use aiops_telemetry_core::EndpointKey;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::clock::Clock;
use crate::notify::IncidentFeed;
use crate::persistence::StateStore;
use crate::pipeline::span_metrics::{DurationHistogram, HistogramSnapshot};

/// How many commands may wait for the actor before senders wait too.
const MAILBOX_CAPACITY: usize = 64;

/// How often the actor looks for new anomalies between cycles (when the interval is longer).
/// The look merges the live buckets of the detection window and runs the detectors; when they
/// find an endpoint and kind the last cycle did not, the cycle runs at once, so a fault is
/// detected about a second after its evidence crosses a threshold, whatever the interval.
pub const PROBE_PERIOD: Duration = Duration::from_secs(1);

/// The actor has stopped (the server is shutting down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("analysis: the analysis engine has stopped")]
pub struct AnalysisStopped;

/// One cycle's result, as `POST /aiops/analyze` returns it.
#[derive(Clone, Debug)]
pub struct CycleOutcome {
    /// When the cycle ran, in Unix nanoseconds.
    pub at_unix_nanos: u64,
    /// What the engine found.
    pub report: Arc<CycleReport>,
    /// The incidents the cycle opened, updated or resolved.
    pub changed: Vec<Incident>,
    /// Every active incident after the cycle.
    pub active: Vec<Incident>,
}

/// The latest cycle: when it ran and what it found.
#[derive(Clone, Debug)]
pub struct LastCycle {
    /// When the cycle ran, in Unix nanoseconds.
    pub at_unix_nanos: u64,
    /// What the engine found.
    pub report: Arc<CycleReport>,
}

/// The actor's progress since start.
#[derive(Clone, Debug, Default)]
pub struct ActorStatus {
    /// The latest cycle, once one has run.
    pub last_cycle: Option<LastCycle>,
    /// Cycles run since start.
    pub cycles: u64,
    /// Of those, cycles run ahead of the interval because new anomaly evidence showed.
    pub early_cycles: u64,
    /// Persistence attempts that failed since start.
    pub persist_failures: u64,
    /// How long cycles took.
    pub cycle_duration: HistogramSnapshot,
}

enum Message {
    AnalyzeNow {
        reply: oneshot::Sender<CycleOutcome>,
    },
    Resolve {
        id: String,
        reply: oneshot::Sender<Result<Incident, IncidentError>>,
    },
    Incidents {
        status: Option<IncidentStatus>,
        reply: oneshot::Sender<Vec<Incident>>,
    },
    Incident {
        id: String,
        reply: oneshot::Sender<Option<Incident>>,
    },
    Status {
        reply: oneshot::Sender<ActorStatus>,
    },
    Baselines {
        reply: oneshot::Sender<Vec<Baseline>>,
    },
    Baseline {
        endpoint: EndpointKey,
        reply: oneshot::Sender<Option<Baseline>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A cloneable handle to the analysis actor.
#[derive(Clone, Debug)]
pub struct AnalysisHandle {
    sender: mpsc::Sender<Message>,
}

/// When the actor runs its cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// A cycle every `interval` (at least 10 ms).
    pub interval: Duration,
    /// Between cycles, look for new anomalies every [`PROBE_PERIOD`] and run the cycle at once
    /// when one shows (only when the interval is longer than the probe period).
    pub early_detection: bool,
    /// Where the cycle reads the time.
    pub clock: Clock,
}

impl AnalysisHandle {
    /// Spawns the actor that owns `engine`, runs its cycle on `schedule` and saves the state
    /// to `store` after every cycle and resolution, then hands every incident it changed to
    /// `feed` (to be recorded and notified) without waiting. The task ends on
    /// [`shutdown`](Self::shutdown) or when every handle is gone.
    pub fn spawn(
        engine: Engine,
        store: impl StateStore,
        schedule: Schedule,
        feed: IncidentFeed,
    ) -> (Self, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(MAILBOX_CAPACITY);
        let actor = AnalysisActor {
            engine,
            store,
            receiver,
            clock: schedule.clock,
            feed,
            last_cycle: None,
            cycles: 0,
            early_cycles: 0,
            persist_failures: 0,
            cycle_duration: DurationHistogram::default(),
        };
        let task = tokio::spawn(actor.run(schedule.interval, schedule.early_detection));
        (Self { sender }, task)
    }

    /// Runs a cycle now and returns what it found.
    pub async fn analyze_now(&self) -> Result<CycleOutcome, AnalysisStopped> {
        self.ask(|reply| Message::AnalyzeNow { reply }).await
    }

    /// Resolves incident `id` now; its old evidence will not bring it back.
    pub async fn resolve(
        &self,
        id: String,
    ) -> Result<Result<Incident, IncidentError>, AnalysisStopped> {
        self.ask(|reply| Message::Resolve { id, reply }).await
    }

    /// The incidents of `status` (every incident with `None`), in no particular order.
    pub async fn incidents(
        &self,
        status: Option<IncidentStatus>,
    ) -> Result<Vec<Incident>, AnalysisStopped> {
        self.ask(|reply| Message::Incidents { status, reply }).await
    }

    /// Incident `id`, active or resolved, if the engine keeps it.
    pub async fn incident(&self, id: String) -> Result<Option<Incident>, AnalysisStopped> {
        self.ask(|reply| Message::Incident { id, reply }).await
    }

    /// The latest cycle and the actor's counters.
    pub async fn status(&self) -> Result<ActorStatus, AnalysisStopped> {
        self.ask(|reply| Message::Status { reply }).await
    }

    /// Every learned baseline.
    pub async fn baselines(&self) -> Result<Vec<Baseline>, AnalysisStopped> {
        self.ask(|reply| Message::Baselines { reply }).await
    }

    /// The baseline learned for `endpoint`, if the engine has one.
    pub async fn baseline(
        &self,
        endpoint: EndpointKey,
    ) -> Result<Option<Baseline>, AnalysisStopped> {
        self.ask(|reply| Message::Baseline { endpoint, reply })
            .await
    }

    /// Persists the state one last time and stops the actor; returns once it has.
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Message::Shutdown { reply }).await;
    }

    /// Sends the message `ask` builds around a reply channel, and waits for the reply.
    async fn ask<R>(
        &self,
        ask: impl FnOnce(oneshot::Sender<R>) -> Message,
    ) -> Result<R, AnalysisStopped> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(ask(reply))
            .await
            .map_err(|_| AnalysisStopped)?;
        answer.await.map_err(|_| AnalysisStopped)
    }
}

struct AnalysisActor<S> {
    engine: Engine,
    store: S,
    receiver: mpsc::Receiver<Message>,
    clock: Clock,
    feed: IncidentFeed,
    last_cycle: Option<LastCycle>,
    cycles: u64,
    /// Cycles run ahead of the interval because a probe found new evidence.
    early_cycles: u64,
    persist_failures: u64,
    cycle_duration: DurationHistogram,
}

impl<S: StateStore> AnalysisActor<S> {
    async fn run(mut self, interval: Duration, early_detection: bool) {
        let interval = interval.max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let probing = early_detection && interval > PROBE_PERIOD;
        let mut probe = tokio::time::interval_at(Instant::now() + PROBE_PERIOD, PROBE_PERIOD);
        probe.set_missed_tick_behavior(MissedTickBehavior::Skip);
        // The incidents restored at start: the desk learns what it is tracking.
        let kept = self.engine.incidents().all().into_iter().cloned().collect();
        self.feed.publish(kept);
        loop {
            tokio::select! {
                message = self.receiver.recv() => match message {
                    Some(message) => {
                        if let Some(reply) = self.handle(message).await {
                            self.persist().await;
                            let _ = reply.send(());
                            break;
                        }
                    }
                    None => {
                        self.persist().await;
                        break;
                    }
                },
                _ = ticker.tick() => {
                    self.cycle().await;
                }
                _ = probe.tick(), if probing => {
                    if self.engine.has_news(self.clock.now_unix_nanos()) {
                        log::debug!("New anomaly evidence between cycles; running the cycle now.");
                        self.early_cycles += 1;
                        self.cycle().await;
                        ticker.reset();
                    }
                }
            }
        }
        log::info!("cycles={} Analysis stopped.", self.cycles);
    }

    /// Handles one command; returns the reply channel of a shutdown request.
    async fn handle(&mut self, message: Message) -> Option<oneshot::Sender<()>> {
        match message {
            Message::AnalyzeNow { reply } => {
                let outcome = self.cycle().await;
                let _ = reply.send(outcome);
                None
            }
            Message::Resolve { id, reply } => {
                let result = self.engine.resolve(&id, self.clock.now_unix_nanos());
                if let Ok(incident) = &result {
                    log::info!("incident={id} Incident resolved by request.");
                    self.persist().await;
                    self.feed.publish(vec![incident.clone()]);
                }
                let _ = reply.send(result);
                None
            }
            Message::Incidents { status, reply } => {
                let book = self.engine.incidents();
                let incidents = match status {
                    Some(status) => book
                        .all()
                        .into_iter()
                        .filter(|incident| incident.status == status)
                        .cloned()
                        .collect(),
                    None => book.all().into_iter().cloned().collect(),
                };
                let _ = reply.send(incidents);
                None
            }
            Message::Incident { id, reply } => {
                let _ = reply.send(self.engine.incidents().get(&id).cloned());
                None
            }
            Message::Status { reply } => {
                let _ = reply.send(ActorStatus {
                    last_cycle: self.last_cycle.clone(),
                    cycles: self.cycles,
                    early_cycles: self.early_cycles,
                    persist_failures: self.persist_failures,
                    cycle_duration: self.cycle_duration.snapshot(),
                });
                None
            }
            Message::Baselines { reply } => {
                let _ = reply.send(self.engine.snapshot().baselines);
                None
            }
            Message::Baseline { endpoint, reply } => {
                let _ = reply.send(self.engine.baseline(&endpoint).cloned());
                None
            }
            Message::Shutdown { reply } => Some(reply),
        }
    }

    async fn cycle(&mut self) -> CycleOutcome {
        let now = self.clock.now_unix_nanos();
        let started = std::time::Instant::now();
        let report = Arc::new(self.engine.run_cycle(now));
        self.cycle_duration
            .observe_nanos(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        self.cycles += 1;
        self.last_cycle = Some(LastCycle {
            at_unix_nanos: now,
            report: report.clone(),
        });
        let book = self.engine.incidents();
        let changed: Vec<Incident> = report
            .changes
            .iter()
            .filter_map(|change| book.get(change.id()).cloned())
            .collect();
        for change in &report.changes {
            crate::logging::incident_change(change, book.get(change.id()));
        }
        let active = book.active().into_iter().cloned().collect();
        self.persist().await;
        self.feed.publish(changed.clone());
        CycleOutcome {
            at_unix_nanos: now,
            report,
            changed,
            active,
        }
    }

    async fn persist(&mut self) {
        if let Err(error) = self.store.save(&self.engine).await {
            self.persist_failures += 1;
            log::warn!("error={error} Could not persist analysis state; will retry next cycle.");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use aiops_engine::EngineConfig;
    use aiops_telemetry_core::{Collector, Span, SpanId, SpanKind, SpanStatus, TraceId};

    use super::*;
    use crate::persistence::PersistError;

    const MS: u64 = 1_000_000;
    const START_UNIX_NANOS: u64 = 1_700_000_000_000_000_000;
    const INTERVAL: Duration = Duration::from_secs(10);

    /// A state store that counts saves and fails the first `failing` of them.
    #[derive(Clone, Debug, Default)]
    struct CountingStore {
        saves: Arc<AtomicU32>,
        failing: Arc<AtomicU32>,
    }

    impl StateStore for CountingStore {
        fn save(
            &mut self,
            _engine: &Engine,
        ) -> impl Future<Output = Result<(), PersistError>> + Send {
            self.saves.fetch_add(1, Ordering::Relaxed);
            let failed = self
                .failing
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
            std::future::ready(if failed {
                Err(PersistError::Store("store: disk full".to_owned()))
            } else {
                Ok(())
            })
        }
    }

    /// An actor on paused tokio time, its engine's collector, its clock and its store.
    struct Harness {
        analysis: AnalysisHandle,
        collector: Arc<dyn Collector>,
        clock: Clock,
        store: CountingStore,
        started: Instant,
    }

    impl Harness {
        /// Spawns the actor and lets it start its timers.
        async fn spawn(early_detection: bool, store: CountingStore) -> Self {
            let engine = Engine::new(EngineConfig::default()).expect("valid configuration");
            let collector = engine.collector();
            let clock = Clock::tokio_from(START_UNIX_NANOS);
            let schedule = Schedule {
                interval: INTERVAL,
                early_detection,
                clock,
            };
            let started = Instant::now();
            let (analysis, _task) =
                AnalysisHandle::spawn(engine, store.clone(), schedule, IncidentFeed::none());
            settle().await;
            Self {
                analysis,
                collector,
                clock,
                store,
                started,
            }
        }

        /// Moves the paused clock on to `at` after the start, 100 ms at a time, letting the
        /// actor act on every tick that falls due.
        async fn run_until(&self, at: Duration) {
            while Instant::now() < self.started + at {
                let step = (self.started + at - Instant::now()).min(Duration::from_millis(100));
                tokio::time::advance(step).await;
                settle().await;
            }
        }

        /// Ten failing `/payment` requests that ended just now: an error storm.
        fn record_failures(&self) {
            let now = self.clock.now_unix_nanos();
            let spans = (0..10)
                .map(|_| {
                    Span::new(TraceId::random(), SpanId::random(), "shop", "/payment")
                        .with_kind(SpanKind::Server)
                        .with_timing(now - 60 * MS, 50 * MS)
                        .with_http_status(500)
                        .with_status(SpanStatus::Error)
                })
                .collect();
            let _ = self.collector.record_batch(spans);
        }

        async fn cycles(&self) -> (u64, u64) {
            let status = self.analysis.status().await.expect("the actor runs");
            (status.cycles, status.early_cycles)
        }
    }

    /// Lets the actor act on what fell due before the test goes on.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cycles_run_once_per_interval_and_not_before() {
        // Arrange
        let harness = Harness::spawn(false, CountingStore::default()).await;

        // Act + Assert
        harness.run_until(Duration::from_millis(9_900)).await;
        assert_eq!(harness.cycles().await, (0, 0));
        harness.run_until(INTERVAL).await;
        assert_eq!(harness.cycles().await, (1, 0));
        harness.run_until(3 * INTERVAL).await;
        assert_eq!(harness.cycles().await, (3, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn new_evidence_runs_the_cycle_at_the_next_probe_and_restarts_the_interval() {
        // Arrange
        let harness = Harness::spawn(true, CountingStore::default()).await;
        harness.run_until(Duration::from_millis(2_500)).await;

        // Act: an error storm shows between the probes at 2 s and 3 s.
        harness.record_failures();

        // Assert: the probe at 3 s runs the cycle; the next regular one comes a whole interval
        // later (13 s), not at 10 s; the same anomaly is no news to later probes.
        harness.run_until(Duration::from_millis(2_900)).await;
        assert_eq!(harness.cycles().await, (0, 0));
        harness.run_until(Duration::from_secs(3)).await;
        assert_eq!(harness.cycles().await, (1, 1));
        harness.run_until(Duration::from_millis(12_900)).await;
        assert_eq!(harness.cycles().await, (1, 1));
        harness.run_until(Duration::from_secs(13)).await;
        assert_eq!(harness.cycles().await, (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn without_early_detection_new_evidence_waits_for_the_interval() {
        // Arrange
        let harness = Harness::spawn(false, CountingStore::default()).await;
        harness.run_until(Duration::from_millis(2_500)).await;

        // Act
        harness.record_failures();

        // Assert
        harness.run_until(Duration::from_millis(9_900)).await;
        assert_eq!(harness.cycles().await, (0, 0));
        harness.run_until(INTERVAL).await;
        assert_eq!(harness.cycles().await, (1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_save_is_counted_and_retried_after_the_next_cycle() {
        // Arrange: the first save fails.
        let store = CountingStore::default();
        store.failing.store(1, Ordering::Relaxed);
        let harness = Harness::spawn(false, store).await;

        // Act
        harness.run_until(INTERVAL).await;
        let after_first = harness.analysis.status().await.expect("the actor runs");
        harness.run_until(2 * INTERVAL).await;
        let after_second = harness.analysis.status().await.expect("the actor runs");

        // Assert: analysis went on, and the next cycle saved again, successfully.
        assert_eq!((after_first.cycles, after_first.persist_failures), (1, 1));
        assert_eq!((after_second.cycles, after_second.persist_failures), (2, 1));
        assert_eq!(harness.store.saves.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn queries_answer_between_cycles_and_shutdown_saves_once_more() {
        // Arrange
        let harness = Harness::spawn(false, CountingStore::default()).await;
        harness.record_failures();

        // Act
        let outcome = harness
            .analysis
            .analyze_now()
            .await
            .expect("the actor runs");
        let active = harness
            .analysis
            .incidents(Some(IncidentStatus::Active))
            .await
            .expect("the actor runs");
        let one = harness
            .analysis
            .incident(active[0].id.clone())
            .await
            .expect("the actor runs");
        harness.analysis.shutdown().await;

        // Assert
        assert_eq!(outcome.active.len(), 1, "{:?}", outcome.report.anomalies);
        assert_eq!(active.len(), 1);
        assert_eq!(
            one.as_ref().map(|incident| &incident.id),
            Some(&active[0].id)
        );
        assert_eq!(
            harness.store.saves.load(Ordering::Relaxed),
            2,
            "cycle, shutdown"
        );
        assert_eq!(harness.analysis.status().await.err(), Some(AnalysisStopped));
    }
}
