//! The typed view layer: every JSON body the API answers, each a `Serialize` + `ToSchema` type
//! that handlers return and the OpenAPI document describes, so the two cannot drift. Views are
//! built from the engine's types and know nothing of HTTP; handlers and `aiops replay` use
//! them.

pub mod chaos;
pub mod cycle;
pub mod endpoint;
pub mod error;
pub mod evidence;
pub mod format;
pub mod incident;
pub mod lifecycle;
pub mod logs;
pub mod metrics;
pub mod otlp;
pub mod readiness;
pub mod shop;
pub mod topology;
pub mod trace;
