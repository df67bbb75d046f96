//! `shop`: the demo shop's chaos injection, instrumentation, checkout and warm-up.

use std::time::Duration;

use clap::{ArgAction, Args};
use serde::{Deserialize, Serialize};

use super::error::{Origins, SettingsError};
use super::human::{self, format_duration, parse_duration, parse_switch};

/// The demo shop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Demo shop")]
pub struct Shop {
    /// Whether the demo shop (/health, /inventory, /payment, /checkout), its warm-up and the
    /// chaos routes (/simulate/*) are served; off, the engine watches only the services that
    /// send it OTLP traces, and shows only them [default: on].
    #[arg(long, value_name = "on|off", action = ArgAction::Set, value_parser = parse_switch)]
    #[serde(with = "human::switch")]
    pub demo: bool,

    /// Whether /simulate/* may inject faults; off, setting a rule answers 403 [default: on].
    #[arg(long, value_name = "on|off", action = ArgAction::Set, value_parser = parse_switch)]
    #[serde(with = "human::switch")]
    pub chaos: bool,

    /// Seed of the error-rate draws, so that "fail 50%" fails the same requests every run;
    /// without one, every run draws anew [default: none].
    #[arg(long, value_name = "N")]
    pub chaos_seed: Option<u64>,

    /// Whether shop requests become spans; off, the shop serves unmonitored (for performance
    /// baselines) [default: on].
    #[arg(long, value_name = "on|off", action = ArgAction::Set, value_parser = parse_switch)]
    #[serde(with = "human::switch")]
    pub telemetry: bool,

    /// How long /checkout waits for /inventory and /payment before answering 504, at most 5m
    /// [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub checkout_timeout: Duration,

    /// Healthy requests sent to each shop endpoint right after start, so that baselines exist
    /// before the first fault is injected; 0 turns the warm-up off, at most 10000
    /// [default: 20].
    #[arg(long, value_name = "N")]
    pub warmup_requests: u32,
}

impl Default for Shop {
    fn default() -> Self {
        Self {
            demo: true,
            chaos: true,
            chaos_seed: None,
            telemetry: true,
            checkout_timeout: Duration::from_secs(2),
            warmup_requests: 20,
        }
    }
}

impl Shop {
    pub(super) fn validate(&self, origins: &Origins) -> Result<(), SettingsError> {
        if self.checkout_timeout.is_zero() || self.checkout_timeout > Duration::from_secs(300) {
            return Err(SettingsError::out_of_range(
                "checkout_timeout",
                format_duration(self.checkout_timeout),
                origins,
                "more than 0 and at most 5m",
            ));
        }
        if self.warmup_requests > 10_000 {
            return Err(SettingsError::out_of_range(
                "warmup_requests",
                self.warmup_requests,
                origins,
                "0 to 10000",
            ));
        }
        Ok(())
    }
}
