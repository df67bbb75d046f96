//! A thin client for the server's HTTP API, and shop traffic sent the way users would.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use reqwest::{Method, Url};
use serde_json::Value;
use tokio::task::JoinSet;

/// A thin client for the server's HTTP API.
#[derive(Clone, Debug)]
pub(super) struct Api {
    http: reqwest::Client,
    pub(super) base: Url,
    token: Option<String>,
}

/// A JSON answer and its status.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Value,
}

impl Reply {
    pub(super) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The server's `error` message, or the status code.
    pub(super) fn error(&self) -> String {
        match self.body.get("error").and_then(Value::as_str) {
            Some(message) => format!("{} {message}", self.status),
            None => format!("HTTP {}", self.status),
        }
    }
}

impl Api {
    pub(super) fn new(base: Url, token: Option<String>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Api { http, base, token })
    }

    pub(super) fn url(&self, path: &str, params: &[(&str, &str)]) -> Result<Url> {
        let base = self.base.as_str().trim_end_matches('/');
        let url = format!("{base}{path}");
        let parsed = if params.is_empty() {
            Url::parse(&url)
        } else {
            Url::parse_with_params(&url, params)
        };
        parsed.with_context(|| format!("invalid URL {url}"))
    }

    pub(super) async fn request(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<Reply> {
        let url = self.url(path, params)?;
        let mut request = self.http.request(method.clone(), url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path} failed"))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer to {method} {path} failed"))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    pub(super) async fn get(&self, path: &str) -> Result<Value> {
        let reply = self.request(Method::GET, path, &[]).await?;
        if !reply.ok() {
            return Err(anyhow!("GET {path} answered {}", reply.error()));
        }
        Ok(reply.body)
    }

    pub(super) async fn post(&self, path: &str, params: &[(&str, &str)]) -> Result<Reply> {
        self.request(Method::POST, path, params).await
    }
}

/// What a burst of shop requests got back.
#[derive(Debug, Default)]
pub(super) struct Traffic {
    statuses: BTreeMap<String, usize>,
    total_ms: f64,
    count: usize,
}

impl Traffic {
    pub(super) fn describe(&self) -> String {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, count)| format!("{count} x {status}"))
            .collect();
        let mean = self.total_ms / self.count.max(1) as f64;
        format!("{}, mean {mean:.0} ms", statuses.join(", "))
    }
}

/// Starts one request every `pace` without waiting for earlier ones, as independent users
/// would, then waits for all of them.
pub(super) async fn send(
    api: &Api,
    requests: &[(Method, &'static str)],
    pace: Duration,
) -> Traffic {
    let api = Arc::new(api.clone());
    let mut tasks = JoinSet::new();
    for (index, (method, path)) in requests.iter().cloned().enumerate() {
        if index > 0 {
            tokio::time::sleep(pace).await;
        }
        let api = Arc::clone(&api);
        tasks.spawn(async move {
            let started = Instant::now();
            let status = match api.request(method, path, &[]).await {
                Ok(reply) => reply.status.to_string(),
                Err(_) => "no answer".to_owned(),
            };
            (status, started.elapsed().as_secs_f64() * 1000.0)
        });
    }
    let mut traffic = Traffic::default();
    while let Some(result) = tasks.join_next().await {
        let (status, ms) = result.unwrap_or_else(|_| ("no answer".to_owned(), 0.0));
        *traffic.statuses.entry(status).or_default() += 1;
        traffic.total_ms += ms;
        traffic.count += 1;
    }
    traffic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_encoded() {
        let api = Api::new("http://127.0.0.1:5000/".parse().unwrap(), None).unwrap();
        let url = api
            .url(
                "/simulate/error",
                &[("endpoint", "/payment"), ("rate", "1.0")],
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:5000/simulate/error?endpoint=%2Fpayment&rate=1.0"
        );
    }

    #[test]
    fn urls_without_parameters_have_no_query() {
        let api = Api::new("http://127.0.0.1:5000".parse().unwrap(), None).unwrap();
        let url = api.url("/aiops/incidents", &[]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:5000/aiops/incidents");
    }
}
