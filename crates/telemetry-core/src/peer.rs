//! Who a client span called: the peer of an outgoing call, and the endpoint key that gives each
//! edge of the call graph a baseline of its own.
//!
//! Instrumentation names outgoing calls after the protocol, not the callee: an HTTP client span
//! is `GET` or `HTTP POST`, a database span `SELECT orders`. Keyed by service and name alone,
//! one "endpoint" would mix the calls to every callee, and its baseline would describe none of
//! them. The callee is in the attributes instead (OpenTelemetry semantic conventions), so a
//! client span is keyed by its name *and* its peer: `GET -> currency`, `SELECT orders ->
//! postgresql/orders`.

use std::borrow::Cow;

use crate::span::{Span, SpanKind};
use crate::text::SpanText;

/// Between a client span's own name and its peer in a peer-keyed operation.
pub const PEER_SEPARATOR: &str = " -> ";

/// The attributes a peer is read from, most specific first (see [`peer_of`]).
pub const PEER_ATTRIBUTES: [&str; 6] = [
    "peer.service",
    "db.system",
    "db.name",
    "db.namespace",
    "server.address",
    "net.peer.name",
];

/// The peer a client span called, from its attributes: `peer.service` when the
/// instrumentation names the logical service; else a database as `db.system/db.name` (or
/// `db.namespace`); else the host called (`server.address`, or the older `net.peer.name`);
/// else the database system alone (`redis`). `None` when none is set.
///
/// ```
/// use aiops_telemetry_core::{Span, SpanId, SpanKind, TraceId, peer_of};
///
/// let query = Span::new(TraceId::random(), SpanId::random(), "orders", "SELECT orders")
///     .with_kind(SpanKind::Client)
///     .with_attribute("db.system", "postgresql")
///     .with_attribute("db.name", "shop")
///     .with_attribute("server.address", "db-1.internal");
/// assert_eq!(peer_of(&query).as_deref(), Some("postgresql/shop"));
/// ```
pub fn peer_of(span: &Span) -> Option<Cow<'_, str>> {
    let named = |key: &str| span.attribute(key).filter(|value| !value.is_empty());
    if let Some(service) = named("peer.service") {
        return Some(Cow::Borrowed(service));
    }
    let system = named("db.system");
    if let (Some(system), Some(database)) =
        (system, named("db.name").or_else(|| named("db.namespace")))
    {
        return Some(Cow::Owned(format!("{system}/{database}")));
    }
    named("server.address")
        .or_else(|| named("net.peer.name"))
        .or(system)
        .map(Cow::Borrowed)
}

/// True when `span` is a call out: a client span, or a span whose instrumentation left the
/// kind unspecified (internal) but names whom it called (`peer.service`, `db.system`,
/// `server.address`, `net.peer.name`: attributes of the far side of a call).
pub fn is_outgoing_call(span: &Span) -> bool {
    match span.kind {
        SpanKind::Client => true,
        SpanKind::Internal => [
            "peer.service",
            "db.system",
            "server.address",
            "net.peer.name",
        ]
        .iter()
        .any(|key| span.attribute(key).is_some_and(|value| !value.is_empty())),
        _ => false,
    }
}

/// The peer-keyed operation of a client span (`GET -> currency`), or `None` when the span is
/// not an [outgoing call](is_outgoing_call), names no peer, or is keyed already.
pub fn peer_keyed_operation(span: &Span) -> Option<SpanText> {
    if !is_outgoing_call(span) || peer_in_operation(&span.operation).is_some() {
        return None;
    }
    let peer = peer_of(span)?;
    Some(SpanText::from(format!(
        "{}{PEER_SEPARATOR}{peer}",
        span.operation.as_str()
    )))
}

/// Keys `span` by its peer when it is an outgoing call that names one (see
/// [`peer_keyed_operation`]), and marks it a client span; returns whether it changed.
pub fn key_by_peer(span: &mut Span) -> bool {
    match peer_keyed_operation(span) {
        Some(operation) => {
            span.operation = operation;
            span.kind = SpanKind::Client;
            true
        }
        None => false,
    }
}

/// The peer named by a peer-keyed operation (`currency` in `GET -> currency`), if it is one.
pub fn peer_in_operation(operation: &str) -> Option<&str> {
    operation
        .rsplit_once(PEER_SEPARATOR)
        .map(|(_, peer)| peer)
        .filter(|peer| !peer.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SpanId, TraceId};

    fn client(operation: &'static str) -> Span {
        Span::new(TraceId::random(), SpanId::random(), "frontend", operation)
            .with_kind(SpanKind::Client)
    }

    #[test]
    fn peer_service_wins_over_the_address() {
        let span = client("GET")
            .with_attribute("server.address", "10.0.0.7")
            .with_attribute("peer.service", "currency");
        assert_eq!(peer_of(&span).as_deref(), Some("currency"));
    }

    #[test]
    fn a_database_is_named_by_system_and_database() {
        let span = client("HGET").with_attribute("db.system", "redis");
        assert_eq!(peer_of(&span).as_deref(), Some("redis"));
        let span = span.with_attribute("server.address", "cart-cache");
        assert_eq!(
            peer_of(&span).as_deref(),
            Some("cart-cache"),
            "the host is more specific"
        );
        let span = client("find")
            .with_attribute("db.system", "mongodb")
            .with_attribute("db.namespace", "carts");
        assert_eq!(peer_of(&span).as_deref(), Some("mongodb/carts"));
    }

    #[test]
    fn the_host_is_the_last_resort_and_empty_values_do_not_count() {
        let span = client("POST")
            .with_attribute("peer.service", "")
            .with_attribute("net.peer.name", "api.stripe.com");
        assert_eq!(peer_of(&span).as_deref(), Some("api.stripe.com"));
        assert_eq!(peer_of(&client("GET")), None);
    }

    #[test]
    fn client_spans_are_keyed_once_and_server_spans_never() {
        let mut span = client("GET").with_attribute("server.address", "currency");
        assert!(key_by_peer(&mut span));
        assert_eq!(span.operation.as_str(), "GET -> currency");
        assert!(!key_by_peer(&mut span), "already keyed");
        assert_eq!(peer_in_operation(&span.operation), Some("currency"));

        let mut server = Span::new(
            TraceId::random(),
            SpanId::random(),
            "currency",
            "GET /rates",
        )
        .with_attribute("server.address", "currency");
        assert!(!key_by_peer(&mut server));
        assert_eq!(server.operation.as_str(), "GET /rates");
    }
}
