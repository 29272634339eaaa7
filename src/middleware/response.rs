//! What a refused request gets back.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;

use super::BoxError;
use crate::ValidationError;
use crate::http_auth::AuthError;

/// Why the middleware refused a request. Attached to every rejection response's extensions
/// (with the [`ValidationError`] itself, when there is one), so outer layers can log or count it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The signature is missing, malformed or wrong, or the body does not match it. 403.
    Invalid(ValidationError),
    /// HTTP authentication (Basic or Digest) refused the request's credentials, or it had
    /// none: 401, with one `WWW-Authenticate` per offered challenge (the layer adds them to
    /// any rejection response), so Twilio sends its credentials. Never 403: Twilio would not.
    Unauthorized(AuthError),
    /// The body is larger than the configured limit. 413.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read (the client went away, a transport error). 400.
    BodyUnreadable,
    /// The body did not arrive within the layer's body timeout: a client sending a byte a
    /// second holds a connection and memory for nothing. Twilio sends the whole request at
    /// once. 408.
    BodyTimeout {
        /// The configured timeout.
        after: core::time::Duration,
    },
    /// The [`KeySource`](super::KeySource) failed. 503, so Twilio retries rather than
    /// marking the webhook broken.
    KeyLookupFailed,
    /// Not an error: the request is a copy of one already handled (the replay guard).
    /// Answered without calling the inner service; `200` by default, with the empty TwiML
    /// `<Response/>`, so Twilio stops re-sending.
    Duplicate,
    /// The request is a copy of one still being handled, and the first did not finish within
    /// the guard's wait ([`ReplayGuard::in_progress_wait`](super::ReplayGuard::in_progress_wait)).
    /// Never `2xx`: if the first then fails, Twilio must still retry. `503`, and the layer adds
    /// `Retry-After: 1` to whatever the rejection hook returns, so Twilio retries or uses the
    /// fallback URL.
    InProgress,
    /// The replay guard's store failed and the guard is set to fail closed. 503, so Twilio
    /// retries.
    ReplayStoreFailed,
    /// The request's path does not start with the prefix given to
    /// [`strip_path_prefix`](super::TwilioWebhookLayer::strip_path_prefix): the platform in
    /// front is not configured as the layer was told (a stage, a base path mapping). A
    /// deployment mistake, not a forgery: `500`, with an error event.
    PathPrefixMissing,
}

impl Rejection {
    /// The status the default response uses.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::FORBIDDEN,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyUnreadable => StatusCode::BAD_REQUEST,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::KeyLookupFailed | Self::ReplayStoreFailed | Self::InProgress => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Duplicate => StatusCode::OK,
            Self::PathPrefixMissing => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl core::fmt::Display for Rejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Invalid(error) => error.fmt(f),
            Self::Unauthorized(error) => write!(f, "HTTP authentication failed: {error}"),
            Self::PayloadTooLarge { limit } => {
                write!(f, "the request body is larger than the {limit}-byte limit")
            }
            Self::BodyUnreadable => f.write_str("the request body could not be read"),
            Self::BodyTimeout { after } => {
                write!(f, "the request body did not arrive within {after:?}")
            }
            Self::KeyLookupFailed => f.write_str("the key for this request could not be looked up"),
            Self::Duplicate => f.write_str("the request is a copy of one already handled"),
            Self::InProgress => f.write_str(
                "the request is a copy of one still being handled, which did not finish in time",
            ),
            Self::ReplayStoreFailed => {
                f.write_str("the replay guard's store failed, and the guard fails closed")
            }
            Self::PathPrefixMissing => f.write_str(
                "the request path does not start with the prefix given to strip_path_prefix: \
                 a deployment mistake (check the platform's stage or base path mapping; on AWS \
                 Lambda see the README's \"AWS Lambda\" section)",
            ),
        }
    }
}

impl std::error::Error for Rejection {}

