//! Integration tests of baselines and anomaly detection, as one test binary.

mod detectors;
mod learning;
mod live_windows;
mod properties;
mod support;
