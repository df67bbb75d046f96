//! Spans as OpenTelemetry instrumentation writes them: names, kinds, statuses and attributes
//! of server, client, database and internal spans, for current and older instrumentation.

use std::borrow::Cow;

use aiops_telemetry_core::{Span, SpanId, SpanKind, SpanStatus, SpanText, TraceId};

use crate::topology::{ClientNaming, Dependency, DependencyKind, Operation, Protocol, Service};

/// How a request ended, as its server (or the client that made it) saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Success.
    Ok,
    /// The operation failed on its own (HTTP 500, gRPC INTERNAL).
    Failed,
    /// A callee failed and the failure propagated (HTTP 502, gRPC UNAVAILABLE).
    CalleeFailed,
    /// A callee did not answer in time (HTTP 504, gRPC DEADLINE_EXCEEDED).
    CalleeTimedOut,
    /// The client gave up waiting: no response at all.
    TimedOut,
}

impl Reply {
    /// True unless the reply is a success.
    pub fn is_failure(self) -> bool {
        self != Self::Ok
    }

    fn http_code(self) -> Option<u16> {
        match self {
            Self::Ok => Some(200),
            Self::Failed => Some(500),
            Self::CalleeFailed => Some(502),
            Self::CalleeTimedOut => Some(504),
            Self::TimedOut => None,
        }
    }

    fn grpc_code(self) -> &'static str {
        match self {
            Self::Ok => "0",
            Self::Failed => "13",
            Self::CalleeFailed => "14",
            Self::CalleeTimedOut | Self::TimedOut => "4",
        }
    }
}

/// Where and when a span happened.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    /// The trace.
    pub trace: TraceId,
    /// The span's id.
    pub id: SpanId,
    /// Its parent, if any.
    pub parent: Option<SpanId>,
    /// Start, Unix nanoseconds.
    pub start_ns: u64,
    /// Duration, nanoseconds.
    pub duration_ns: u64,
}

type Attrs = Vec<(SpanText, SpanText)>;

fn base(service: &Service, name: SpanText, kind: SpanKind, place: Place) -> (Span, Attrs) {
    let mut span = Span::new(place.trace, place.id, service.name.clone(), name)
        .with_timing(place.start_ns, place.duration_ns)
        .with_kind(if service.legacy {
            // Older instrumentation leaves the kind unspecified, which reads as internal.
            SpanKind::Internal
        } else {
            kind
        });
    span.parent_span_id = place.parent;
    let attrs = vec![(
        SpanText::from_static("service.version"),
        service.version.clone(),
    )];
    (span, attrs)
}

fn finish(mut span: Span, attrs: Attrs) -> Span {
    span.attributes = Cow::Owned(attrs);
    span
}

fn code_text(code: u16) -> SpanText {
    match code {
        200 => "200".into(),
        500 => "500".into(),
        502 => "502".into(),
        503 => "503".into(),
        504 => "504".into(),
        other => other.to_string().into(),
    }
}

/// Adds the HTTP status (attribute and field) and, for current instrumentation, an error
/// status on failures. `server` spans name the status attribute as the instrumentation of
/// their age does.
fn http_outcome(span: &mut Span, attrs: &mut Attrs, legacy: bool, reply: Reply) {
    match reply.http_code() {
        Some(code) => {
            let key = if legacy {
                "http.status_code"
            } else {
                "http.response.status_code"
            };
            attrs.push((key.into(), code_text(code)));
            span.http_status = Some(code);
            if !legacy && code >= 500 {
                span.status = SpanStatus::Error;
            }
        }
        None => {
            if !legacy {
                attrs.push(("error.type".into(), "timeout".into()));
                span.status = SpanStatus::Error;
            }
        }
    }
}

fn grpc_outcome(span: &mut Span, attrs: &mut Attrs, legacy: bool, reply: Reply) {
    if legacy {
        return;
    }
    attrs.push(("rpc.grpc.status_code".into(), reply.grpc_code().into()));
    if reply.is_failure() {
        span.status = SpanStatus::Error;
    }
}

/// The SERVER span of `op` in `service`.
pub fn server(service: &Service, op: &Operation, place: Place, reply: Reply) -> Span {
    let (mut span, mut attrs) = base(service, op.name.clone(), SpanKind::Server, place);
    match service.protocol {
        Protocol::Http => {
            let method_key = if service.legacy {
                "http.method"
            } else {
                "http.request.method"
            };
            attrs.push((method_key.into(), op.method.into()));
            attrs.push(("http.route".into(), op.route.clone()));
            http_outcome(&mut span, &mut attrs, service.legacy, reply);
        }
        Protocol::Grpc => {
            rpc_attributes(&mut attrs, service, op);
            grpc_outcome(&mut span, &mut attrs, service.legacy, reply);
        }
    }
    finish(span, attrs)
}

