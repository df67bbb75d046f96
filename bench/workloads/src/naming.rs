//! Names as real systems spell them: services, hosts, HTTP routes, gRPC methods, databases,
//! caches and external APIs.

use rand::Rng;
use rand::rngs::StdRng;

use crate::sample::pick;

/// Entry services (the ones that receive user traffic).
const ENTRY_SERVICES: [&str; 4] = ["frontend", "api-gateway", "web", "mobile-bff"];

/// Everything else.
const SERVICES: [&str; 40] = [
    "cart",
    "checkout",
    "payment",
    "shipping",
    "email",
    "currency",
    "recommendation",
    "ad",
    "product-catalog",
    "quote",
    "fraud-detection",
    "accounting",
    "inventory",
    "user",
    "auth",
    "search",
    "pricing",
    "notification",
    "review",
    "order",
    "session",
    "media",
    "geo",
    "rate",
    "profile",
    "reservation",
    "ledger",
    "billing",
    "tax",
    "coupon",
    "wishlist",
    "loyalty",
    "catalog-index",
    "image-resize",
    "feature-flag",
    "config",
    "audit",
    "warehouse",
    "delivery-tracking",
    "consent",
];

/// gRPC packages (one per system).
const PACKAGES: [&str; 4] = ["oteldemo", "shop.v1", "acme.platform", "hipstershop"];

const GRPC_VERBS: [&str; 10] = [
    "Get", "List", "Create", "Update", "Delete", "Check", "Compute", "Validate", "Search", "Place",
];
const HTTP_ROUTES: [(&str, &str); 10] = [
    ("GET", ""),
    ("GET", "/{id}"),
    ("POST", ""),
    ("PUT", "/{id}"),
    ("GET", "/search"),
    ("POST", "/batch"),
    ("DELETE", "/{id}"),
    ("GET", "/{id}/items"),
    ("POST", "/{id}/items"),
    ("GET", "/summary"),
];
const INTERNAL_OPERATIONS: [&str; 10] = [
    "validate",
    "serialize",
    "render",
    "compute-price",
    "parse-request",
    "authorize",
    "map-response",
    "apply-rules",
    "compress",
    "load-config",
];

/// How service names are spelled in one system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceStyle {
    /// `cartservice`, as in the OpenTelemetry demo.
    Joined,
    /// `cart`.
    Bare,
    /// `cart-service`.
    Dashed,
}

impl ServiceStyle {
    /// A random style.
    pub fn random(rng: &mut StdRng) -> Self {
        *pick(rng, &[Self::Joined, Self::Bare, Self::Dashed])
    }

    /// The service name of `base`.
    pub fn name(self, base: &str) -> String {
        match self {
            Self::Joined => format!("{}service", base.replace('-', "")),
            Self::Bare => base.to_owned(),
            Self::Dashed => format!("{base}-service"),
        }
    }
}

/// `count` distinct base names: the first `entries` from the entry pool, the others from the
/// service pool.
pub fn service_bases(rng: &mut StdRng, count: usize, entries: usize) -> Vec<&'static str> {
    let mut entry_pool = ENTRY_SERVICES.to_vec();
    let mut pool = SERVICES.to_vec();
    let mut bases = Vec::with_capacity(count);
    for index in 0..count {
        let from = if index < entries {
            &mut entry_pool
        } else {
            &mut pool
        };
        let at = rng.random_range(0..from.len());
        bases.push(from.swap_remove(at));
    }
    bases
}

/// A gRPC package for one system.
pub fn grpc_package(rng: &mut StdRng) -> &'static str {
    let package: &&str = pick(rng, &PACKAGES);
    package
}

/// The host name callers use for a service: the bare name or the cluster's full name.
pub fn host(service: &str, namespace: &str, full: bool) -> String {
    if full {
        format!("{service}.{namespace}.svc.cluster.local")
    } else {
        service.to_owned()
    }
}

/// `CartService` from `cart`, `ProductCatalogService` from `product-catalog`.
pub fn grpc_service(base: &str) -> String {
    let mut name: String = base.split('-').map(capitalised).collect();
    name.push_str("Service");
    name
}

/// `count` distinct gRPC methods of a service (`GetCart`, `ListCart`...).
pub fn grpc_methods(rng: &mut StdRng, base: &str, count: usize) -> Vec<String> {
    let noun: String = base.split('-').map(capitalised).collect();
    let mut verbs = GRPC_VERBS.to_vec();
    (0..count)
        .map(|_| {
            let verb = verbs.swap_remove(rng.random_range(0..verbs.len()));
            format!("{verb}{noun}")
        })
        .collect()
}

/// `count` distinct HTTP operations of a service: `(method, route)` such as
/// `("GET", "/api/cart/{id}")`.
pub fn http_routes(rng: &mut StdRng, base: &str, count: usize) -> Vec<(&'static str, String)> {
    let mut routes = HTTP_ROUTES.to_vec();
    let prefix = if rng.random_bool(0.5) { "/api" } else { "/v1" };
    (0..count)
        .map(|_| {
            let (method, suffix) = routes.swap_remove(rng.random_range(0..routes.len()));
            (method, format!("{prefix}/{base}{suffix}"))
        })
        .collect()
}

/// Names of `count` distinct internal operations.
pub fn internal_operations(rng: &mut StdRng, count: usize) -> Vec<&'static str> {
    let mut pool = INTERNAL_OPERATIONS.to_vec();
    (0..count)
        .map(|_| pool.swap_remove(rng.random_range(0..pool.len())))
        .collect()
}

/// Tables a database of a service holds, named after the service's domain.
pub fn tables(base: &str) -> [String; 2] {
    let stem = base.replace('-', "_");
    [format!("{stem}s"), format!("{stem}_items")]
}

/// External APIs: host, `peer.service` a caller may configure, and the HTTP method used.
pub const EXTERNAL_APIS: [(&str, &str, &str); 6] = [
    ("api.stripe.com", "stripe", "POST"),
    ("api.sendgrid.com", "sendgrid", "POST"),
    ("maps.googleapis.com", "google-maps", "GET"),
    ("api.exchangerate.host", "exchangerate", "GET"),
    ("api.twilio.com", "twilio", "POST"),
    ("api.shippo.com", "shippo", "POST"),
];

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn names_look_like_real_ones() {
        assert_eq!(
            ServiceStyle::Joined.name("product-catalog"),
            "productcatalogservice"
        );
        assert_eq!(ServiceStyle::Dashed.name("cart"), "cart-service");
        assert_eq!(grpc_service("product-catalog"), "ProductCatalogService");
        assert_eq!(
            host("cartservice", "default", true),
            "cartservice.default.svc.cluster.local"
        );
        let mut rng = StdRng::seed_from_u64(1);
        let routes = http_routes(&mut rng, "cart", 4);
        assert!(routes.iter().all(|(_, route)| route.contains("/cart")));
        let methods = grpc_methods(&mut rng, "cart", 3);
        assert!(methods.iter().all(|m| m.ends_with("Cart")));
    }

    #[test]
    fn service_bases_are_distinct() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut bases = service_bases(&mut rng, 30, 2);
        assert!(ENTRY_SERVICES.contains(&bases[0]) && ENTRY_SERVICES.contains(&bases[1]));
        bases.sort_unstable();
        bases.dedup();
        assert_eq!(bases.len(), 30);
    }
}
