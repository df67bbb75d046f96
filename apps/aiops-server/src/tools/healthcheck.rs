//! `aiops healthcheck`: asks a running engine whether it is alive (`GET /healthz`), for
//! container health checks in images that carry no HTTP client.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use reqwest::Url;

/// Options of `aiops healthcheck`.
#[derive(Clone, Debug, Args)]
pub struct HealthcheckArgs {
    /// The route to ask; /readyz asks for readiness instead of liveness.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:5000/healthz"
    )]
    pub url: Url,

    /// How long to wait for the answer.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,
}

/// Succeeds when `url` answers 200 within the timeout.
pub async fn run(args: &HealthcheckArgs) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .build()
        .context("building the HTTP client")?;
    let response = client
        .get(args.url.clone())
        .send()
        .await
        .with_context(|| format!("asking {}", args.url))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("{} answered {status}: {body}", args.url);
    }
    Ok(())
}
