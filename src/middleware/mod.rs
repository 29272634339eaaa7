//! A tower middleware that refuses forged Twilio webhooks before your handler sees them.
//!
//! [`TwilioWebhookLayer`] checks `X-Twilio-Signature` on every request with a
//! [`Validator`](crate::Validator):
//!
//! - the body is buffered once (up to a limit: a larger `Content-Length` is refused before
//!   reading) and handed on unchanged, so axum's `Form`, `Json`, `Bytes` and `String`
//!   extractors work after it;
//! - a valid request reaches the inner service with a [`Verified`](crate::Verified)
//!   extension saying which URL form and which key matched;
//! - a missing, malformed or wrong signature, or a body that does not match `bodySHA256`, is
//!   answered `403` with an empty body; a body over the limit `413`; an unreadable body `400`.
//!   The reason ([`Rejection`], and the [`ValidationError`](crate::ValidationError)) is in the
//!   response's extensions, and in a `tracing` event with the URLs tried (credentials
//!   redacted; never a key or a computed signature);
//! - the service never returns `Err` for a bad request, so axum's `Router::layer` and
//!   `route_layer` accept it.
//!
//! ```
//! use axum::{Form, Router, routing::post};
//! use twilio_webhook::Validator;
//! use twilio_webhook::middleware::TwilioWebhookLayer;
//!
//! async fn sms(Form(params): Form<Vec<(String, String)>>) -> &'static str {
//!     "<Response/>"
//! }
//!
//! # fn main() -> Result<(), twilio_webhook::middleware::ConfigError> {
//! let twilio = TwilioWebhookLayer::new(Validator::new("your primary auth token"))?
//!     .public_url("https://hooks.example.com")?;
//! // On the route's handlers: a wrong path stays 404, a wrong method 405.
//! let app: Router = Router::new().route("/twilio/sms", post(sms).route_layer(twilio));
//! # Ok(()) }
//! ```
//!
//! Where to put it: on the webhook routes' method routers (`post(sms).route_layer(twilio)`),
//! so axum answers an unknown path `404` and a wrong method `405` before the layer runs. With
//! `Router::layer`, both come back `403` "no X-Twilio-Signature header", and a misconfigured
//! webhook URL looks like a signature problem (`Router::route_layer` keeps the 404 only).
//!
//! Any tower service that takes `Request<Full<Bytes>>` works the same way:
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//! use twilio_webhook::{Validator, compute_signature};
//! use twilio_webhook::middleware::TwilioWebhookLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let service = ServiceBuilder::new()
//!     .layer(TwilioWebhookLayer::new(Validator::new("12345"))?.public_url("https://example.com")?)
//!     .service_fn(|_: Request<Full<Bytes>>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("ok"))))
//!     });
//!
//! let signature = compute_signature("12345", "https://example.com/sms", &[("Body", "hi")]);
//! let request = Request::post("/sms")
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .header("x-twilio-signature", signature)
//!     .body(Full::new(Bytes::from("Body=hi")))?;
//! let response = service.clone().oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//!
//! let forged = Request::post("/sms").body(Full::new(Bytes::from("Body=hi")))?;
//! assert_eq!(service.oneshot(forged).await?.status(), 403);
//! # Ok(()) }
//! ```
//!
//! # Deployment caveat: which URL
//!
//! The signature covers the exact URL Twilio requested. Behind a TLS terminator, load balancer
//! or tunnel, the server sees another scheme, host or port, and every webhook fails.
//!
//! - **Recommended:** [`TwilioWebhookLayer::public_url`], the base URL configured in Twilio's
//!   console (`https://hooks.example.com`, or with a prefix `https://example.com/api`). The
//!   request's path and query are appended as received.
//! - Otherwise the URL is derived from the request: the HTTP/2 authority or `Host`, with the
//!   scheme from [`TwilioWebhookLayer::derive_url`] (default `https`). `Forwarded` and
//!   `X-Forwarded-*` are honoured only after [`TwilioWebhookLayer::trust_forwarded_headers`],
//!   because any client can send them.
//!
//! Inside `axum::Router::nest`, the layer sees the full path: with the `axum` feature (a
//! default one) it reads axum's `OriginalUri`. Without that feature it cannot, and every
//! genuine webhook to a nested route is refused: keep `axum` on in axum apps.

mod buffer;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
mod future;
mod key_source;
mod layer;
mod rejection_log;
mod replay_guard;
mod request_url;
mod response;
mod service;

use core::fmt;

pub use crate::Unverified;
pub use future::ResponseFuture;
pub use key_source::{AccountMap, KeyLookup, KeyRequest, KeySource};
pub use layer::{DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, TwilioWebhookLayer};
pub use replay_guard::{DEFAULT_IN_PROGRESS_WAIT, DEFAULT_STORE_TIMEOUT, ReplayGuard};
pub use request_url::Scheme;
pub use response::{DefaultRejection, Rejection, RejectionResponse, ResponseBody};
pub use service::TwilioWebhook;

use crate::InvalidUrl;

/// Errors a body may return, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A layer that cannot work as configured. Reported when it is built, not per request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The validator has no key: webhooks are signed with the account's primary auth token
    /// (an API key secret cannot validate them).
    NoUsableKey,
    /// The public URL is not an absolute `scheme://host` URL.
    InvalidPublicUrl {
        /// The URL given (any `user:password@` shown as `***@`).
        url: String,
        /// What is wrong with it.
        reason: InvalidUrl,
    },
    /// The public URL carries a query or fragment; it must be a base only.
    PublicUrlHasQuery {
        /// The URL given (any `user:password@` shown as `***@`).
        url: String,
    },
    /// The public URL ends with `/`, which would double the request path's leading slash.
    PublicUrlTrailingSlash {
        /// The URL given (any `user:password@` shown as `***@`).
        url: String,
    },
    /// The public URL's scheme is neither `https` nor `http`.
    UnsupportedScheme {
        /// The URL given (any `user:password@` shown as `***@`).
        url: String,
    },
    /// The path prefix given to
    /// [`strip_path_prefix`](TwilioWebhookLayer::strip_path_prefix) is not a `/segment...`
    /// path without a trailing `/`.
    InvalidPathPrefix {
        /// The prefix given.
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The public URL carries `user:password@`. Twilio drops credentials from the URL before
    /// signing, so they never belong in the signed URL; HTTP authentication credentials are
    /// configured on their own.
    PublicUrlHasCredentials {
        /// The URL given, its credentials shown as `***@`.
        url: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoUsableKey => f.write_str(
                "no auth token configured: use the account's primary auth token (an API key \
                 secret cannot validate webhooks)",
            ),
            Self::InvalidPublicUrl { url, reason } => {
                write!(f, "invalid public URL {url:?}: {reason}")
            }
            Self::PublicUrlHasQuery { url } => write!(
                f,
                "the public URL {url:?} must not have a query or fragment: give the base only"
            ),
            Self::PublicUrlTrailingSlash { url } => write!(
                f,
                "the public URL {url:?} must not end with '/': the request path, which starts \
                 with '/', is appended as is"
            ),
            Self::UnsupportedScheme { url } => {
                write!(
                    f,
                    "the public URL {url:?} must start with https:// or http://"
                )
            }
            Self::InvalidPathPrefix { prefix, reason } => {
                write!(f, "invalid path prefix {prefix:?} to strip: {reason}")
            }
            Self::PublicUrlHasCredentials { url } => write!(
                f,
                "the public URL {url:?} must not carry user:password@: Twilio drops the \
                 credentials before signing, so give the base without them (credentials belong \
                 in the webhook URL configured in Twilio and in the layer's HTTP authentication \
                 settings)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
