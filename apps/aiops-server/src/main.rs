//! The `aiops` binary: parses the command line and dispatches.

use aiops_server::Application;
use aiops_server::cli::{Cli, Command, ServeArgs};
use clap::{CommandFactory, Parser};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Replay(args)) => aiops_server::replay::run(&args),
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
