//! The `aiops` binary: parses the command line and dispatches.

use std::process::ExitCode;

use aiops_server::Application;
use aiops_server::cli::{Cli, Command, ServeArgs};
use clap::{CommandFactory, Parser};

/// Every recorded span is a handful of small allocations made on an HTTP worker and freed on
/// the storage writer's thread; mimalloc handles that cross-thread pattern at a fraction of
/// the system allocator's cost (see docs/BENCHMARKS.md, "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own report; the server's log would interleave with it.
    let default_level = match cli.command {
        Some(Command::Demo(_)) => "warn",
        _ => "info",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .init();
    let outcome = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Replay(args)) => aiops_server::tools::replay::run(&args),
        Some(Command::Demo(args)) => match aiops_server::tools::demo::run(args).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(error) => Err(error),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole chain of causes on one line, without a backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match args.resolve() {
        Ok(config) => config,
        Err(message) => Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit(),
    };
    config.handle_signals = true;
    Application::build(config).await?.run_until_stopped().await
}
