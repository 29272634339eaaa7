//! Serving connections with bounds on slow clients, shared by the example servers.
//!
//! A webhook endpoint is public: a client sending its headers a byte a second, or holding an
//! idle keep-alive connection forever, would otherwise keep a task and its memory alive for
//! as long as it likes. Twilio sends each request at once and gives up after 15 seconds, so:
//! - the request headers must arrive within [`HEADER_READ_TIMEOUT`];
//! - a connection lives at most [`CONNECTION_MAX_AGE`], then is closed gracefully (the request
//!   in flight finishes; Twilio opens a new connection for the next webhook);
//! - the body is bounded by the layer's own `body_timeout` and `body_limit`.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// The longest a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection (keep-alive included) is kept open.
pub const CONNECTION_MAX_AGE: Duration = Duration::from_secs(60);

/// The HTTP/1 and HTTP/2 connection settings every example uses.
pub fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

/// Serves `service` on `listener` until `shutdown` completes.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let builder = builder();
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = tokio::time::sleep(CONNECTION_MAX_AGE) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                // Timeouts and resets from clients are routine on a public endpoint.
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
}
