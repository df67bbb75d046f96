//! The `aiops` subcommands besides serving: `replay` (a post-mortem from recorded traces) and
//! `demo` (the documented scenarios run against a server).

pub mod demo;
pub mod replay;