/// Builds the response for a refused request (and for a duplicate, when the replay guard is
/// on).
///
/// The default, [`DefaultRejection`], answers with the status of [`Rejection::status`] and an
/// empty body: nothing that would help an attacker. Any `Fn(&Rejection) -> Response<T>` that is
/// `Clone + Send + Sync + 'static` works too, where `T` is anything that becomes [`Bytes`]
/// (`String`, `&'static str`, `Vec<u8>`, `Bytes`): the layer wraps it in its own
/// [`ResponseBody`], so the rejection's body type never has to match the inner service's.
///
/// ```
/// use http::{Response, StatusCode};
/// use twilio_webhook::Validator;
/// use twilio_webhook::middleware::{Rejection, TwilioWebhookLayer};
///
/// # fn main() -> Result<(), twilio_webhook::middleware::ConfigError> {
/// let layer = TwilioWebhookLayer::new(Validator::new("auth token"))?.rejection(
///     |rejection: &Rejection| -> Response<String> {
///         let mut response = Response::new("<Response/>".to_string());
///         *response.status_mut() = rejection.status();
///         response
///     },
/// );
/// # Ok(()) }
/// ```
///
/// The same closure, as written, on an axum router:
///
/// ```
/// use axum::{Router, routing::post};
/// use http::{Response, header};
/// use twilio_webhook::Validator;
/// use twilio_webhook::middleware::{Rejection, TwilioWebhookLayer};
///
/// # fn main() -> Result<(), twilio_webhook::middleware::ConfigError> {
/// let twilio = TwilioWebhookLayer::new(Validator::new("auth token"))?.rejection(
///     |rejection: &Rejection| -> Response<String> {
///         let mut response = Response::new(format!("<Response><!-- {} --></Response>", rejection.status()));
///         *response.status_mut() = rejection.status();
///         response.headers_mut().insert(header::CONTENT_TYPE, "text/xml".parse().unwrap());
///         response
///     },
/// );
/// let app: Router = Router::new().route("/sms", post(|| async { "<Response/>" }).route_layer(twilio));
/// # Ok(()) }
/// ```
pub trait RejectionResponse: Clone + Send + Sync + 'static {
    /// The body of the responses it builds.
    type Body: Into<Bytes>;

    /// The response for `rejection`. The middleware adds `rejection` (and its
    /// [`ValidationError`]) to the response's extensions afterwards.
    fn response(&self, rejection: &Rejection) -> Response<Self::Body>;
}

/// The default rejection: the status alone, with an empty body; for a duplicate, `200` with
/// `Content-Type: text/xml` and `<Response/>`, the empty TwiML that makes Twilio stop
/// re-sending and do nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl RejectionResponse for DefaultRejection {
    type Body = Bytes;

    fn response(&self, rejection: &Rejection) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        if let Rejection::Duplicate = rejection {
            *response.body_mut() = Bytes::from_static(b"<Response/>");
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/xml"),
            );
        }
        *response.status_mut() = rejection.status();
        response
    }
}

impl<F, T> RejectionResponse for F
where
    F: Fn(&Rejection) -> Response<T> + Clone + Send + Sync + 'static,
    T: Into<Bytes>,
{
    type Body = T;

    fn response(&self, rejection: &Rejection) -> Response<T> {
        self(rejection)
    }
}

pin_project! {
    /// The body of every response from the layer: the inner service's own, or the layer's
    /// answer to a request it refused. The two need not be of one type, so the layer stacks
    /// inside and outside tower-http's `TraceLayer` and `CompressionLayer` alike.
    #[project = ResponseBodyProj]
    // The variants' one field each is `body`: what the variant's doc says.
    #[allow(missing_docs)]
    pub enum ResponseBody<B> {
        /// The inner service's body, untouched.
        Inner {
            #[pin]
            body: B,
        },
        /// The layer's answer: empty, or what a custom rejection returned.
        Layer {
            body: Full<Bytes>,
        },
    }
}

/// Empty: what tower-http's `TimeoutLayer` and other layers that answer by themselves need.
impl<B> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::Layer {
            body: Full::default(),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            ResponseBodyProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            ResponseBodyProj::Layer { body } => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Inner { body } => body.is_end_stream(),
            Self::Layer { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Inner { body } => body.size_hint(),
            Self::Layer { body } => body.size_hint(),
        }
    }
}
