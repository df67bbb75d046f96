//! The engine under test, imported in this one place.

pub use aiops_engine::{Engine, EngineConfig, Incident, IncidentChange};
