//! `TwilioWebhook`: the service the layer wraps around yours.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

use super::BoxError;
use super::future::{Buffer, ResponseFuture};
use super::layer::Shared;
use super::response::{Rejection, RejectionResponse};
use crate::ValidationError;

/// Refuses requests without a valid `X-Twilio-Signature`, then calls the inner service with
/// the same request, its body buffered (`Full<Bytes>`).
///
/// Made by [`TwilioWebhookLayer`](super::TwilioWebhookLayer).
#[derive(Debug)]
pub struct TwilioWebhook<S, R> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<R>>,
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
    R: RejectionResponse<ResBody>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
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

        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            tracing::warn!(
                target: "twilio_webhook",
                content_length = declared,
                limit,
                "rejected Twilio webhook: body over the limit"
            );
            return ResponseFuture::rejected(&shared, Rejection::PayloadTooLarge { limit });
        }

        let (parts, body) = request.into_parts();
        let body = Buffer::new(body, limit);
        ResponseFuture::reading(parts, body, inner, shared)
    }
}

/// The extension a request carries in report-only mode when it failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified(pub crate::ValidationError);

/// Checks the buffered request with `validator`; logs why when it fails.
pub(crate) fn check<R>(
    parts: &http::request::Parts,
    body: &[u8],
    validator: Option<&crate::Validator>,
    shared: &Shared<R>,
) -> Result<crate::Verified, crate::ValidationError> {
    let mut buf = super::request_url::UrlBuf::new();
    let url = shared
        .url
        .write_url(parts, &mut buf)
        .map_err(crate::ValidationError::InvalidUrl);
    let verdict = url.clone().and_then(|url| {
        let validator = validator.ok_or(crate::ValidationError::UnknownAccount)?;
        validator.verify(&crate::Webhook {
            url,
            content_type: header_str(
                &parts.headers,
                &header::CONTENT_TYPE,
                ValidationError::UnsignedBody,
            )?,
            body,
            signature: header_str(
                &parts.headers,
                &X_TWILIO_SIGNATURE,
                ValidationError::MalformedSignature,
            )?,
            signature_settings: header_str(
                &parts.headers,
                &X_TWILIO_WEBHOOKS_SIGNATURE_SETTINGS,
                ValidationError::MalformedSignatureSettings,
            )?,
        })
    });
    if let Ok(verified) = &verdict {
        tracing::debug!(
            target: "twilio_webhook",
            url_variant = %verified.url_variant,
            key = ?verified.key,
            "verified Twilio webhook"
        );
    }
    if let Err(error) = &verdict {
        let tried = url.map(crate::url::redacted_candidates).unwrap_or_default();
        tracing::warn!(
            target: "twilio_webhook",
            reason = %error,
            method = %parts.method,
            tried_urls = ?tried,
            report_only = shared.report_only,
            "rejected Twilio webhook"
        );
    }
    verdict
}

static X_TWILIO_SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
static X_TWILIO_WEBHOOKS_SIGNATURE_SETTINGS: HeaderName =
    HeaderName::from_static("x-twilio-webhooks-signature-settings");

/// A header that appears at most once, as text. A repeated or non-text header is `malformed`:
/// which copy was meant cannot be known.
pub(crate) fn header_str<'p, E>(
    headers: &'p http::HeaderMap,
    name: &HeaderName,
    malformed: E,
) -> Result<Option<&'p str>, E> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value.to_str().map(Some).map_err(|_| malformed),
        (Some(_), Some(_)) => Err(malformed),
    }
}

/// What a key source may look at. `AccountSid` comes from the form body, else the query.
pub(crate) fn key_request(parts: &http::request::Parts, body: &[u8]) -> super::KeyRequest {
    let uri = super::request_url::original_uri(parts).clone();
    let account_sid = crate::form::find_param(body, "AccountSid").or_else(|| {
        uri.query()
            .and_then(|query| crate::form::find_param(query.as_bytes(), "AccountSid"))
    });
    super::KeyRequest {
        account_sid,
        method: parts.method.clone(),
        uri,
        headers: parts.headers.clone(),
    }
}
