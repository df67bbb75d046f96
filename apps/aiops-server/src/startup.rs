//! Building and running the server: [`Application::build`] wires storage, the engine, the
//! actor and the HTTP server; [`Application::run_until_stopped`] serves until stopped, then
//! drains the span queue and persists the state. Routes are registered by
//! [`configure_routes`].

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use aiops_chaos::Chaos;
use aiops_storage_sqlite::Store;
use aiops_telemetry_core::{ChangeCollector, Collector, Fanout, LogCollector};
use anyhow::Context;
use tokio::task::JoinHandle;

use crate::actor::{AnalysisHandle, Schedule};
use crate::body_deadline::BodyReadTimeout;
use crate::clock::Clock;
use crate::config::Settings;
use crate::connections::{ConnectionGate, overflow_room, refuse_excess};
use crate::guards::AllowedHosts;
use crate::http_server::{Connections, serve};
use crate::notify::Notifier;
use crate::persistence::Persistence;
use crate::pipeline::changes::{ChangeListeners, VersionWatch};
use crate::pipeline::counters::SpanCounters;
use crate::pipeline::logs::LogPipeline;
use crate::pipeline::span_batch::{FLUSH_PERIOD, SpanBatcher};
use crate::pipeline::span_metrics::{MeteredCollector, SpanMetrics};
use crate::process_stats::ProcessStats;
use crate::reload::{Reloader, Resolve};
use crate::retention::spawn_retention;
use crate::routes::{DemoRoutes, configure_engine_routes, configure_routes};
use crate::shop::handlers::ShopClient;
use crate::shop::table::{SHOP_SERVICE, shop_paths};
use crate::shop::warmup;
use crate::state::AppState;
use crate::views::format::EndpointNaming;

/// How long in-flight requests get to finish once the server is asked to stop.
const SHUTDOWN_GRACE: u64 = 10;

/// How often spans older than the retention period are deleted.
const RETENTION_SWEEP: Duration = Duration::from_secs(60);

/// A built server, listening but not yet serving.
pub struct Application {
    address: SocketAddr,
    server: Server,
    state: web::Data<AppState>,
    actor: JoinHandle<()>,
    retention: JoinHandle<()>,
    batch_flusher: JoinHandle<()>,
    notify_tasks: Vec<JoinHandle<()>>,
    store: Store,
    handle_signals: bool,
    /// The settings the server started with, and how to read them again on SIGHUP.
    started_with: Settings,
    reloader: Option<Reloader>,
    db_display: String,
    demo: bool,
    warmup_requests: u32,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Stops a running [`Application`] gracefully from elsewhere (tests, signal handlers).
#[derive(Clone)]
pub struct StopHandle(ServerHandle);

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopHandle")
    }
}

impl StopHandle {
    /// Stops accepting connections, lets in-flight requests finish, and makes
    /// `run_until_stopped` drain and persist before it returns.
    pub async fn stop(&self) {
        self.0.stop(true).await;
    }
}

