//! `TwilioWebhook`: the service the layer wraps around yours.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

use std::sync::LazyLock;

use super::BoxError;
use super::buffer::Buffer;
use super::future::ResponseFuture;
use super::layer::Shared;
use super::response::{Rejection, RejectionResponse, ResponseBody};
use crate::form::param_values;
use crate::http_auth::{AuthError, Authenticated, HttpAuth, Unauthorized};
use crate::{ValidationError, Validator, Verified};

/// Refuses requests without a valid `X-Twilio-Signature`, then calls the inner service with
/// the same request, its body buffered (`Full<Bytes>`).
///
/// Made by [`TwilioWebhookLayer`](super::TwilioWebhookLayer).
#[derive(Debug)]
pub struct TwilioWebhook<S, R> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<R>>,
}

impl<S, R> TwilioWebhook<S, R> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, without the check.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, R> Clone for TwilioWebhook<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, R, B, ResBody> Service<Request<B>> for TwilioWebhook<S, R>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone,
    R: RejectionResponse,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was driven to readiness is the one that will be called.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        let limit = shared.body_limit;
        let (mut parts, body) = request.into_parts();

        // The path Twilio requested, without what the platform added: a request without the
        // platform's prefix means the layer is configured for another deployment.
        let Some(target) =
            super::request_url::twilio_path_and_query(&parts, shared.strip_prefix.as_ref())
        else {
            let rejection = Rejection::PathPrefixMissing;
            shared.log_rejection(&rejection, &parts.method, Some(parts.uri.path()));
            return ResponseFuture::rejected_unread(&shared, rejection, parts.version);
        };

        // HTTP authentication first, from the headers alone: Twilio sends credentials only
        // after a 401, and nothing of an unauthenticated request's body is read.
        if let Some(auth) = &shared.http_auth {
            match authenticate(auth, &parts, target) {
                Ok(authenticated) => {
                    tracing::debug!(
                        target: "twilio_webhook",
                        user = authenticated.user(),
                        "HTTP authentication passed"
                    );
                    parts.extensions.insert(authenticated);
                }
                Err(unauthorized) => {
                    shared.log_rejection(
                        &Rejection::Unauthorized(unauthorized.reason()),
                        &parts.method,
                        None,
                    );
                    return ResponseFuture::unauthorized(&shared, &unauthorized, parts.version);
                }
            }
        }

        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            let rejection = Rejection::PayloadTooLarge { limit };
            shared.log_rejection(&rejection, &parts.method, None);
            return ResponseFuture::rejected_unread(&shared, rejection, parts.version);
        }

        let body = Buffer::new(body, limit, shared.body_timeout);
        ResponseFuture::reading(parts, body, inner, shared)
    }
}

/// The request's credentials, checked by `auth`: the `Authorization` header (several are
/// refused) against the method and the request-target as the client sent it (`target`).
fn authenticate(
    auth: &HttpAuth,
    parts: &http::request::Parts,
    target: &str,
) -> Result<Authenticated, Unauthorized> {
    let authorization = crate::twilio_headers::at_most_once(
        &parts.headers,
        &header::AUTHORIZATION,
        AuthError::Malformed,
        AuthError::Repeated,
    )
    .map_err(|reason| auth.refuse(reason))?;
    auth.check(authorization, parts.method.as_str(), target)
}

/// An auth token nobody has: an unknown account is checked with it, so that refusing one costs
/// what checking a known one does and the time of a 403 says nothing about which accounts a
/// platform serves.
static UNKNOWN_ACCOUNT: LazyLock<Validator> =
    LazyLock::new(|| Validator::new("twilio-webhook: stands in for an unknown account"));

/// Checks the buffered request with `validator` (`None`: the key source knows no such
/// account); logs why when it fails.
pub(crate) fn check<R>(
    parts: &http::request::Parts,
    body: &[u8],
    validator: Option<&Validator>,
    shared: &Shared<R>,
) -> Result<Verified, ValidationError> {
    let mut buf = super::request_url::UrlBuf::new();
    // Checked before the body was read, so the prefix is there.
    let path_and_query =
        super::request_url::twilio_path_and_query(parts, shared.strip_prefix.as_ref())
            .unwrap_or_default();
    let url = shared.url.write_url(parts, path_and_query, &mut buf);
    let verdict = url.map_err(ValidationError::InvalidUrl).and_then(|url| {
        let verdict =
            validator
                .unwrap_or(&UNKNOWN_ACCOUNT)
                .verify_headers(url, &parts.headers, body);
        // The verdict of the stand-in key is never used: it was computed for its time.
        match validator {
            Some(_) => verdict,
            None => Err(ValidationError::UnknownAccount),
        }
    });
    match &verdict {
        Ok(verified) => tracing::debug!(
            target: "twilio_webhook",
            url_variant = %verified.url_variant,
            key = ?verified.key,
            "verified Twilio webhook"
        ),
        Err(error) => {
            shared.log_rejection(&Rejection::Invalid(error.clone()), &parts.method, url.ok())
        }
    }
    verdict
}

/// A header that appears at most once, as text. A repeated or non-text header is `malformed`:
/// which copy was meant cannot be known.
pub(crate) fn header_str<'p, E: Clone>(
    headers: &'p http::HeaderMap,
    name: &HeaderName,
    malformed: E,
) -> Result<Option<&'p str>, E> {
    crate::twilio_headers::at_most_once(headers, name, malformed.clone(), malformed)
}

/// What a key source may look at. `AccountSid` comes from a form body and the query together
/// (never from inside a JSON or other body: text there is no parameter): more than one
/// distinct value is refused, so which account's key is looked up cannot be confused.
pub(crate) fn key_request(
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<super::KeyRequest, ValidationError> {
    let uri = super::request_url::original_uri(parts).clone();
    let query = uri.query().unwrap_or_default().as_bytes();
    let form = header_str(&parts.headers, &header::CONTENT_TYPE, ())
        .ok()
        .flatten()
        .is_some_and(crate::validator::is_form);
    let form_body: &[u8] = if form { body } else { &[] };
    let mut account_sid: Option<String> = None;
    let all = param_values(form_body, "AccountSid").chain(param_values(query, "AccountSid"));
    for value in all {
        let value = value.ok_or(ValidationError::AmbiguousAccount)?;
        match &account_sid {
            Some(first) if *first != value => return Err(ValidationError::AmbiguousAccount),
            Some(_) => {}
            None => account_sid = Some(value),
        }
    }
    Ok(super::KeyRequest {
        account_sid,
        method: parts.method.clone(),
        uri,
        headers: parts.headers.clone(),
    })
}
