//! `http`: where the server listens, who may change things, and how large a request may be.

use std::fmt;
use std::time::Duration;

use aiops_telemetry_core::otlp::{DEFAULT_SPAN_ATTRIBUTES, KeptAttributes};
use clap::Args;
use serde::{Deserialize, Serialize};

use super::error::{Origins, SettingsError};
use super::human::{self, format_duration, parse_duration};

/// Largest body limit accepted, for both the API and OTLP ingest.
const MAX_BODY_LIMIT: usize = 1 << 30;

/// Listening, access control and request size limits.
#[derive(Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "HTTP")]
pub struct Http {
    /// Address to listen on; 0.0.0.0:5000 accepts remote clients, port 0 picks a free port
    /// [default: 127.0.0.1:5000].
    #[arg(long, value_name = "ADDR")]
    pub bind: String,

    /// HTTP worker threads, 0 to 1024; 0 is one per CPU core [default: 0].
    #[arg(long, value_name = "N")]
    pub workers: usize,

    /// When set, POST /aiops/*, POST /simulate/*, POST /v1/traces and POST /v1/logs need the header
    /// "Authorization: Bearer TOKEN"; prefer the variable, a flag shows in the process list
    /// [default: none].
    #[arg(long, value_name = "TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,

    /// Host names the server answers to besides 127.0.0.1, localhost and [::1], comma-separated
    /// (e.g. aiops.internal for a reverse proxy). Bound to loopback, any other Host header gets
    /// 403, which stops web pages that rebind their own name to 127.0.0.1; bound elsewhere,
    /// only these names are answered when given, any otherwise [default: none].
    #[arg(long, value_name = "HOSTS")]
    pub allowed_hosts: Option<String>,

    /// Largest request body accepted, in bytes, 1024 to 1073741824; a larger one gets 413.
    /// OTLP ingest (POST /v1/traces) has its own two limits [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: usize,

    /// How long a client has to send a request's line and headers once connected (on a
    /// kept-alive connection, from the first byte of each later request; the idle time before
    /// it is --keep-alive's); a slower one is answered 408 and disconnected [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub request_head_timeout: Duration,

    /// How long a client has to send a whole request body; a stalled or slow upload is answered
    /// 408, its connection closed and its buffered bytes freed [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub body_read_timeout: Duration,

    /// How long an idle kept-alive connection stays open; 0 closes every connection after its
    /// response [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub keep_alive: Duration,

    /// How long a connection being closed gets to take the rest of its response
    /// [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub client_disconnect_timeout: Duration,

    /// Connections served at once, 1 to 1000000, across all workers; a request on a connection
    /// past them is answered 503 with Retry-After at once and the connection closed (up to an
    /// eighth more, 16 to 1024, are accepted for that; beyond, they wait in the listen
    /// backlog). Kept below the open-file limit (less 128 for the database and logs) so that
    /// the process never runs out of descriptors [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_connections: usize,

    /// Largest POST /v1/traces or /v1/logs body as sent (compressed or not), in bytes: OTLP
    /// exporters batch hundreds of spans per request [default: 8388608].
    #[arg(long, value_name = "BYTES")]
    pub otlp_max_body_bytes: usize,

    /// Largest POST /v1/traces or /v1/logs body once gzip-decompressed, in bytes, up to 1073741824 and at
    /// least the limit as sent; enforced while decompressing, so a small body that expands
    /// without bound is cut off at the limit [default: 33554432].
    #[arg(long, value_name = "BYTES")]
    pub otlp_max_decompressed_bytes: usize,

    /// Attributes OTLP spans keep (of the span, else of its resource), replacing the default
    /// list: names, or prefixes ending in .* (rpc.*); comma-separated, at most 32. Whatever the
    /// list, spans keep service.version and, for calls, the attributes that name the peer
    /// [default: http.route,http.request.method,http.method,http.response.status_code,http.status_code,url.path,rpc.*,db.system,db.name,db.operation,peer.service,deployment.environment,k8s.pod.name,host.name,service.version,exception.type,exception.message,otel.status_description,cloud.region].
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub span_attributes: Vec<String>,
}

impl Default for Http {
    fn default() -> Self {
        let ingest = IngestLimits::default();
        Self {
            bind: "127.0.0.1:5000".to_owned(),
            workers: 0,
            api_token: None,
            allowed_hosts: None,
            request_head_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            client_disconnect_timeout: Duration::from_secs(1),
            max_connections: 10_000,
            max_body_bytes: 1024 * 1024,
            otlp_max_body_bytes: ingest.max_body_bytes,
            otlp_max_decompressed_bytes: ingest.max_decompressed_bytes,
            span_attributes: DEFAULT_SPAN_ATTRIBUTES
                .iter()
                .map(|&name| name.to_owned())
                .collect(),
        }
    }
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("bind", &self.bind)
            .field("workers", &self.workers)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("allowed_hosts", &self.allowed_hosts)
            .field("request_head_timeout", &self.request_head_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("keep_alive", &self.keep_alive)
            .field("client_disconnect_timeout", &self.client_disconnect_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("otlp_max_body_bytes", &self.otlp_max_body_bytes)
            .field(
                "otlp_max_decompressed_bytes",
                &self.otlp_max_decompressed_bytes,
            )
            .field("span_attributes", &self.span_attributes)
            .finish()
    }
}

impl Http {
    /// The attributes OTLP spans keep; the list was checked by `validate`.
    pub fn kept_attributes(&self) -> KeptAttributes {
        KeptAttributes::new(&self.span_attributes).unwrap_or_default()
    }