impl Application {
    /// Checks the settings, binds the listener (`bind` may use port 0), opens the database,
    /// restores the engine and spawns the analysis actor.
    pub async fn build(config: Settings) -> anyhow::Result<Self> {
        config.validate()?;
        let Settings {
            http,
            detection,
            storage,
            shop,
            notify,
            ..
        } = &config;
        // Bind first: a taken port should fail before the database is touched.
        let listener =
            TcpListener::bind(&http.bind).with_context(|| format!("binding {}", http.bind))?;
        let address = listener.local_addr().context("reading the bound address")?;
        let store_config = storage.store_config();
        let store = tokio::task::spawn_blocking(move || Store::open(store_config))
            .await
            .context("opening the database")?
            .with_context(|| format!("opening the database {}", storage.db.display()))?;

        let mut persistence = Persistence::new(store.clone());
        let engine = persistence.load(config.engine_config()).await?;
        let writer = store.writer();
        // Every log record and change goes to the store first, then to these listeners, in
        // order: the one place where collectors of logs and changes join.
        let log_listeners: Vec<Arc<dyn LogCollector>> = vec![engine.log_collector()];
        let change_listeners =
            ChangeListeners::new(vec![engine.change_collector() as Arc<dyn ChangeCollector>]);
        let logs = Arc::new(LogPipeline::new(store.log_writer(), log_listeners));
        let versions: Arc<dyn Collector> = Arc::new(
            VersionWatch::new(store.log_writer(), change_listeners.clone())
                .knowing(&engine.versions()),
        );
        let span_metrics = Arc::new(SpanMetrics::default());
        let metered: Arc<dyn Collector> = Arc::new(MeteredCollector::new(
            engine.collector(),
            span_metrics.clone(),
        ));
        let live: Arc<dyn Collector> = Arc::new(Fanout::new(vec![metered, versions]));
        let collector: Arc<dyn Collector> =
            Arc::new(Fanout::new(vec![writer.clone(), live.clone()]));
        let engine_reader = engine.reader();
        let bound_url = format!("http://{}", loopback(address));
        let (notifier, notify_tasks) = Notifier::spawn(notify, store.clone(), &bound_url).await?;
        let schedule = Schedule {
            interval: detection.analysis_interval,
            early_detection: detection.early_detection,
            clock: Clock::Wall,
        };
        let (analysis, actor) =
            AnalysisHandle::spawn(engine, persistence, schedule, notifier.feed());
        let retention = spawn_retention(store.clone(), storage.retention, RETENTION_SWEEP);

        let chaos = Chaos::new(shop_paths(), shop.chaos_seed);
        chaos.set_enabled(shop.chaos && shop.demo);
        let hang = (detection.timeout.max(shop.checkout_timeout) + Duration::from_secs(1)).min(
            Duration::from_secs_f64(aiops_chaos::MAX_DURATION_MS / 1000.0),
        );
        let settings = crate::state::Settings {
            api_token: http.api_token.clone(),
            max_body_bytes: http.max_body_bytes,
            ingest: http.ingest_limits(),
            span_attributes: Arc::new(http.kept_attributes()),
            telemetry_enabled: shop.telemetry,
            checkout_timeout: shop.checkout_timeout,
            default_hang: hang,
            analysis_window: detection.analysis_window,
            analysis_interval: detection.analysis_interval,
            analyzer: config.engine_config().analyzer,
            endpoint_naming: EndpointNaming::by_path(SHOP_SERVICE),
            chaos_off: config.chaos_off_reason(),
        };
        let counters = Arc::new(SpanCounters::default());
        let request_spans = Arc::new(SpanBatcher::new(collector.clone(), counters.clone()));
        let batch_flusher = spawn_batch_flusher(request_spans.clone());
        let state = web::Data::new(AppState {
            settings,
            chaos: Arc::new(chaos),
            collector,
            live,
            refusals: Default::default(),
            log_refusals: Default::default(),
            logs,
            change_listeners,
            counters,
            request_spans,
            span_metrics,
            analysis,
            notifier,
            engine: engine_reader,
            store: store.clone(),
            writer,
            started_unix_nanos: crate::clock::now_unix_nanos(),
        });

        let base_url = bound_url;
        let fallback_client = ShopClient::new(base_url.clone(), shop.checkout_timeout)
            .context("building the HTTP client of /checkout")?;
        let server_state = state.clone();
        let request_spans = web::Data::from(state.request_spans.clone());
        let max_body_bytes = http.max_body_bytes;
        let ingest_limits = http.ingest_limits();
        let checkout_timeout = shop.checkout_timeout;
        let body_timeout = web::Data::new(BodyReadTimeout(http.body_read_timeout));
        let demo = shop.demo;
        let demo_routes = web::Data::new(DemoRoutes(demo));
        let allowed_hosts = web::Data::new(AllowedHosts::for_bind(
            address.ip(),
            &http.allowed_host_names(),
        ));
        // Connections past the limit are still accepted, within the overflow room, to be
        // answered 503 at once rather than left in the listen backlog (connections.rs).
        let overflow = overflow_room(http.max_connections);
        let accepted = connection_limit(http.max_connections + overflow);
        let gate = ConnectionGate::new(accepted.saturating_sub(overflow).max(1));
        let on_connect_gate = gate.clone();
        let app = move || {
            // One client per worker keeps each connection on the runtime that opened it.
            let client = ShopClient::new(base_url.clone(), checkout_timeout)
                .unwrap_or_else(|_| fallback_client.clone());
            App::new()
                .wrap(from_fn(refuse_excess))
                .app_data(server_state.clone())
                .app_data(request_spans.clone())
                .app_data(allowed_hosts.clone())
                .app_data(body_timeout.clone())
                .app_data(demo_routes.clone())
                .app_data(web::Data::new(client))
                .configure(|cfg| {
                    if demo {
                        configure_routes(cfg, max_body_bytes, ingest_limits);
                    } else {
                        configure_engine_routes(cfg, max_body_bytes, ingest_limits);
                    }
                })
        };
        let workers = if http.workers > 0 {
            http.workers
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        };
        let connections = Connections {
            workers,
            per_worker: accepted.div_ceil(workers),
            request_head_timeout: http.request_head_timeout,
            client_disconnect_timeout: http.client_disconnect_timeout,
            keep_alive: http.keep_alive,
            shutdown_grace: SHUTDOWN_GRACE,
        };
        let server = serve(listener, connections, app, move |connection, extensions| {
            on_connect_gate.on_connect(connection, extensions);
        })
        .with_context(|| format!("listening on {address}"))?;
        Ok(Self {
            address,
            server,
            state,
            actor,
            retention,
            batch_flusher,
            notify_tasks,
            store,
            handle_signals: false,
            started_with: config.clone(),
            reloader: None,
            db_display: storage.db.display().to_string(),
            demo: shop.demo,
            // Without the demo shop there is nothing to warm up.
            warmup_requests: if shop.demo { shop.warmup_requests } else { 0 },
        })
    }

