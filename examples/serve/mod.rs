//! How the example servers serve connections: bounds on slow clients, and HTTPS (rustls).
//!
//! A webhook endpoint is public: a client sending its headers a byte a second, or holding an
//! idle keep-alive connection forever, would otherwise keep a task and its memory alive for
//! as long as it likes. Twilio sends each request at once and gives up after 15 seconds, so:
//! - the request headers must arrive within [`HEADER_READ_TIMEOUT`];
//! - a connection lives at most [`CONNECTION_MAX_AGE`], then is closed gracefully (the request
//!   in flight finishes; Twilio opens a new connection for the next webhook);
//! - the body is bounded by the layer's own `body_timeout` and `body_limit`;
//! - with a certificate and key ([`tls_acceptor`]), connections are TLS (rustls, with the
//!   `ring` provider: no OpenSSL, nothing to install but the Rust toolchain and a C
//!   compiler), and the TLS handshake is bounded like the headers.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The longest a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection (keep-alive included) is kept open.
pub const CONNECTION_MAX_AGE: Duration = Duration::from_secs(60);

/// A listener on `address`; an error names the address (and, when it is taken, what to do).
pub async fn listen(
    address: impl tokio::net::ToSocketAddrs + std::fmt::Display,
) -> std::io::Result<TcpListener> {
    TcpListener::bind(&address).await.map_err(|error| {
        let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
            ": another program listens there (another copy of this example?); stop it, or set \
             BIND to another address, 127.0.0.1:0 for any free port"
        } else {
            ""
        };
        std::io::Error::new(
            error.kind(),
            format!("cannot listen on {address}: {error}{hint}"),
        )
    })
}

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

/// A TLS acceptor for the PEM certificate chain and private key at these paths.
pub fn tls_acceptor(
    cert_path: &str,
    key_path: &str,
) -> Result<TlsAcceptor, Box<dyn std::error::Error>> {
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| format!("TLS_CERT {cert_path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("TLS_CERT {cert_path}: {e}"))?;
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|e| format!("TLS_KEY {key_path}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // HTTP/1.1 only: Twilio sends webhooks over HTTP/1.1, and over HTTP/2 a response given
    // before the request body is read (a 401 challenge, a 413) was seen to reach curl as a
    // reset stream ("empty reply", "stream error") whatever the handler, axum's own 404 too.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `service` on `listener` until `shutdown` completes, over TLS when `tls` is given.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    tls: Option<TlsAcceptor>,
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
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(stream, service).await,
                Some(tls) => {
                    // A handshake is bounded like the headers that follow it.
                    match tokio::time::timeout(HEADER_READ_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => connection(stream, service).await,
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// One connection, closed gracefully once it reaches [`CONNECTION_MAX_AGE`].
async fn connection<I, S, B>(io: I, service: TowerToHyperService<S>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = builder();
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
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
}
