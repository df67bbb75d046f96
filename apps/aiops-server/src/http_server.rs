//! The HTTP/1.1 server over the bound listener: what `actix_web::HttpServer::listen` builds,
//! with every accepted connection wrapped in a [`HeadGuard`] so that a request head over the
//! parser's limits gets a JSON error (`request_head`). `HttpServer` takes no such wrapper, so
//! the same pieces are put together here: actix-server's accept loop and workers, actix-http's
//! HTTP/1.1 service with the connection timeouts, and the app per worker.

use std::any::Any;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_http::{HttpService, Protocol};
use actix_server::Server;
use actix_service::{
    IntoServiceFactory, ServiceFactory, ServiceFactoryExt, fn_service, map_config,
};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Extensions, ServiceRequest, ServiceResponse};
use actix_web::rt::net::TcpStream;
use actix_web::{App, Error};

use crate::request_head::HeadGuard;

/// The connection settings of [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct Connections {
    /// Worker threads, each with its own app.
    pub workers: usize,
    /// Connections each worker holds at most.
    pub per_worker: usize,
    /// How long a client has to send a request's line and headers.
    pub request_head_timeout: Duration,
    /// How long a closing connection waits for the client to close its side.
    pub client_disconnect_timeout: Duration,
    /// How long an idle kept-alive connection stays open (zero: none are kept alive).
    pub keep_alive: Duration,
    /// Seconds in-flight requests get once the server is asked to stop.
    pub shutdown_grace: u64,
}

/// Serves the app `factory` builds (once per worker) on `listener`; `on_connect` sees every
/// connection as it opens.
pub fn serve<F, T, B>(
    listener: TcpListener,
    connections: Connections,
    factory: F,
    on_connect: impl Fn(&dyn Any, &mut Extensions) + Clone + Send + 'static,
) -> std::io::Result<Server>
where
    F: Fn() -> App<T> + Clone + Send + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let address: SocketAddr = listener.local_addr()?;
    let builder = Server::build()
        .workers(connections.workers)
        .max_concurrent_connections(connections.per_worker)
        .shutdown_timeout(connections.shutdown_grace)
        .disable_signals();
    let shutdown_signal = builder.graceful_shutdown_signal();
    Ok(builder
        .listen(format!("aiops-{address}"), listener, move || {
            let on_connect = on_connect.clone();
            let shutdown_signal = shutdown_signal.clone();
            let app = factory()
                .into_factory()
                .map_err(|error: Error| error.error_response());
            // Nothing in the app reads the host or address of its configuration (no URL is
            // generated from it); AppConfig's own constructor is private to actix-web.
            let service = HttpService::build()
                .graceful_shutdown_signal(move || {
                    let signal = shutdown_signal.clone();
                    async move { signal.notified().await }
                })
                .keep_alive(connections.keep_alive)
                // The guard answers the head timeout in JSON; the parser's own timer, a second
                // later, only backs it up.
                .client_request_timeout(backup_timeout(connections.request_head_timeout))
                .client_disconnect_timeout(connections.client_disconnect_timeout)
                .h1_allow_half_closed(true)
                .local_addr(address)
                .on_connect_ext(
                    move |io: &HeadGuard<TcpStream>, extensions: &mut Extensions| {
                        on_connect(io.get_ref() as &dyn Any, extensions)
                    },
                )
                .finish(map_config(app, |_| AppConfig::default()));
            let head_timeout = connections.request_head_timeout;
            fn_service(move |io: TcpStream| async move {
                let peer = io.peer_addr().ok();
                Ok::<_, actix_http::error::DispatchError>((
                    HeadGuard::new(io, head_timeout),
                    Protocol::Http1,
                    peer,
                ))
            })
            .and_then(service)
        })?
        .run())
}

/// The parser's head timeout behind the guard's: a second later (zero stays zero, no limit).
fn backup_timeout(timeout: Duration) -> Duration {
    if timeout.is_zero() {
        timeout
    } else {
        timeout + Duration::from_secs(1)
    }
}
