//! Adaptive per-endpoint baselines and anomaly detection: window statistics in, anomalies out.
//!
//! Work in progress: the public types are settled, the logic is being filled in.

#![deny(missing_docs)]
#![allow(dead_code)]

mod analyzer;
mod anomaly;
mod baseline;
mod config;
mod health;
mod live;

pub use analyzer::{Analyzer, Assessment, EndpointAssessment};
pub use anomaly::{Anomaly, AnomalyKind, Severity};
pub use baseline::Baseline;
pub use config::{Config, ConfigError};
pub use health::{Health, HealthStatus};
pub use live::LiveWindows;
