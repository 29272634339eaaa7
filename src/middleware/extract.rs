//! `Verified`, `Unverified` and `Authenticated` as axum extractors (feature `axum`).
//!
//! ```
//! use axum::{Form, Router, routing::post};
//! use twilio_webhook::{Validator, Verified};
//! use twilio_webhook::middleware::TwilioWebhookLayer;
//!
//! async fn sms(verified: Verified, Form(form): Form<Vec<(String, String)>>) -> String {
//!     format!("verified over the URL {}, {} parameters", verified.url_variant, form.len())
//! }
//!
//! # fn main() -> Result<(), twilio_webhook::middleware::ConfigError> {
//! let app: Router = Router::new()
//!     .route("/sms", post(sms))
//!     .route_layer(TwilioWebhookLayer::new(Validator::new("auth token"))?);
//! # Ok(()) }
//! ```
//!
//! On a route the layer does not cover, extracting `Verified` fails closed: `500`, and an
//! `error` event naming the missing layer. It never lets the request through unchecked.
//!
//! `Option<Verified>` is `None` for a request report-only mode let through unverified;
//! [`Authenticated`] (the user HTTP authentication let in) is there when the layer has
//! [`http_auth`](super::TwilioWebhookLayer::http_auth), and `Option<Authenticated>` is `None`
//! on a layer without it. Every one of them is `500` on a route without the layer.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::http_auth::Authenticated;
use crate::{Unverified, Verified};

/// The rejection of a `Verified` or `Unverified` extractor on a route without
/// `TwilioWebhookLayer`: `500` (a server misconfiguration, not the client's fault), and an
/// `error` event that names the missing layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingLayer {
    extractor: &'static str,
}

impl MissingLayer {
    fn new(extractor: &'static str, parts: &Parts) -> Self {
        if layer_ran(parts) {
            // Only `Authenticated` can be missing behind the layer.
            tracing::error!(
                target: "twilio_webhook",
                extractor,
                path = %super::rejection_log::truncate(parts.uri.path()),
                "a handler extracts {extractor}, but the TwilioWebhookLayer on this route has \
                 no HTTP authentication: add .http_auth(..) to it, or take \
                 Option<Authenticated>; the request was refused with 500"
            );
        } else {
            tracing::error!(
                target: "twilio_webhook",
                extractor,
                path = %super::rejection_log::truncate(parts.uri.path()),
                "a handler extracts {extractor}, but no TwilioWebhookLayer runs on this route: \
                 add the layer (Router::route_layer) to it; the request was refused with 500"
            );
        }
        Self { extractor }
    }
}

impl core::fmt::Display for MissingLayer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} extracted on a route without TwilioWebhookLayer",
            self.extractor
        )
    }
}

impl std::error::Error for MissingLayer {}

impl IntoResponse for MissingLayer {
    fn into_response(self) -> Response {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Verified {
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, MissingLayer> {
        parts
            .extensions
            .get::<Verified>()
            .cloned()
            .ok_or_else(|| MissingLayer::new("Verified", parts))
    }
}

/// `Unverified`: present only in report-only mode, for a request that failed validation.
impl<S: Send + Sync> FromRequestParts<S> for Unverified {
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, MissingLayer> {
        parts
            .extensions
            .get::<Unverified>()
            .cloned()
            .ok_or_else(|| MissingLayer::new("Unverified", parts))
    }
}

/// `Option<Unverified>` in report-only mode: `Some(why)` for a request that failed, `None` for
/// one that was verified; still `500` on a route without the layer.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Unverified {
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, MissingLayer> {
        if let Some(unverified) = parts.extensions.get::<Unverified>() {
            return Ok(Some(unverified.clone()));
        }
        if parts.extensions.get::<Verified>().is_some() {
            return Ok(None);
        }
        Err(MissingLayer::new("Option<Unverified>", parts))
    }
}

/// Whether the layer ran on this request: it marks every request it passes on.
fn layer_ran(parts: &Parts) -> bool {
    parts.extensions.get::<Verified>().is_some() || parts.extensions.get::<Unverified>().is_some()
}

/// `Option<Verified>`: `Some` for a verified request, `None` for one that report-only mode let
/// through unverified; still `500` on a route without the layer.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Verified {
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, MissingLayer> {
        if let Some(verified) = parts.extensions.get::<Verified>() {
            return Ok(Some(verified.clone()));
        }
        if layer_ran(parts) {
            return Ok(None);
        }
        Err(MissingLayer::new("Option<Verified>", parts))
    }
}

/// `Authenticated`: the user HTTP authentication let in. `500` on a route whose layer has no
/// `http_auth` (or no layer at all): a handler that relies on it must not run without it.
impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, MissingLayer> {
        parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or_else(|| MissingLayer::new("Authenticated", parts))
    }
}

/// `Option<Authenticated>`: `None` when the layer has no HTTP authentication; still `500` on a
/// route without the layer.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, MissingLayer> {
        if let Some(authenticated) = parts.extensions.get::<Authenticated>() {
            return Ok(Some(authenticated.clone()));
        }
        if layer_ran(parts) {
            return Ok(None);
        }
        Err(MissingLayer::new("Option<Authenticated>", parts))
    }
}
