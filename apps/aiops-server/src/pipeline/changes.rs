//! Changes: the deployments, configuration changes and feature flags reported through the API,
//! and the deployments the telemetry shows ([`VersionWatch`]: a service's spans begin to carry
//! a `service.version` never seen on it). Both are stored and handed to the listeners (every
//! other [`ChangeCollector`], built in `startup`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aiops_engine::ServiceVersions;
use aiops_storage_sqlite::LogWriter;
use aiops_telemetry_core::{
    Change, ChangeCollector, ChangeKind, ChangeSource, Collector, CollectorError, RecordOutcome,
    Span, SpanText,
};

/// Where accepted changes go besides the store.
#[derive(Clone, Default)]
pub struct ChangeListeners(Vec<Arc<dyn ChangeCollector>>);

impl ChangeListeners {
    /// The listeners, in order.
    pub fn new(listeners: Vec<Arc<dyn ChangeCollector>>) -> Self {
        Self(listeners)
    }

    /// Hands `change` to every listener.
    pub fn tell(&self, change: &Change) {
        for listener in &self.0 {
            let _ = listener.record_change(change.clone());
        }
    }
}

impl std::fmt::Debug for ChangeListeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ChangeListeners")
            .field(&self.0.len())
            .finish()
    }
}

/// Versions remembered per service: enough for every version of a long rolling deployment.
const MAX_VERSIONS_PER_SERVICE: usize = 32;

/// Services whose versions are watched; spans of services past the cap are not.
const MAX_SERVICES: usize = 10_000;

/// A [`Collector`] that only reads spans: when a service's spans carry a `service.version`
/// never seen on that service before, and the service had a version already, it records an
/// observed deployment (the previous version, the new one, the time of the first span that
/// carried it). The first version seen on a service is not a change (the engine may have
/// started after it was deployed). A version seen before is not a new change either: while a
/// rolling or canary deployment runs, spans alternate between two versions, and a rollback
/// to a version the engine has seen is reported through `POST /aiops/changes`.
pub struct VersionWatch {
    services: Mutex<HashMap<SpanText, Versions>>,
    store: Arc<LogWriter>,
    listeners: ChangeListeners,
}

struct Versions {
    current: SpanText,
    seen: Vec<SpanText>,
}

impl VersionWatch {
    /// Observed changes go to `store`, then to `listeners`.
    pub fn new(store: Arc<LogWriter>, listeners: ChangeListeners) -> Self {
        Self {
            services: Mutex::new(HashMap::new()),
            store,
            listeners,
        }
    }

    /// Remembers the versions each service was seen running before a restart (the engine's
    /// saved ones), so that a version first seen after it is still a deployment.
    pub fn knowing(self, saved: &[ServiceVersions]) -> Self {
        {
            let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
            for service in saved.iter().take(MAX_SERVICES) {
                let Some(current) = service
                    .versions
                    .iter()
                    .max_by_key(|v| v.last_seen_unix_nanos)
                else {
                    continue;
                };
                let skip = service
                    .versions
                    .len()
                    .saturating_sub(MAX_VERSIONS_PER_SERVICE);
                services.insert(
                    SpanText::from(service.service.clone()),
                    Versions {
                        current: SpanText::from(current.version.clone()),
                        seen: service
                            .versions
                            .iter()
                            .skip(skip)
                            .map(|v| SpanText::from(v.version.clone()))
                            .collect(),
                    },
                );
            }
        }
        self
    }

    /// The deployments `spans` show, as the watch's memory moves on.
    fn observe(&self, spans: &[Span]) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        for span in spans {
            let Some(version) = span.attribute("service.version") else {
                continue;
            };
            if let Some(known) = services.get_mut(span.service.as_str()) {
                if known.current == version {
                    continue;
                }
                if let Some(seen) = known.seen.iter().find(|v| v.as_str() == version) {
                    known.current = seen.clone();
                    continue;
                }
                let version = SpanText::copied(version);
                changes.push(Change {
                    service: span.service.clone(),
                    kind: ChangeKind::Deployment,
                    time_unix_nanos: span.start_unix_nanos,
                    version: Some(version.clone()),
                    previous_version: Some(known.current.clone()),
                    description: None,
                    source: ChangeSource::Observed,
                });
                if known.seen.len() >= MAX_VERSIONS_PER_SERVICE {
                    known.seen.remove(0);
                }
                known.seen.push(version.clone());
                known.current = version;
            } else if services.len() < MAX_SERVICES {
                let version = SpanText::copied(version);
                services.insert(
                    span.service.clone(),
                    Versions {
                        current: version.clone(),
                        seen: vec![version],
                    },
                );
            }
        }
        changes
    }
}

