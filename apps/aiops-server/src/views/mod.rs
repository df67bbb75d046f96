//! The JSON bodies of the API.

mod schemas;

pub use schemas::*;
