//! [`EndpointWatermarks`]: per endpoint, the instant before which evidence no longer counts.

use std::collections::HashMap;

use aiops_telemetry_core::EndpointKey;

/// Resolution watermarks per endpoint: once a problem on an endpoint is resolved at `t`, its
/// traffic that started before `t` must not raise it again, so detection reads that endpoint's
/// statistics from `t` on.
///
/// The analyzer only reads them ([`Analyzer::observe_live`](crate::Analyzer::observe_live)); their
/// owner (the incident lifecycle) sets them when it resolves something, so there is one store
/// whoever else needs it.
///
/// ```
/// use aiops_analyzer::EndpointWatermarks;
/// use aiops_telemetry_core::EndpointKey;
///
/// let payment = EndpointKey::new("shop", "/payment");
/// let mut marks = EndpointWatermarks::default();
/// marks.raise(&payment, 2_000);
/// marks.raise(&payment, 1_000); // never lowered
/// assert_eq!(marks.get(&payment), Some(2_000));
/// marks.forget_until(2_000); // no longer clips a window starting after 2000
/// assert_eq!(marks.get(&payment), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointWatermarks {
    marks: HashMap<EndpointKey, u64>,
}

impl EndpointWatermarks {
    /// Evidence on `endpoint` that started before `not_before_unix_nanos` no longer counts; a
    /// later mark already set stays.
    pub fn raise(&mut self, endpoint: &EndpointKey, not_before_unix_nanos: u64) {
        match self.marks.get_mut(endpoint) {
            Some(mark) => *mark = (*mark).max(not_before_unix_nanos),
            None => {
                self.marks.insert(endpoint.clone(), not_before_unix_nanos);
            }
        }
    }

    /// The watermark of `endpoint`, if it has one.
    pub fn get(&self, endpoint: &EndpointKey) -> Option<u64> {
        self.marks.get(endpoint).copied()
    }

    /// Drops the marks at or before `unix_nanos`: once no window read starts before a mark,
    /// it clips nothing.
    pub fn forget_until(&mut self, unix_nanos: u64) {
        self.marks.retain(|_, not_before| *not_before > unix_nanos);
    }

    /// Every mark, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&EndpointKey, u64)> {
        self.marks.iter().map(|(endpoint, &mark)| (endpoint, mark))
    }

    /// How many endpoints have a mark.
    pub fn len(&self) -> usize {
        self.marks.len()
    }

    /// True when no endpoint has a mark.
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }
}
