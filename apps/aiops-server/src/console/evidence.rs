//! The figures around an incident, read from the stored spans: per endpoint, latency and error
//! rate in short buckets from a few minutes before the detection to its end, beside the root
//! cause's baseline; and the first failing trace.

use aiops_engine::Incident;
use aiops_telemetry_core::{EndpointKey, TimeWindow, WindowStats};

use super::chart::{Band, Chart, Line, Mark};
use super::waterfall::Waterfall;
use aiops_storage_sqlite::{Store, StoreError};

use crate::routes::database::query_committed;
use crate::routes::traces::load_trace;
use crate::state::AppState;
use crate::views::endpoint::BaselineFigures;
use crate::views::format::EndpointNaming;

const SECOND: u64 = 1_000_000_000;
/// The charts start this long before the detection.
const LEAD: u64 = 3 * 60 * SECOND;
/// ... and end this long after the resolution (or now, for an active incident).
const TAIL: u64 = 60 * SECOND;
/// The longest range charted: the hour from the detection's lead.
const MAX_RANGE: u64 = 3600 * SECOND;
/// Ranges up to this long are charted from every stored span; longer ones from the minute
/// rollups.
const EXACT_RANGE: u64 = 10 * 60 * SECOND;
/// Points per chart.
const BUCKETS: u64 = 60;
/// The endpoints charted: the root cause and the first affected ones.
const MAX_ENDPOINTS: usize = 5;

/// The range charted for `incident` at `now`, cut into buckets of whole seconds.
pub fn chart_buckets(incident: &Incident, now: u64) -> Vec<TimeWindow> {
    let start = incident.first_detected_unix_nanos.saturating_sub(LEAD) / SECOND * SECOND;
    let end = incident
        .resolved_at_unix_nanos
        .map_or(now, |resolved| resolved.saturating_add(TAIL).min(now))
        .max(incident.last_updated_unix_nanos)
        .min(start + MAX_RANGE)
        .max(start + BUCKETS * SECOND);
    let width = (end - start).div_ceil(BUCKETS).div_ceil(SECOND).max(1) * SECOND;
    (0..BUCKETS)
        .map(|index| start + index * width)
        .take_while(|bucket| *bucket < end)
        .map(|bucket| TimeWindow::new(bucket, bucket + width))
        .collect()
}

