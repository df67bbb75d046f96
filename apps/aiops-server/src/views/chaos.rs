//! The `/simulate/*` answers: the chaos rules in force, and what a request changed.

use std::collections::BTreeMap;

use aiops_chaos::Chaos;
use serde::Serialize;
use utoipa::ToSchema;

/// The rule of one endpoint; parts not set are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct ChaosRule {
    /// Milliseconds added to every request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    /// Share of requests that fail with 500.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Milliseconds every request hangs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hang_ms: Option<f64>,
}

/// `GET /simulate/status`: the chaos rules in force.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ChaosStatus {
    /// False when the server runs with chaos off.
    pub enabled: bool,
    /// Rules per endpoint.
    pub active_simulations: BTreeMap<String, ChaosRule>,
    /// Endpoints rules may target.
    pub monitored_endpoints: Vec<String>,
}

impl ChaosStatus {
    /// The rules `chaos` applies now.
    pub fn of(chaos: &Chaos) -> Self {
        Self {
            enabled: chaos.is_enabled(),
            active_simulations: chaos
                .status()
                .into_iter()
                .map(|rule| {
                    let view = ChaosRule {
                        delay_ms: rule.delay_ms,
                        error_rate: rule.error_rate,
                        hang_ms: rule.hang_ms,
                    };
                    (rule.endpoint, view)
                })
                .collect(),
            monitored_endpoints: chaos.monitored().to_vec(),
        }
    }
}

/// What a `/simulate/*` setter applied.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Applied {
    /// `POST /simulate/delay`.
    Delay {
        /// The endpoint.
        endpoint: String,
        /// Milliseconds added (0: removed).
        delay_ms: f64,
    },
    /// `POST /simulate/error`.
    Error {
        /// The endpoint.
        endpoint: String,
        /// Share of requests that fail (0: removed).
        error_rate: f64,
    },
    /// `POST /simulate/timeout`.
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// Milliseconds each request hangs (0: removed).
        hang_ms: f64,
    },
    /// `POST /simulate/clear`.
    Cleared {
        /// Rules removed.
        cleared: usize,
    },
}

/// The answer of every `/simulate/*` setter: a message, what it applied, and the rules now in
/// force.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ChaosChange {
    /// What changed, for people.
    pub message: String,
    /// The values applied.
    #[serde(flatten)]
    pub applied: Applied,
    /// The rules now in force.
    #[serde(flatten)]
    pub status: ChaosStatus,
}

impl ChaosChange {
    /// `applied` to `chaos`, described by `message`.
    pub fn new(chaos: &Chaos, message: String, applied: Applied) -> Self {
        Self {
            message,
            applied,
            status: ChaosStatus::of(chaos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_answers_the_message_what_was_applied_and_the_rules_in_force() {
        let chaos = Chaos::new(vec!["/payment".to_owned()], Some(1));
        chaos.set_delay("/payment", 3000.0).expect("valid rule");
        let change = ChaosChange::new(
            &chaos,
            "Added 3000ms delay to /payment".to_owned(),
            Applied::Delay {
                endpoint: "/payment".to_owned(),
                delay_ms: 3000.0,
            },
        );
        assert_eq!(
            serde_json::to_value(&change).expect("serializes"),
            json!({
                "message": "Added 3000ms delay to /payment",
                "endpoint": "/payment",
                "delay_ms": 3000.0,
                "enabled": true,
                "active_simulations": {"/payment": {"delay_ms": 3000.0}},
                "monitored_endpoints": ["/payment"],
            })
        );
    }
}
