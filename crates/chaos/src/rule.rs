use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The chaos configured for one endpoint, as [`Chaos::status`](crate::Chaos::status) reports it.
///
/// Every part is optional; a rule with no part set does not exist (it is removed). Serialized
/// without the absent parts, e.g. `{"endpoint":"/payment","delay_ms":2000.0}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// The monitored route the rule applies to, e.g. `/payment`.
    pub endpoint: String,
    /// Latency added to every request before it is handled, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    /// Share of requests that fail, in `(0, 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// How long every request hangs, in milliseconds, to outlast its caller's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_ms: Option<f64>,
}

impl Rule {
    pub(crate) fn empty(endpoint: &str) -> Self {
        Rule {
            endpoint: endpoint.to_owned(),
            delay_ms: None,
            error_rate: None,
            hang_ms: None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.delay_ms.is_none() && self.error_rate.is_none() && self.hang_ms.is_none()
    }
}

/// What to do to one request, from [`Chaos::decide`](crate::Chaos::decide).
///
/// A middleware applies it in field order: sleep `delay`, then sleep `hang` (the caller is
/// expected to give up first), then answer with an error instead of calling the handler when
/// `fail` is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Latency to add before handling the request.
    pub delay: Option<Duration>,
    /// Fail the request instead of handling it.
    pub fail: bool,
    /// Hold the request this long, past the caller's timeout.
    pub hang: Option<Duration>,
}

impl Decision {
    /// True when the request is left alone.
    pub fn is_noop(&self) -> bool {
        self.delay.is_none() && !self.fail && self.hang.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_serializes_only_the_parts_that_are_set() {
        let rule = Rule {
            delay_ms: Some(2000.0),
            ..Rule::empty("/payment")
        };
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(json, r#"{"endpoint":"/payment","delay_ms":2000.0}"#);
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
    }

    #[test]
    fn default_decision_leaves_the_request_alone() {
        assert!(Decision::default().is_noop());
        let failing = Decision {
            fail: true,
            ..Decision::default()
        };
        assert!(!failing.is_noop());
    }
}
