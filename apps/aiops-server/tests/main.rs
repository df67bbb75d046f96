//! The server's integration tests, as one test binary.

mod command_line;
mod incident_archive;
mod reload;
