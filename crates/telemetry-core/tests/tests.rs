//! Integration tests of the span vocabulary, as one test binary.

mod otlp;
mod otlp_attributes;
