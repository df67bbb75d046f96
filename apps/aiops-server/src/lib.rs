//! The aiops engine's server: the demo shop, its instrumentation and chaos injection, the JSON
//! API, the background analysis actor and the `aiops` command line.
//!
//! Everything that is not HTTP, configuration or scheduling lives in the library crates
//! (`aiops-analyzer`, `aiops-rca`, `aiops-engine`, `aiops-storage-sqlite`, `aiops-chaos`);
//! this crate wires them together. [`startup::Application`] is the entry point shared by the
//! binary and the end-to-end tests:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use aiops_server::{Application, Settings};
//!
//! let mut settings = Settings::default();
//! settings.http.bind = "127.0.0.1:0".into();
//! settings.storage.db = ":memory:".into();
//! let app = Application::build(settings).await?;
//! println!("listening on port {}", app.port());
//! app.run_until_stopped().await
//! # }
//! ```

#![deny(missing_docs)]

pub mod actor;
pub mod api_error;
pub mod body_deadline;
pub mod build_info;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod console;
pub mod guards;
pub mod http_server;
pub mod logging;
pub mod notify;
pub mod persistence;
pub mod pipeline;
pub mod process_stats;
pub mod reload;
pub mod request_head;
pub mod retention;
pub mod routes;
pub mod shop;
pub mod startup;
pub mod state;
pub mod tools;
pub mod views;

pub use config::Settings;
pub use routes::{configure_engine_routes, configure_routes};
pub use startup::{Application, StopHandle};
