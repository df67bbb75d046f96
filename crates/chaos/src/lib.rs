//! Chaos injection for the demo shop: added latency, failing requests and hanging requests,
//! per endpoint, decided request by request.
//!
//! A [`Chaos`] holds at most one [`Rule`] per monitored endpoint. A rule combines three
//! optional parts: a delay added to every request, an error rate (the share of requests that
//! fail) and a timeout (every request hangs long enough to outlast its caller's timeout).
//! Setting a part to zero removes it. The HTTP layer's middleware asks [`Chaos::decide`] for a
//! [`Decision`] before each request reaches its handler and applies it; this crate does no I/O
//! and never sleeps.
//!
//! Two decisions shape the crate:
//!
//! - **Validation before mutation.** The set of monitored routes is fixed at construction, and
//!   every setter checks the switch, the endpoint and the value before touching the rules, so a
//!   rejected rule changes nothing and its [`ChaosError`] says what is accepted. Durations are
//!   milliseconds from 0 to [`MAX_DURATION_MS`], rates are finite numbers from 0 to 1.
//! - **Nothing on the hot path when nothing is injected.** An atomic flag mirrors "some rule
//!   exists"; [`Chaos::decide`] reads it before taking the lock, so an idle `Chaos` costs one
//!   atomic load per request.
//!
//! Decisions draw from one random generator behind the lock. Given a seed, the same rules and
//! the same sequence of calls give the same decisions, which keeps tests reproducible.
//!
//! ```
//! use aiops_chaos::{Chaos, ChaosError};
//! use std::time::Duration;
//!
//! let routes = ["/checkout", "/health", "/inventory", "/payment"];
//! let chaos = Chaos::new(routes.iter().map(|r| r.to_string()).collect(), Some(42));
//!
//! chaos.set_delay("/payment", 2000.0)?;
//! chaos.set_error_rate("/inventory", 1.0)?;
//!
//! let decision = chaos.decide("/payment");
//! assert_eq!(decision.delay, Some(Duration::from_millis(2000)));
//! assert!(chaos.decide("/inventory").fail);
//! assert!(chaos.decide("/health").is_noop());
//!
//! // A rejected rule says what is accepted and changes nothing.
//! let error = chaos.set_error_rate("/inventory", 1.5).unwrap_err();
//! assert!(matches!(error, ChaosError::InvalidRate { .. }));
//! assert_eq!(chaos.status().len(), 2);
//!
//! let error = chaos.set_delay("/admin", 10.0).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "chaos: unknown endpoint \"/admin\"; accepted endpoints: /checkout, /health, /inventory, /payment"
//! );
//!
//! assert_eq!(chaos.clear(), 2);
//! assert!(chaos.decide("/payment").is_noop());
//! # Ok::<(), ChaosError>(())
//! ```

#![deny(missing_docs)]

mod chaos;
mod error;
mod rule;

pub use chaos::{Chaos, DEFAULT_HANG_MS, MAX_DURATION_MS};
pub use error::ChaosError;
pub use rule::{Decision, Rule};
