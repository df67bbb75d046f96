//! The figures around an incident, read from the stored spans: per endpoint, latency and error
//! rate in short buckets from a few minutes before the detection to its end, beside the root
//! cause's baseline; and the first failing trace.

use aiops_engine::Incident;
use aiops_telemetry_core::{EndpointKey, TimeWindow, WindowStats};

use super::chart::{Band, Chart, Line, Mark};
use super::waterfall::Waterfall;
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
        buckets
            .iter()
            .map(|bucket| {
                let stats = store.window_stats(*bucket, timeout_ms)?;
                Ok((
                    *bucket,
                    wanted
                        .iter()
                        .map(|key| {
                            stats
                                .iter()
                                .find(|(found, _)| found == key)
                                .map(|(_, stats)| *stats)
                        })
                        .collect::<Vec<_>>(),
                ))
            })
            .collect::<Result<Vec<_>, _>>()
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

type Figures = [(TimeWindow, Vec<Option<WindowStats>>)];

/// The two charts from bucketed `figures` of `keys`.
pub fn build_charts(
    naming: &EndpointNaming,
    incident: &Incident,
    keys: &[EndpointKey],
    figures: &Figures,
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
