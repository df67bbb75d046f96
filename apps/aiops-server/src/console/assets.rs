//! The console's static files, compiled into the binary: its own stylesheet and script, and the
//! vendored chart library (uPlot, `assets/vendor/uplot`). Each is served under a path that
//! holds a hash of its content (`/assets/<hash>/<name>`), so a browser may keep it for a year:
//! a new build with changed content links a new path.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::api_error::ApiError;

/// One file served under `/assets/`.
#[derive(Debug)]
pub struct Asset {
    /// The file name in the path.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

/// The console's stylesheet.
pub const CONSOLE_CSS: &str = "console.css";
/// The console's script: refresh, the API token, buttons and charts.
pub const CONSOLE_JS: &str = "console.js";
/// uPlot's script.
pub const UPLOT_JS: &str = "uPlot.iife.min.js";
/// uPlot's stylesheet.
pub const UPLOT_CSS: &str = "uPlot.min.css";

/// Every file served under `/assets/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: CONSOLE_CSS,
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/console.css"),
    },
    Asset {
        name: CONSOLE_JS,
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/console.js"),
    },
    Asset {
        name: UPLOT_JS,
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: UPLOT_CSS,
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/uplot/uPlot.min.css"),
    },
];

/// A browser keeps a file at a hashed path this long: a year, the longest HTTP caches honour.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The content hash of `bytes`: 64-bit FNV-1a, 16 hex digits. Not a security measure, only a
/// name that changes when the content does.
fn content_hash(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// The hashes of [`ASSETS`], in their order, computed once.
fn hashes() -> &'static [String] {
    static HASHES: OnceLock<Vec<String>> = OnceLock::new();
    HASHES.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| content_hash(asset.bytes))
            .collect()
    })
}

/// The path that serves asset `name`, e.g. `/assets/0123456789abcdef/console.css`.
pub fn path(name: &str) -> String {
    ASSETS
        .iter()
        .zip(hashes())
        .find(|(asset, _)| asset.name == name)
        .map(|(asset, hash)| format!("/assets/{hash}/{}", asset.name))
        .unwrap_or_else(|| format!("/assets/unknown/{name}"))
}

/// `GET /assets/{hash}/{name}`: the file, cached for a year when the hash is the current one;
/// an older hash still gets the current file, but not for long, so no page breaks during an
/// upgrade. `If-None-Match` with the current hash gets 304.
pub async fn serve(request: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (hash, name) = path.into_inner();
    let Some((asset, current)) = ASSETS
        .iter()
        .zip(hashes())
        .find(|(asset, _)| asset.name == name)
    else {
        let names: Vec<&str> = ASSETS.iter().map(|asset| asset.name).collect();
        return actix_web::ResponseError::error_response(&ApiError::not_found(format!(
            "no asset {name:?}; accepted: {}",
            names.join(", ")
        )));
    };
    let etag = format!("\"{current}\"");
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let cache = if hash == *current {
        IMMUTABLE
    } else {
        "no-cache"
    };
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(cache)))
        .insert_header((header::ETAG, etag))
        .insert_header(("x-content-type-options", "nosniff"));
    if fresh {
        return response.finish();
    }
    response.content_type(asset.content_type).body(asset.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_paths_carry_a_hash_of_their_content() {
        let css = path(CONSOLE_CSS);
        assert!(css.starts_with("/assets/"), "{css}");
        assert!(css.ends_with("/console.css"), "{css}");
        assert_eq!(css.len(), "/assets//console.css".len() + 16);
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
        assert_eq!(content_hash(b""), "cbf29ce484222325");
    }

    #[test]
    fn the_vendored_chart_library_is_small_and_licensed() {
        let total: usize = ASSETS.iter().map(|asset| asset.bytes.len()).sum();
        assert!(total < 150 * 1024, "assets weigh {total} bytes");
        let license = include_str!("../../assets/vendor/uplot/LICENSE");
        assert!(license.contains("MIT"), "{license}");
    }
}