    /// The size limits of OTLP ingest.
    pub fn ingest_limits(&self) -> IngestLimits {
        IngestLimits {
            max_body_bytes: self.otlp_max_body_bytes,
            max_decompressed_bytes: self.otlp_max_decompressed_bytes,
        }
    }

    /// The names of `allowed_hosts`, lower-cased.
    pub fn allowed_host_names(&self) -> Vec<String> {
        self.allowed_hosts
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect()
    }

    pub(super) fn validate(&self, origins: &Origins) -> Result<(), SettingsError> {
        let refuse = |option, value: usize, accepted: String| {
            Err(SettingsError::out_of_range(
                option, value, origins, accepted,
            ))
        };
        let limits = 1024..=MAX_BODY_LIMIT;
        if !is_bind_address(&self.bind) {
            return Err(SettingsError::out_of_range(
                "bind",
                format!("{:?}", self.bind),
                origins,
                "HOST:PORT with a port of 0 to 65535, e.g. 127.0.0.1:5000, [::1]:5000, localhost:0",
            ));
        }
        if let Err(error) = KeptAttributes::new(&self.span_attributes) {
            return Err(SettingsError::out_of_range(
                "span_attributes",
                format!("{:?}", self.span_attributes.join(",")),
                origins,
                error.to_string(),
            ));
        }
        if self.workers > 1024 {
            return refuse("workers", self.workers, "0 to 1024".into());
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return refuse(
                "max_connections",
                self.max_connections,
                "1 to 1000000".into(),
            );
        }
        let timeouts = [
            ("request_head_timeout", self.request_head_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("client_disconnect_timeout", self.client_disconnect_timeout),
        ];
        for (option, value) in timeouts {
            if value.is_zero() || value > Duration::from_secs(3600) {
                return Err(SettingsError::out_of_range(
                    option,
                    format_duration(value),
                    origins,
                    "more than 0 and at most 1h",
                ));
            }
        }
        if self.keep_alive > Duration::from_secs(3600) {
            return Err(SettingsError::out_of_range(
                "keep_alive",
                format_duration(self.keep_alive),
                origins,
                "0 (off) to 1h",
            ));
        }
        if !limits.contains(&self.max_body_bytes) {
            return refuse("max_body_bytes", self.max_body_bytes, body_range());
        }
        if !limits.contains(&self.otlp_max_body_bytes) {
            return refuse(
                "otlp_max_body_bytes",
                self.otlp_max_body_bytes,
                body_range(),
            );
        }
        if !limits.contains(&self.otlp_max_decompressed_bytes)
            || self.otlp_max_decompressed_bytes < self.otlp_max_body_bytes
        {
            let accepted = format!(
                "at least otlp_max_body_bytes ({}) and at most {MAX_BODY_LIMIT}",
                self.otlp_max_body_bytes
            );
            return refuse(
                "otlp_max_decompressed_bytes",
                self.otlp_max_decompressed_bytes,
                accepted,
            );
        }
        if self
            .api_token
            .as_deref()
            .is_some_and(|token| token.trim().is_empty())
        {
            return Err(SettingsError::out_of_range(
                "api_token",
                "\"\"",
                origins,
                "a non-empty token",
            ));
        }
        Ok(())
    }
}

/// Whether `bind` has the form `HOST:PORT` (an IP address, a bracketed IPv6 address or a host
/// name, and a port number); whether the host resolves and the port is free is found out by
/// binding.
fn is_bind_address(bind: &str) -> bool {
    if bind.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = bind.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok()
        && !host.is_empty()
        && !host.contains(':')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

fn body_range() -> String {
    format!("1024 to {MAX_BODY_LIMIT}")
}

/// How large an OTLP request may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestLimits {
    /// Largest body accepted as sent (compressed, when it is), in bytes.
    pub max_body_bytes: usize,
    /// Largest body accepted once decompressed, in bytes.
    pub max_decompressed_bytes: usize,
}

impl Default for IngestLimits {
    /// 8 MiB as sent, 32 MiB decompressed: several times the largest batch an OpenTelemetry
    /// Collector sends with its default batch sizes.
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_decompressed_bytes: 32 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses_are_host_and_port() {
        for good in [
            "127.0.0.1:5000",
            "0.0.0.0:0",
            "[::1]:5000",
            "localhost:5000",
            "aiops-1.internal:80",
        ] {
            assert!(is_bind_address(good), "{good}");
        }
        for bad in [
            "127.0.0.1",
            "localhost",
            ":5000",
            "127.0.0.1:99999",
            "host:port",
            "a b:1",
            "::1:5000",
            "",
        ] {
            assert!(!is_bind_address(bad), "{bad}");
        }
    }
}
