//! Checks that run before any handler: the API token on mutating routes, the body size, and
//! the two that keep web pages from driving the engine: [`browser_guard`] refuses
//! cross-origin browser requests that change something, and a `Host` the server does not
//! answer to (DNS rebinding).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST, HeaderName, ORIGIN};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::api_error::ApiError;
use crate::state::AppState;

/// Middleware for the API scopes: when a token is configured, every request other than
/// `GET`/`HEAD`/`OPTIONS` needs `Authorization: Bearer <token>`.
pub async fn require_token(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let expected = request
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.settings.api_token.clone());
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if let (Some(expected), false) = (expected, safe) {
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::trim);
        let error = match presented.and_then(|value| bearer_token(value)) {
            Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => None,
            Some(_) => Some("invalid API token; accepted: the token the server was started with"),
            None => Some(
                "missing API token; this route needs the header \"Authorization: Bearer <token>\"",
            ),
        };
        if let Some(message) = error {
            let response = ApiError::unauthorized(message).error_response();
            return Ok(request.into_response(response));
        }
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}

/// The largest request body a scope or resource accepts, in bytes: the app data
/// [`limit_body`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// Middleware for a scope or resource registered with a [`BodyLimit`]: a declared
/// `Content-Length` above the limit is refused with 413 before anything reads the body.
/// Bodies without a length are limited by the extractors (`PayloadConfig`, `JsonConfig`) with
/// the same limit.
pub async fn limit_body(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = request.app_data::<BodyLimit>().map(|limit| limit.0);
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if let (Some(limit), Some(declared)) = (limit, declared)
        && declared > limit as u64
    {
        let response = ApiError::payload_too_large(limit).error_response();
        return Ok(request.into_response(response));
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}

/// The `Host` names a server answers to; `None` answers any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHosts(Option<Vec<String>>);

/// The names a server bound to loopback answers to, besides those configured.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl AllowedHosts {
    /// For a server bound to `bind`: bound to loopback, the loopback names and `extra`
    /// (a page on another site that resolves its own name to 127.0.0.1 reaches the server with
    /// that name in `Host`: DNS rebinding); bound elsewhere, `extra` alone when given, else any.
    pub fn for_bind(bind: std::net::IpAddr, extra: &[String]) -> Self {
        let extra = extra
            .iter()
            .map(|host| host.trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty());
        if bind.is_loopback() {
            Self(Some(
                LOOPBACK_HOSTS
                    .iter()
                    .map(|host| (*host).to_owned())
                    .chain(extra)
                    .collect(),
            ))
        } else {
            let extra: Vec<String> = extra.collect();
            Self((!extra.is_empty()).then_some(extra))
        }
    }

    /// Any host.
    pub fn any() -> Self {
        Self(None)
    }

    /// Whether a request with this `Host` header is answered. A request without one (HTTP/1.0)
    /// is; so is any 127.x.y.z when loopback names are allowed.
    pub fn allows(&self, host_header: Option<&str>) -> bool {
        let (Some(allowed), Some(header)) = (&self.0, host_header) else {
            return true;
        };
        let host = host_name(header).to_ascii_lowercase();
        allowed.contains(&host)
            || (allowed.iter().any(|name| name == "127.0.0.1")
                && host
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_loopback()))
    }

    fn accepted(&self) -> String {
        self.0.as_deref().unwrap_or_default().join(", ")
    }
}

/// The host of a `Host` header without its port: `localhost:5000` -> `localhost`,
/// `[::1]:5000` -> `[::1]`.
fn host_name(header: &str) -> &str {
    let header = header.trim();
    if header.starts_with('[') {
        return header.find(']').map_or(header, |end| &header[..=end]);
    }
    header.rsplit_once(':').map_or(header, |(host, _)| host)
}

/// Middleware for every route (the root scope and OTLP ingest wrap it; routes added inside
/// the root scope inherit it): refuses with 403
///
/// - a request whose `Host` the server does not answer to ([`AllowedHosts`], read from the
///   `web::Data<AllowedHosts>` app data);
/// - a browser request from another origin that may change something: any method but
///   `GET`/`HEAD`/`OPTIONS` with `Sec-Fetch-Site` other than `same-origin` or `none`, or with
///   an `Origin` whose host and port are not the `Host`'s. Clients that send neither header
///   (curl, OTLP exporters, Prometheus) are not browsers and pass.
pub async fn browser_guard(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let host = header_text(&request, HOST);
    if let Some(allowed) = request.app_data::<web::Data<AllowedHosts>>()
        && !allowed.allows(host)
    {
        let message = format!(
            "host {:?} is not served; accepted: {} (the server answers only the names it is reached by; add names with --allowed-hosts)",
            host.unwrap_or_default(),
            allowed.accepted()
        );
        let response = ApiError::forbidden(message).error_response();
        return Ok(request.into_response(response));
    }
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && let Some(message) = cross_origin(&request) {
        let response = ApiError::forbidden(message).error_response();
        return Ok(request.into_response(response));
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}

/// Why a request that may change something is a cross-origin browser request; `None` when it
/// is not one.
fn cross_origin(request: &ServiceRequest) -> Option<String> {
    const ACCEPTED: &str = "accepted: requests from the engine's own pages, or from clients that                             send no Origin (curl, OTLP exporters)";
    let site = header_text(request, HeaderName::from_static("sec-fetch-site"));
    match site.map(str::trim) {
        Some("same-origin") => return None,
        Some("none") | None => {}
        Some(other) => {
            return Some(format!(
                "cross-origin request refused (Sec-Fetch-Site: {other}); {ACCEPTED}"
            ));
        }
    }
    let origin = header_text(request, ORIGIN)?;
    let host = header_text(request, HOST).unwrap_or_default();
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match authority {
        Some(authority) if authority.eq_ignore_ascii_case(host.trim()) => None,
        _ => Some(format!(
            "cross-origin request refused (Origin {origin} is not this server, {host}); {ACCEPTED}"
        )),
    }
}

fn header_text(request: &ServiceRequest, name: HeaderName) -> Option<&str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Compares without stopping at the first difference, so timing says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn loopback_servers_answer_loopback_names_and_those_added() {
        let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
        let allowed = AllowedHosts::for_bind(loopback, &["Aiops.Internal".to_owned()]);
        for host in [
            "localhost:5000",
            "LOCALHOST",
            "127.0.0.1:5000",
            "127.0.0.2",
            "[::1]:5000",
            "aiops.internal:8080",
        ] {
            assert!(allowed.allows(Some(host)), "{host}");
        }
        for host in [
            "evil.example:5000",
            "localhost.evil.example",
            "10.0.0.1:5000",
            "[::2]",
        ] {
            assert!(!allowed.allows(Some(host)), "{host}");
        }
        assert!(allowed.allows(None), "HTTP/1.0 sends no Host");
    }

    #[test]
    fn other_binds_answer_any_host_unless_names_are_given() {
        let anywhere = std::net::IpAddr::from([0, 0, 0, 0]);
        assert!(AllowedHosts::for_bind(anywhere, &[]).allows(Some("evil.example")));
        let named = AllowedHosts::for_bind(anywhere, &["aiops.example".to_owned()]);
        assert!(named.allows(Some("aiops.example:5000")));
        assert!(!named.allows(Some("evil.example")));
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("localhost:5000"), "localhost");
        assert_eq!(host_name("[::1]:5000"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
        assert_eq!(host_name("example.com"), "example.com");
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secrets"));
    }
}
