//! Resources that answer JSON to every method: the one they serve, and 405 naming it for the
//! others. Each is noted in a [`Registered`] list as it is built, so that a test can check the
//! routing table against the OpenAPI document.

use actix_web::{
    FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, ResponseError, Route, web,
};

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

/// The routes registered so far, as (method, full path).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registered(Vec<(&'static str, String)>);

impl Registered {
    /// A builder of resources at paths below `prefix` (`""` at the root, `/aiops` for the
    /// resources of the `/aiops` scope).
    pub fn under(&mut self, prefix: &'static str) -> Resources<'_> {
        Resources {
            prefix,
            registered: self,
        }
    }

    /// The routes, in registration order.
    pub fn routes(&self) -> &[(&'static str, String)] {
        &self.0
    }
}

/// Builds resources that serve one method each below a prefix, noting each in [`Registered`].
#[derive(Debug)]
pub struct Resources<'a> {
    prefix: &'static str,
    registered: &'a mut Registered,
}

impl Resources<'_> {
    /// The prefix of the scope the resources go into.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// A resource serving `GET` at `path` with `handler`, answering 405 JSON to other methods.
    pub fn get<F, Args>(&mut self, path: &str, handler: F) -> Resource
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.serve(&["GET"], web::get(), path, handler)
    }

    /// A resource serving `POST` at `path` with `handler`, answering 405 JSON to other methods.
    pub fn post<F, Args>(&mut self, path: &str, handler: F) -> Resource
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.serve(&["POST"], web::post(), path, handler)
    }

    /// A resource serving `DELETE` at `path` with `handler`, answering 405 JSON to other
    /// methods.
    pub fn delete<F, Args>(&mut self, path: &str, handler: F) -> Resource
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.serve(&["DELETE"], web::delete(), path, handler)
    }

    /// A resource serving `GET` with `get` and `POST` with `post` at `path`, answering 405
    /// JSON to other methods.
    pub fn get_and_post<F, Args, G, GArgs>(&mut self, path: &str, get: F, post: G) -> Resource
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
        G: Handler<GArgs>,
        GArgs: FromRequest + 'static,
        G::Output: Responder + 'static,
    {
        let full = format!("{}{path}", self.prefix);
        self.registered.0.push(("GET", full.clone()));
        self.registered.0.push(("POST", full));
        web::resource(path)
            .route(web::get().to(get))
            .route(web::post().to(post))
            .default_service(web::to(method_not_allowed(&["GET", "POST"])))
    }

    /// A resource serving `route` (for `method`) at `path` with `handler`.
    fn serve<F, Args>(
        &mut self,
        method: &'static [&'static str; 1],
        route: Route,
        path: &str,
        handler: F,
    ) -> Resource
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.registered
            .0
            .push((method[0], format!("{}{path}", self.prefix)));
        web::resource(path)
            .route(route.to(handler))
            .default_service(web::to(method_not_allowed(method)))
    }
}
