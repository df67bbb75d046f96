//! Log templates: what a service usually logs, and the messages it never logged before.
//!
//! [`LogPatterns`] mines every service's log bodies into templates with a Drain-style online
//! parser ([`mask_tokens`] masks numbers, ids, hex and addresses; a fixed-depth parse tree
//! groups messages by length and first tokens, then by similarity), counts each template per
//! second, learns its usual rate, and reports a template never seen while the service was
//! learned, or one whose rate rose far above its learned rate, as a
//! [`LogPatternFinding`]: an [`Anomaly`](crate::Anomaly) of kind
//! [`LogPattern`](crate::AnomalyKind::LogPattern) with the template and examples.
//!
//! ```
//! use aiops_analyzer::logs::{LogPatternConfig, LogPatterns};
//! use aiops_telemetry_core::{LogRecord, LogSeverity};
//!
//! const SEC: u64 = 1_000_000_000;
//! let mut patterns = LogPatterns::new(LogPatternConfig::default());
//! let t0 = 1_700_000_000 * SEC;
//! for second in 0..180 {
//!     let at = t0 + second * SEC;
//!     let line = format!("served item {second} in {}ms", 10 + second % 7);
//!     patterns.observe(&LogRecord::new("pricing", at, LogSeverity::INFO, line), Some("GET /price"));
//!     if second >= 170 {
//!         let error = format!("NullPointerException pricing item {second}");
//!         patterns.observe(&LogRecord::new("pricing", at, LogSeverity::ERROR, error), Some("GET /price"));
//!     }
//!     if second % 5 == 4 {
//!         let found = patterns.assess(at + SEC, 30 * SEC);
//!         if second < 170 {
//!             assert!(found.is_empty(), "healthy logs raise nothing");
//!         }
//!     }
//! }
//! let found = patterns.assess(t0 + 180 * SEC, 30 * SEC);
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].template, "NullPointerException pricing item <*>");
//! assert_eq!(found[0].anomaly.endpoint.operation, "GET /price");
//! assert!(found[0].new && found[0].error);
//! ```

mod drain;
mod mask;
mod patterns;
#[cfg(test)]
mod tests;

pub use drain::OTHER_TEMPLATE;
pub use mask::{WILDCARD, mask_tokens};
pub use patterns::{
    LOG_OPERATION, LogPatternConfig, LogPatternFinding, LogPatterns, OTHER_SERVICE, TemplateRef,
};
