use thiserror::Error;

/// Why a chaos rule was rejected. A rejected rule changes nothing.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum ChaosError {
    /// Chaos injection is switched off, so no rule can be set.
    #[error("chaos: injection is disabled; enable it to set rules")]
    Disabled,
    /// The endpoint is not one of the monitored routes.
    #[error(
        "chaos: unknown endpoint {endpoint:?}; accepted endpoints: {}",
        .accepted.join(", ")
    )]
    UnknownEndpoint {
        /// The endpoint that was asked for.
        endpoint: String,
        /// The monitored routes a rule may target, sorted.
        accepted: Vec<String>,
    },
    /// A delay or timeout duration was negative, not a number, or above the maximum.
    #[error(
        "chaos: invalid {setting} duration {value_ms} ms; accepted: a number of milliseconds \
         from 0 to 60000 (0 removes the {setting})"
    )]
    InvalidDuration {
        /// Which setting: `"delay"` or `"timeout"`.
        setting: &'static str,
        /// The rejected value in milliseconds.
        value_ms: f64,
    },
    /// An error rate was negative, not a number, or above one.
    #[error(
        "chaos: invalid error rate {value}; accepted: a number from 0 to 1 \
         (0 removes the error rate, 1 fails every request)"
    )]
    InvalidRate {
        /// The rejected rate.
        value: f64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_message_says_how_to_proceed() {
        assert_eq!(
            ChaosError::Disabled.to_string(),
            "chaos: injection is disabled; enable it to set rules"
        );
    }

    #[test]
    fn unknown_endpoint_message_lists_accepted_endpoints() {
        let error = ChaosError::UnknownEndpoint {
            endpoint: "/nope".into(),
            accepted: vec!["/checkout".into(), "/payment".into()],
        };
        assert_eq!(
            error.to_string(),
            "chaos: unknown endpoint \"/nope\"; accepted endpoints: /checkout, /payment"
        );
    }

    #[test]
    fn invalid_duration_message_names_setting_and_range() {
        let error = ChaosError::InvalidDuration {
            setting: "delay",
            value_ms: -5.0,
        };
        assert_eq!(
            error.to_string(),
            "chaos: invalid delay duration -5 ms; accepted: a number of milliseconds \
             from 0 to 60000 (0 removes the delay)"
        );
    }

    #[test]
    fn invalid_rate_message_states_range() {
        let error = ChaosError::InvalidRate { value: f64::NAN };
        assert_eq!(
            error.to_string(),
            "chaos: invalid error rate NaN; accepted: a number from 0 to 1 \
             (0 removes the error rate, 1 fails every request)"
        );
    }
}
