//! Integration tests of the analysis tier, as one test binary.

mod calls;
mod damping;
mod demo_shop;
mod engine;
mod evidence;
mod incident_book;
mod shifts;
mod trace_buffer;