fn rpc_attributes(attrs: &mut Attrs, callee: &Service, op: &Operation) {
    attrs.push(("rpc.system".into(), "grpc".into()));
    attrs.push(("rpc.service".into(), callee.rpc_service.clone()));
    attrs.push(("rpc.method".into(), op.route.clone()));
}

/// The name of the CLIENT span `caller` writes for a call to `op` of `callee`.
pub fn client_name(caller: &Service, callee: &Service, op: &Operation) -> SpanText {
    match callee.protocol {
        Protocol::Grpc => op.name.clone(),
        Protocol::Http => http_client_name(caller, op.method),
    }
}

fn http_client_name(caller: &Service, method: &'static str) -> SpanText {
    match caller.client_naming {
        ClientNaming::Method => method.into(),
        ClientNaming::HttpMethod => match method {
            "GET" => "HTTP GET".into(),
            "POST" => "HTTP POST".into(),
            "PUT" => "HTTP PUT".into(),
            "DELETE" => "HTTP DELETE".into(),
            other => format!("HTTP {other}").into(),
        },
    }
}

/// The CLIENT span of `caller` calling `op` of `callee`.
pub fn client(
    caller: &Service,
    callee: &Service,
    op: &Operation,
    place: Place,
    reply: Reply,
) -> Span {
    let name = client_name(caller, callee, op);
    let (mut span, mut attrs) = base(caller, name, SpanKind::Client, place);
    let host = if caller.full_host_names {
        callee.full_host.clone()
    } else {
        callee.host.clone()
    };
    attrs.push(("server.address".into(), host));
    if caller.sets_peer_service {
        attrs.push(("peer.service".into(), callee.name.clone()));
    }
    match callee.protocol {
        Protocol::Http => {
            let method_key = if caller.legacy {
                "http.method"
            } else {
                "http.request.method"
            };
            attrs.push((method_key.into(), op.method.into()));
            http_outcome(&mut span, &mut attrs, caller.legacy, reply);
        }
        Protocol::Grpc => {
            rpc_attributes(&mut attrs, callee, op);
            grpc_outcome(&mut span, &mut attrs, caller.legacy, reply);
        }
    }
    finish(span, attrs)
}

/// The name of the CLIENT span `caller` writes for operation `operation` of `dependency`:
/// the query or command, or for an external API the HTTP client's name.
pub fn dependency_name(caller: &Service, dependency: &Dependency, operation: usize) -> SpanText {
    let op = &dependency.operations[operation];
    match dependency.kind {
        DependencyKind::ExternalApi => http_client_name(caller, op.method),
        DependencyKind::Database | DependencyKind::Cache => op.name.clone(),
    }
}

/// The CLIENT span of `caller` using operation `operation` of an uninstrumented dependency.
pub fn dependency(
    caller: &Service,
    dependency: &Dependency,
    operation: usize,
    place: Place,
    failed: bool,
) -> Span {
    let op = &dependency.operations[operation];
    let name = dependency_name(caller, dependency, operation);
    let (mut span, mut attrs) = base(caller, name, SpanKind::Client, place);
    attrs.push(("server.address".into(), dependency.host.clone()));
    if let Some(peer) = &dependency.peer_service {
        attrs.push(("peer.service".into(), peer.clone()));
    }
    match dependency.kind {
        DependencyKind::ExternalApi => {
            attrs.push(("http.request.method".into(), op.method.into()));
            let code = if failed { 503 } else { 200 };
            attrs.push(("http.response.status_code".into(), code_text(code)));
            span.http_status = Some(code);
        }
        DependencyKind::Database | DependencyKind::Cache => {
            if let Some(system) = dependency.system {
                attrs.push(("db.system".into(), system.into()));
            }
            if let Some((key, name)) = &dependency.db_name {
                attrs.push((SpanText::from(*key), name.clone()));
            }
            attrs.push(("db.operation.name".into(), op.method.into()));
        }
    }
    if failed && !caller.legacy {
        span.status = SpanStatus::Error;
    }
    finish(span, attrs)
}

/// An INTERNAL span of `service`.
pub fn internal(service: &Service, name: &SpanText, place: Place) -> Span {
    let (span, attrs) = base(service, name.clone(), SpanKind::Internal, place);
    finish(span, attrs)
}
