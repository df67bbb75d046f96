//! The shop's routes as data: which are monitored, with which method, and the attributes of
//! their spans. The middleware, chaos and the warm-up read this table.

use aiops_telemetry_core::SpanText;

/// The service name of the demo shop's spans.
pub const SHOP_SERVICE: &str = "shop";

/// A monitored demo-shop route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShopRoute {
    /// The HTTP method the route serves.
    pub method: &'static str,
    /// The route's path, also the operation of its spans.
    pub path: &'static str,
    /// Whether the handler calls other endpoints and so reads the request's [`RequestSpan`]
    /// to propagate the trace.
    pub calls_dependencies: bool,
    /// The attributes of the route's spans, shared by all of them.
    pub attributes: &'static [(SpanText, SpanText)],
}

/// The attributes of a shop span served with `method`.
const fn attributes(method: &'static str) -> [(SpanText, SpanText); 2] {
    [
        (
            SpanText::from_static("service.version"),
            SpanText::from_static(env!("CARGO_PKG_VERSION")),
        ),
        (
            SpanText::from_static("http.request.method"),
            SpanText::from_static(method),
        ),
    ]
}

const GET_ATTRIBUTES: &[(SpanText, SpanText)] = &attributes("GET");
const POST_ATTRIBUTES: &[(SpanText, SpanText)] = &attributes("POST");

impl ShopRoute {
    const fn get(path: &'static str, calls_dependencies: bool) -> Self {
        Self {
            method: "GET",
            path,
            calls_dependencies,
            attributes: GET_ATTRIBUTES,
        }
    }

    const fn post(path: &'static str, calls_dependencies: bool) -> Self {
        Self {
            method: "POST",
            path,
            calls_dependencies,
            attributes: POST_ATTRIBUTES,
        }
    }
}

/// The monitored demo-shop routes.
pub const SHOP_ROUTES: [ShopRoute; 4] = [
    ShopRoute::get("/health", false),
    ShopRoute::get("/inventory", false),
    ShopRoute::post("/payment", false),
    ShopRoute::post("/checkout", true),
];

/// The shop's paths, the endpoints chaos rules may name.
pub fn shop_paths() -> Vec<String> {
    SHOP_ROUTES
        .iter()
        .map(|route| route.path.to_owned())
        .collect()
}
