//! Properties of root cause analysis on arbitrary (including nonsensical) span data.

use crate::common::anomaly;
use aiops_analyzer::{AnomalyKind, Config};
use aiops_rca::{Rca, RcaConfig};
use aiops_telemetry_core::{Span, SpanId, TraceId};
use proptest::prelude::*;

const SERVICES: [&str; 3] = ["a", "b", "c"];

fn arbitrary_span() -> impl Strategy<Value = Span> {
    (
        (0u8..2, 1u8..10, proptest::option::of(1u8..10)),
        0usize..3,
        0u64..10_000_000_000,
        0u64..10_000_000_000,
        prop_oneof![Just(200u16), Just(500), Just(504)],
    )
        .prop_map(|((trace, id, parent), service, start, duration, status)| {
            let span_id = |n: u8| SpanId::from_bytes([0, 0, 0, 0, 0, 0, 0, n]);
            let mut span = Span::new(
                TraceId::from_bytes([trace + 1; 16]),
                span_id(id),
                SERVICES[service],
                format!("/{}", SERVICES[service]),
            )
            .with_timing(start, duration)
            .with_http_status(status);
            span.parent_span_id = parent.map(span_id);
            span
        })
}

fn arbitrary_kind() -> impl Strategy<Value = AnomalyKind> {
    prop_oneof![
        Just(AnomalyKind::LatencySpike),
        Just(AnomalyKind::ErrorStorm),
        Just(AnomalyKind::Timeout),
    ]
}

proptest! {
    #[test]
    fn every_anomaly_lands_in_exactly_one_draft_with_a_confidence_in_range(
        learned in proptest::collection::vec(arbitrary_span(), 0..30),
        sampled in proptest::collection::vec(arbitrary_span(), 0..30),
        kinds in proptest::collection::vec((arbitrary_kind(), 0usize..3), 1..5),
    ) {
        let mut rca = Rca::new(RcaConfig::default(), &Config::default());
        rca.learn(&[learned], |_| true);
        let anomalies: Vec<_> = kinds
            .iter()
            .map(|&(kind, service)| {
                let name = SERVICES[service];
                anomaly(kind, name, &format!("/{name}"), 500.0, 50.0)
            })
            .collect();

        let drafts = rca.explain(&anomalies, &[sampled]);

        let explained: usize = drafts.iter().map(|d| d.anomalies.len()).sum();
        prop_assert_eq!(explained, anomalies.len());
        for draft in &drafts {
            let root = &draft.root_cause;
            prop_assert!((0.0..=1.0).contains(&root.confidence));
            prop_assert!(root.candidates.iter().all(|c| (0.0..=1.0).contains(&c.score)));
            prop_assert_eq!(&draft.affected_endpoints[0], &root.endpoint_key());
            for anomaly in &draft.anomalies {
                prop_assert!(draft.affected_endpoints.contains(&anomaly.endpoint));
            }
        }
    }
}
