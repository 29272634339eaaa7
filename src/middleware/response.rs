//! What a refused request gets back.

use http::{Response, StatusCode};

use crate::ValidationError;

/// Why the middleware refused a request. Attached to every rejection response's extensions
/// (with the [`ValidationError`] itself, when there is one), so outer layers can log or count it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The signature is missing, malformed or wrong, or the body does not match it. 403.
    Invalid(ValidationError),
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
}

impl Rejection {
    /// The status the default response uses.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyUnreadable => StatusCode::BAD_REQUEST,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::KeyLookupFailed => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl core::fmt::Display for Rejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Invalid(error) => error.fmt(f),
            Self::PayloadTooLarge { limit } => {
                write!(f, "the request body is larger than the {limit}-byte limit")
            }
            Self::BodyUnreadable => f.write_str("the request body could not be read"),
            Self::BodyTimeout { after } => {
                write!(f, "the request body did not arrive within {after:?}")
            }
            Self::KeyLookupFailed => f.write_str("the key for this request could not be looked up"),
        }
    }
}

impl std::error::Error for Rejection {}

/// Builds the response for a refused request.
///
/// The default, [`DefaultRejection`], answers with the status of [`Rejection::status`] and an
/// empty body: nothing that would help an attacker. Any `Fn(&Rejection) -> Response<B>` that is
/// `Clone + Send + Sync + 'static` works too:
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
pub trait RejectionResponse<B>: Clone + Send + Sync + 'static {
    /// The response for `rejection`. The middleware adds `rejection` (and its
    /// [`ValidationError`]) to the response's extensions afterwards.
    fn response(&self, rejection: &Rejection) -> Response<B>;
}

/// The default rejection: the status alone, with an empty body.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl<B: Default> RejectionResponse<B> for DefaultRejection {
    fn response(&self, rejection: &Rejection) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = rejection.status();
        response
    }
}

impl<B, F> RejectionResponse<B> for F
where
    F: Fn(&Rejection) -> Response<B> + Clone + Send + Sync + 'static,
{
    fn response(&self, rejection: &Rejection) -> Response<B> {
        self(rejection)
    }
}
