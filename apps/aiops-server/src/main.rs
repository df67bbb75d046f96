//! The `aiops` binary: parses the command line and dispatches.

use std::process::ExitCode;

use aiops_server::Application;
use aiops_server::cli::{Cli, Command, ServeArgs};
use aiops_server::config::SettingsError;
use aiops_server::logging::LogFormat;
use aiops_storage_sqlite::StoreError;
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
        Some(Command::Demo(_) | Command::Healthcheck(_)) => "warn",
        _ => "info",
    };
    // Serving starts logging once its settings, which say how, are resolved.
    if !matches!(cli.command, None | Some(Command::Serve(_))) {
        aiops_server::logging::init(LogFormat::Text, default_level);
    }
    let outcome = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Replay(args)) => {
            let config = args
                .engine_config()
                .unwrap_or_else(|error| usage_error(error));
            aiops_server::tools::replay::run(&args, config)
        }
        Some(Command::Healthcheck(args)) => aiops_server::tools::healthcheck::run(&args).await,
        Some(Command::Openapi) => {
            println!("{}", aiops_server::routes::openapi::document_json());
            Ok(())
        }
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
            exit_code(&error)
        }
    }
}

/// Exit status 3 when another process has the database open (a supervisor should not
/// restart into the same refusal), 1 for every other failure.
fn exit_code(error: &anyhow::Error) -> ExitCode {
    let in_use = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<StoreError>(),
            Some(StoreError::InUse { .. })
        )
    });
    if in_use {
        ExitCode::from(DATABASE_IN_USE)
    } else {
        ExitCode::FAILURE
    }
}

/// The exit status when the database is in use by another process.
const DATABASE_IN_USE: u8 = 3;

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.resolve().unwrap_or_else(|error| usage_error(error));
    aiops_server::logging::init(settings.log.log_format, &settings.log.log_level);
    Application::build(settings)
        .await?
        .stop_on_signals()
        .reload_on_hangup(Box::new(move || args.resolve()))
        .run_until_stopped()
        .await
}

/// Settings the user got wrong are a usage error: the message, and exit status 2.
fn usage_error(error: SettingsError) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::ValueValidation, error)
        .exit()
}
