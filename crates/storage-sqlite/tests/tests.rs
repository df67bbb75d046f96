//! Integration tests of the SQLite store, as one test binary.

mod backpressure;
mod common;
mod logs;
mod migration;
mod queries;
mod retention;
mod state;
mod writer;
