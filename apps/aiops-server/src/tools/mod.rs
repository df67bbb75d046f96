//! The `aiops` subcommands besides serving: `replay` (a post-mortem from recorded traces),
//! `demo` (the documented scenarios run against a server) and `healthcheck` (a container's
//! liveness probe).

pub mod demo;
pub mod healthcheck;
pub mod replay;
