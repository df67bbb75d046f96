//! Resources that answer JSON to every method: the one they serve, and 405 naming it for the
//! others.

use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, ResponseError, Responder, web};

use crate::api_error::ApiError;

/// A resource's fallback for methods it does not serve: 405 naming the accepted ones.
pub fn method_not_allowed(
    allowed: &'static [&'static str],
) -> impl Fn(HttpRequest) -> std::future::Ready<HttpResponse> + Clone + 'static {
    move |request: HttpRequest| {
        std::future::ready(
            ApiError::method_not_allowed(request.method().as_str(), request.path(), allowed)
                .error_response(),
        )
    }
}

/// A resource serving `GET` with `handler`, answering 405 JSON to other methods.
pub fn get_resource<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(method_not_allowed(&["GET"])))
}

/// A resource serving `POST` with `handler`, answering 405 JSON to other methods.
pub fn post_resource<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(method_not_allowed(&["POST"])))
}