    /// Makes [`Application::run_until_stopped`] stop gracefully on SIGINT or SIGTERM (the
    /// binary does; tests stop the server with a [`StopHandle`]).
    pub fn stop_on_signals(mut self) -> Self {
        self.handle_signals = true;
        self
    }

    /// Makes SIGHUP (when signals are handled) read the configuration again with `resolve`
    /// and apply what may change while running (see [`crate::reload`]); without it, SIGHUP is
    /// logged and ignored.
    pub fn reload_on_hangup(mut self, resolve: Resolve) -> Self {
        self.reloader = Some(Reloader::new(self.started_with.clone(), resolve));
        self
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A handle that stops the server gracefully.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.server.handle())
    }

    /// Serves until stopped (by a [`StopHandle`], or SIGINT / SIGTERM when configured), then
    /// persists the engine's state and drains the span queue into the database.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let reloader = self.reloader.take();
        let signals = self
            .handle_signals
            .then(|| tokio::spawn(stop_on_signal(handle, Signals::listen(), reloader)));
        log::info!(
            "address={} db={} demo={} version={} commit={} Listening.",
            self.address,
            self.db_display,
            if self.demo { "on" } else { "off" },
            crate::build_info::VERSION,
            crate::build_info::COMMIT
        );
        let warmup = (self.warmup_requests > 0).then(|| {
            tokio::spawn(warmup::run(
                format!("http://{}", loopback(self.address)),
                self.warmup_requests,
            ))
        });

        let served = self.server.await;
        log::info!("Stopped serving; saving state and draining the span queue.");
        if let Some(warmup) = warmup {
            warmup.abort();
        }
        self.retention.abort();
        // No request is in flight any more: what the workers gathered goes to the engine and
        // the store before they shut down.
        self.batch_flusher.abort();
        self.state.request_spans.flush_pending();
        self.state.analysis.shutdown().await;
        let _ = self.actor.await;
        for task in &self.notify_tasks {
            task.abort();
        }
        let store = self.store.clone();
        let drained = tokio::task::spawn_blocking(move || store.shutdown())
            .await
            .context("draining the span queue")?;
        if let Err(error) = drained {
            log::warn!("error={error} The span queue could not be fully drained.");
        }
        if let Some(signals) = signals {
            signals.abort();
        }
        log::info!("Stopped.");
        served.context("serving HTTP")
    }
}

