//! Cutting the queued batches into transactions of at most `max_rows` spans.

use aiops_telemetry_core::Span;

/// `batches` cut into transactions of `max_rows` spans (the last one may have fewer): each is
/// the slices of the batches it takes, in order.
pub(super) fn transactions(batches: &[Vec<Span>], max_rows: usize) -> Vec<Vec<&[Span]>> {
    let mut transactions = Vec::new();
    let mut current: Vec<&[Span]> = Vec::new();
    let mut room = max_rows;
    for batch in batches {
        let mut rest = &batch[..];
        while !rest.is_empty() {
            let (part, tail) = rest.split_at(room.min(rest.len()));
            current.push(part);
            room -= part.len();
            rest = tail;
            if room == 0 {
                transactions.push(std::mem::take(&mut current));
                room = max_rows;
            }
        }
    }
    if !current.is_empty() {
        transactions.push(current);
    }
    transactions
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::{SpanId, TraceId};

    use super::*;

    fn batch(first: u64, len: u64) -> Vec<Span> {
        (first..first + len)
            .map(|start| {
                Span::new(TraceId::random(), SpanId::random(), "svc", "op").with_timing(start, 1)
            })
            .collect()
    }

    #[test]
    fn batches_are_cut_into_transactions_of_at_most_max_rows_in_order() {
        let batches = vec![batch(0, 3), batch(3, 0), batch(3, 7), batch(10, 1)];
        for max_rows in 1..13 {
            let transactions = transactions(&batches, max_rows);
            let sizes: Vec<usize> = transactions
                .iter()
                .map(|parts| parts.iter().map(|part| part.len()).sum())
                .collect();
            let (last, full) = sizes.split_last().expect("some transactions");
            assert!(
                full.iter().all(|&size| size == max_rows),
                "{max_rows}: {sizes:?}"
            );
            assert!((1..=max_rows).contains(last), "{max_rows}: {sizes:?}");
            let starts: Vec<u64> = transactions
                .iter()
                .flatten()
                .flat_map(|part| part.iter().map(|span| span.start_unix_nanos))
                .collect();
            assert_eq!(starts, (0..11).collect::<Vec<_>>(), "{max_rows}");
        }
        assert!(transactions(&[], 5).is_empty());
    }
}
