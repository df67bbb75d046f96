//! `/api/`: Swagger UI over `GET /openapi.json`. Its files come from `utoipa-swagger-ui`
//! built with the `vendored` feature: the Swagger UI release is packaged inside a crate and
//! compiled into the binary, so nothing is fetched when building or serving (ADR 0008).

use std::sync::{Arc, OnceLock};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa_swagger_ui::Config;

use super::page::error_response;
use crate::api_error::ApiError;
use crate::routes::openapi::PATH as OPENAPI_PATH;

/// Swagger UI's configuration: the engine's document, and no online validator (Swagger UI
/// otherwise asks validator.swagger.io for a badge).
fn config() -> Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            Arc::new(
                Config::new([OPENAPI_PATH])
                    .validator_url("none")
                    .try_it_out_enabled(true),
            )
        })
        .clone()
}

/// `GET /api`: to `/api/`, where Swagger UI's relative links work.
pub async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/api/"))
        .finish()
}

/// `GET /api/{file}`: Swagger UI's page and files; its page when `file` is empty.
pub async fn serve(request: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let file = file.into_inner();
    match utoipa_swagger_ui::serve(&file, config()) {
        Ok(Some(found)) => HttpResponse::Ok()
            .content_type(found.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(found.bytes.into_owned()),
        Ok(None) => error_response(
            &request,
            &ApiError::not_found(format!(
                "no file {file:?} in the API browser; accepted: /api/ and the files it loads"
            )),
        ),
        Err(error) => error_response(
            &request,
            &ApiError::internal(format!("the API browser failed: {error}")),
        ),
    }
}
