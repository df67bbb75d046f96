//! The parts of the load generator that the end-to-end tests share: spans sent through the
//! real OpenTelemetry SDK ([`sdk_load`]).

pub mod sdk_load;