/// Descriptors kept free of connections: the database, its WAL, logs, the blocking pool's files.
const RESERVED_DESCRIPTORS: usize = 128;

/// `configured` connections, or fewer when the open-file limit would not hold them beside
/// [`RESERVED_DESCRIPTORS`]: past the limit, `accept` fails and nothing is answered.
fn connection_limit(configured: usize) -> usize {
    let Some(max_fds) = ProcessStats::read().max_fds else {
        return configured;
    };
    let room = usize::try_from(max_fds)
        .unwrap_or(usize::MAX)
        .saturating_sub(RESERVED_DESCRIPTORS)
        .max(16);
    if configured > room {
        log::warn!(
            "max_connections={configured} open_file_limit={max_fds} serving={room} The open-file limit holds fewer connections than configured; raise it (ulimit -n, LimitNOFILE=) to serve more."
        );
        room
    } else {
        configured
    }
}

/// Hands on the request spans the worker threads gathered, every [`FLUSH_PERIOD`].
fn spawn_batch_flusher(batcher: Arc<SpanBatcher>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(FLUSH_PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            batcher.flush_pending();
        }
    })
}

/// The loopback address to reach a server bound to `address` (an unspecified bind address
/// such as 0.0.0.0 is reached through 127.0.0.1).
fn loopback(address: SocketAddr) -> SocketAddr {
    let mut target = address;
    if address.ip().is_unspecified() {
        target.set_ip(match address {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    target
}

/// Stops the server gracefully on the first SIGINT or SIGTERM; a second one exits at once,
/// without waiting for the drain.
async fn stop_on_signal(
    handle: ServerHandle,
    mut signals: Signals,
    mut reloader: Option<Reloader>,
) {
    if !signals.next_stop(&mut reloader).await {
        return;
    }
    log::info!("Signal received; shutting down gracefully (a second signal exits at once).");
    tokio::spawn(async move { handle.stop(true).await });
    if signals.next_stop(&mut reloader).await {
        log::warn!("Second signal received; exiting without saving state or draining spans.");
        std::process::exit(130);
    }
}

/// The signals the server answers, listened to from the moment [`Signals::listen`] returns:
/// SIGINT and SIGTERM stop it; SIGHUP, whose default would end the process without saving,
/// reloads the configuration (see [`crate::reload`]), or is logged and ignored when there is
/// nothing to reload.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(listener) => Some(listener),
                Err(error) => {
                    log::warn!("error={error} signal={name} Cannot listen for the signal.");
                    None
                }
            };
            Self {
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
                hangup: listen(SignalKind::hangup(), "SIGHUP"),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Waits for SIGINT or SIGTERM, reloading on any SIGHUP meanwhile; false when no stop
    /// signal can be listened to.
    async fn next_stop(&mut self, reloader: &mut Option<Reloader>) -> bool {
        #[cfg(unix)]
        {
            if self.interrupt.is_none() && self.terminate.is_none() {
                return false;
            }
            loop {
                tokio::select! {
                    Some(()) = async { self.interrupt.as_mut()?.recv().await } => return true,
                    Some(()) = async { self.terminate.as_mut()?.recv().await } => return true,
                    Some(()) = async { self.hangup.as_mut()?.recv().await } => match reloader {
                        // An error is logged by the reload; the server goes on as it was.
                        Some(reloader) => drop(reloader.reload()),
                        None => log::warn!(
                            "signal=SIGHUP The configuration is not reloaded here; restart to apply changes. Ignored."
                        ),
                    },
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = reloader;
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}