/// The endpoints to chart: the root cause's first, then the affected ones.
pub fn charted_endpoints(incident: &Incident) -> Vec<EndpointKey> {
    let mut keys = vec![incident.root_cause.endpoint_key()];
    for key in &incident.affected_endpoints {
        if keys.len() >= MAX_ENDPOINTS {
            break;
        }
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// The latency and error-rate charts of `incident`; `None` when the database does not answer.
pub async fn charts(state: &AppState, incident: &Incident, now: u64) -> Option<(Chart, Chart)> {
    let naming = &state.settings.endpoint_naming;
    let keys = charted_endpoints(incident);
    let buckets = chart_buckets(incident, now);
    let timeout_ms = state.settings.analyzer.timeout_ms;
    let wanted = keys.clone();
    let figures = query_committed(state, move |store| {
        if exact(&buckets) {
            exact_figures(store, &buckets, &wanted, timeout_ms)
        } else {
            minute_figures(store, &buckets, &wanted)
        }
    })
    .await
    .ok()?;
    let baseline = state
        .analysis
        .baseline(incident.root_cause.endpoint_key())
        .await
        .ok()
        .flatten()
        .map(|baseline| BaselineFigures::new(&baseline, &state.settings.analyzer));
    Some(build_charts(
        naming,
        incident,
        &keys,
        &figures,
        baseline.as_ref(),
    ))
}

/// One bucket of a chart: its window, and per charted endpoint its figures, if it had requests.
type Bucket = (TimeWindow, Vec<Option<WindowStats>>);

/// Whether `buckets` span at most [`EXACT_RANGE`]: short enough to figure from every stored
/// span.
fn exact(buckets: &[TimeWindow]) -> bool {
    match (buckets.first(), buckets.last()) {
        (Some(first), Some(last)) => last.end_unix_nanos - first.start_unix_nanos <= EXACT_RANGE,
        _ => true,
    }
}

/// Per bucket, the exact figures of each of `keys`, from the stored spans.
fn exact_figures(
    store: &Store,
    buckets: &[TimeWindow],
    keys: &[EndpointKey],
    timeout_ms: f64,
) -> Result<Vec<Bucket>, StoreError> {
    buckets
        .iter()
        .map(|bucket| {
            let stats = store.window_stats(*bucket, timeout_ms)?;
            let wanted = keys
                .iter()
                .map(|key| {
                    stats
                        .iter()
                        .find(|(found, _)| found == key)
                        .map(|(_, stats)| *stats)
                })
                .collect();
            Ok((*bucket, wanted))
        })
        .collect()
}

/// Per minute of `buckets`' range, the figures of each of `keys` from the minute rollups: a
/// long incident's hour costs one indexed row per endpoint and minute, not a read of every
/// span in it.
fn minute_figures(
    store: &Store,
    buckets: &[TimeWindow],
    keys: &[EndpointKey],
) -> Result<Vec<Bucket>, StoreError> {
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Ok(Vec::new());
    };
    let minute = 60 * SECOND;
    let start = first.start_unix_nanos / minute * minute;
    let range = TimeWindow::new(start, last.end_unix_nanos);
    let minutes = (last.end_unix_nanos - start).div_ceil(minute);
    let mut figures: Vec<Bucket> = (0..minutes)
        .map(|index| {
            let at = start + index * minute;
            (TimeWindow::new(at, at + minute), vec![None; keys.len()])
        })
        .collect();
    for (slot, key) in keys.iter().enumerate() {
        for rollup in store.rollups(Some(key), range)? {
            let index = ((rollup.minute_start_unix_nanos.saturating_sub(start)) / minute) as usize;
            if let Some((_, stats)) = figures.get_mut(index) {
                stats[slot] = Some(WindowStats {
                    count: rollup.count,
                    errors: rollup.errors,
                    mean_ms: rollup.mean_ms(),
                    p50_ms: rollup.latency_quantile_ms(0.5),
                    p95_ms: rollup.latency_quantile_ms(0.95),
                    p99_ms: rollup.latency_quantile_ms(0.99),
                    ..WindowStats::default()
                });
            }
        }
    }
    Ok(figures)
}

/// The two charts from bucketed `figures` of `keys`.
pub fn build_charts(
    naming: &EndpointNaming,
    incident: &Incident,
    keys: &[EndpointKey],
    figures: &[Bucket],
    baseline: Option<&BaselineFigures>,
) -> (Chart, Chart) {
    let x: Vec<f64> = figures
        .iter()
        .map(|(bucket, _)| bucket.start_unix_nanos as f64 / 1e9)
        .collect();
    let line = |index: usize, value: &dyn Fn(&WindowStats) -> f64| Line {
        label: naming.endpoint(&keys[index]),
        values: figures
            .iter()
            .map(|(_, stats)| {
                stats[index]
                    .as_ref()
                    .filter(|stats| stats.count > 0)
                    .map(value)
                    .filter(|value| value.is_finite())
                    .map(|value| (value * 100.0).round() / 100.0)
            })
            .collect(),
    };
    let mut marks = vec![Mark {
        at: incident.first_detected_unix_nanos as f64 / 1e9,
        label: "detected".to_owned(),
    }];
    if let Some(resolved) = incident.resolved_at_unix_nanos {
        marks.push(Mark {
            at: resolved as f64 / 1e9,
            label: "resolved".to_owned(),
        });
    }
    let root = naming.endpoint(&incident.root_cause.endpoint_key());
    let latency = Chart {
        title: "p95 latency".to_owned(),
        unit: "ms".to_owned(),
        x: x.clone(),
        lines: (0..keys.len())
            .map(|index| line(index, &|stats| stats.p95_ms))
            .collect(),
        band: baseline.and_then(|baseline| {
            Some(Band {
                low_label: Some(format!("{root} baseline mean")),
                low: baseline.avg_latency_ms?,
                high_label: format!("{root} baseline p95"),
                high: baseline.p95_latency_ms?,
            })
        }),
        marks: marks.clone(),
    };
    let errors = Chart {
        title: "Error rate".to_owned(),
        unit: "%".to_owned(),
        x,
        lines: (0..keys.len())
            .map(|index| line(index, &|stats| stats.error_rate() * 100.0))
            .collect(),
        band: baseline.and_then(|baseline| {
            Some(Band {
                low_label: None,
                low: 0.0,
                high_label: format!("{root} baseline"),
                high: baseline.error_rate? * 100.0,
            })
        }),
        marks,
    };
    (latency, errors)
}

/// The first failing trace of `incident` as a waterfall, and the span to light; `None` when no
/// trace was sampled or it is no longer kept.
pub async fn first_failing_trace(
    state: &AppState,
    incident: &Incident,
) -> Option<(Waterfall, String)> {
    let span = incident.root_cause.first_failing_span.as_ref()?;
    let spans = load_trace(state, span.trace_id).await.ok()?;
    Some((
        Waterfall::new(&state.settings.endpoint_naming, &spans),
        span.span_id.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use aiops_storage_sqlite::StoreConfig;
    use aiops_telemetry_core::{Collector, Span, SpanId, TraceId};

    use super::*;

    const T0: u64 = 1_768_905_000_000_000_000; // 2026-01-20T10:30:00Z, a minute's start

    /// A store holding, for `/payment`, one request a second for `minutes` minutes, every
    /// tenth failing, each taking `10 + second % 7` ms.
    fn store_with(minutes: u64) -> Store {
        let store = Store::open(StoreConfig::in_memory()).expect("opens");
        let spans: Vec<Span> = (0..minutes * 60)
            .map(|second| {
                let span = Span::new(TraceId::random(), SpanId::random(), "shop", "/payment")
                    .with_timing(T0 + second * SECOND, (10 + second % 7) * 1_000_000);
                if second % 10 == 0 {
                    span.with_http_status(500)
                } else {
                    span.with_http_status(200)
                }
            })
            .collect();
        let writer = store.writer();
        assert_eq!(writer.record_batch(spans).dropped, 0);
        writer.flush().expect("flushes");
        store
    }

    #[test]
    fn a_long_range_is_charted_per_minute_from_the_rollups_with_the_exact_counts() {
        let store = store_with(20);
        let key = EndpointKey::new("shop", "/payment");
        let buckets: Vec<TimeWindow> = (0..60)
            .map(|index| TimeWindow::new(T0 + index * 20 * SECOND, T0 + (index + 1) * 20 * SECOND))
            .collect();
        assert!(!exact(&buckets), "20 minutes are read from the rollups");

        let minutes =
            minute_figures(&store, &buckets, std::slice::from_ref(&key)).expect("queries");
        let exact_ones = exact_figures(&store, &buckets, &[key], 1_000.0).expect("queries");

        assert_eq!(minutes.len(), 20);
        let total = |figures: &[Bucket]| {
            figures
                .iter()
                .filter_map(|(_, stats)| stats[0])
                .fold((0, 0), |(count, errors), stats| {
                    (count + stats.count, errors + stats.errors)
                })
        };
        assert_eq!(total(&minutes), (1200, 120));
        assert_eq!(total(&minutes), total(&exact_ones));
        let first = minutes[0].1[0].expect("the first minute has requests");
        assert!((10.0..=20.0).contains(&first.p95_ms), "{}", first.p95_ms);
    }
}