impl Collector for VersionWatch {
    fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
        self.record_borrowed(&spans)
    }

    fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
        for change in self.observe(spans) {
            log::info!(
                "service={} from={} to={} Observed a deployment.",
                change.service,
                change.previous_version.as_deref().unwrap_or(""),
                change.version.as_deref().unwrap_or("")
            );
            self.listeners.tell(&change);
            if self.store.record_change(change).dropped > 0 {
                log::warn!("An observed deployment was not stored: too many changes queued.");
            }
        }
        RecordOutcome::accepted(spans.len())
    }

    fn flush(&self) -> Result<(), CollectorError> {
        Ok(())
    }
}

impl std::fmt::Debug for VersionWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionWatch").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use aiops_storage_sqlite::{Store, StoreConfig};
    use aiops_telemetry_core::{LogCollector, SpanId, TraceId};

    use super::*;

    fn span(service: &str, version: &str, start: u64) -> Span {
        Span::new(
            TraceId::random(),
            SpanId::random(),
            service.to_owned(),
            "GET /",
        )
        .with_timing(start, 1)
        .with_attribute("service.version", version.to_owned())
    }

    #[test]
    fn a_new_version_is_a_deployment_but_first_sightings_and_alternation_are_not() {
        let store = Store::open(StoreConfig::in_memory()).expect("opens");
        let watch = VersionWatch::new(store.log_writer(), ChangeListeners::default());
        let _ = watch.record_borrowed(&[
            span("pricing", "1.0", 1),
            span("cart", "7", 2),
            span("pricing", "1.0", 3),
            span("pricing", "1.1", 4),
            span("pricing", "1.0", 5),
            span("pricing", "1.1", 6),
            Span::new(TraceId::random(), SpanId::random(), "pricing", "GET /"),
        ]);
        store.log_writer().flush_logs().expect("flushes");
        let changes = store.changes(None, None, 10).expect("lists");
        assert_eq!(changes.len(), 1, "{changes:?}");
        let change = &changes[0].change;
        assert_eq!(
            (
                change.service.as_str(),
                change.previous_version.as_deref(),
                change.version.as_deref(),
                change.time_unix_nanos,
                change.source,
                change.kind
            ),
            (
                "pricing",
                Some("1.0"),
                Some("1.1"),
                4,
                ChangeSource::Observed,
                ChangeKind::Deployment
            )
        );
    }

    #[test]
    fn versions_seen_before_a_restart_make_the_next_one_a_deployment() {
        let store = Store::open(StoreConfig::in_memory()).expect("opens");
        let seen = |version: &str, at: u64| aiops_engine::ObservedVersion {
            version: version.to_owned(),
            first_seen_unix_nanos: at,
            last_seen_unix_nanos: at + 1,
        };
        let watch = VersionWatch::new(store.log_writer(), ChangeListeners::default()).knowing(&[
            ServiceVersions {
                service: "pricing".into(),
                versions: vec![seen("0.9", 1), seen("1.0", 3)],
            },
        ]);
        let _ = watch.record_borrowed(&[
            span("pricing", "1.1", 10),
            span("pricing", "1.0", 11),
            span("pricing", "0.9", 12),
        ]);
        store.log_writer().flush_logs().expect("flushes");
        let changes = store.changes(None, None, 10).expect("lists");
        let versions: Vec<_> = changes
            .iter()
            .map(|c| {
                (
                    c.change.previous_version.as_deref(),
                    c.change.version.as_deref(),
                )
            })
            .collect();
        assert_eq!(versions, [(Some("1.0"), Some("1.1"))], "{changes:?}");
    }
}
