//! Stops forged Twilio webhooks.
//!
//! Twilio signs every webhook request with the account's auth token and puts the result in the
//! `X-Twilio-Signature` header. Anyone can POST to a public webhook URL, so a server that does
//! not check that header can be fed forged messages, calls and payments. This crate checks it
//! exactly as Twilio computes it, in constant time:
//!
//! - the string signed is the URL **exactly as Twilio requested it** (never re-encoded or
//!   normalised), followed by the form parameters sorted by name (byte order), each name then
//!   value, repeated names de-duplicated and their values sorted;
//! - the signature is Base64 of HMAC-SHA1 keyed by the auth token; it is compared on the
//!   decoded MAC bytes in constant time, never trimmed or re-padded;
//! - the URL is also tried with its port toggled (`:443` added or removed) and without
//!   `user:password@`, as every official SDK does, because Twilio's own signing varies;
//! - JSON webhooks carry `bodySHA256` in the query: the URL is signed and the body's SHA-256
//!   must match. A non-form body with no `bodySHA256` is refused: nothing signs it.
//!
//! # The core
//!
//! [`Validator`] needs no framework (`default-features = false`):
//!
//! ```
//! use twilio_webhook::{compute_signature, Validator};
//!
//! let validator = Validator::new("12345"); // the account's primary auth token
//! let url = "https://example.com/myapp.php?foo=1&bar=2";
//! let params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675310"),
//!               ("Digits", "1234"), ("From", "+14158675310"), ("To", "+18005551212")];
//!
//! let header = compute_signature("12345", url, &params); // what Twilio sends
//! assert!(validator.validate(url, &params, &header).is_ok());
//! assert!(validator.validate(url, &params, "bm90IGEgc2lnbmF0dXJlIGF0IGE=").is_err());
//!
//! // Or from the raw request, as it arrived:
//! let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675310&Digits=1234\
//!              &From=%2B14158675310&To=%2B18005551212";
//! let content_type = Some("application/x-www-form-urlencoded");
//! assert!(validator.validate_body(url, content_type, body, &header).is_ok());
//! ```
//!
//! # The middleware
//!
//! With the default feature `tower` (and `axum`), the [`middleware`] module adds
//! [`TwilioWebhookLayer`](middleware::TwilioWebhookLayer): one layer on an axum router, or
//! around any hyper / tower service, refuses forged webhooks before a handler sees them. Its
//! docs have the examples.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `tower` | yes | [`middleware`]: the tower `Layer`, for hyper and any tower stack |
//! | `axum` | yes | reads axum's `OriginalUri` (layers inside `Router::nest` see the full path); `Verified` as an extractor |
//! | `redis` | no | `replay::RedisStore`: the duplicate guard shared by several instances |
//! | `redis-cluster` | no | `replay::RedisCluster`: the store on a Redis Cluster, back within seconds after a failover |
//! | `test-util` | no | `test_util`: signed requests for your tests |
//! | `cli` | no | the `twilio-webhook` command-line tool |
//!
//! With `default-features = false` the crate is the core alone: [`Validator`],
//! [`http_auth`], [`replay`]'s store trait and memory store, no framework.
//!
//! # Deployment caveat
//!
//! The signature covers the URL **Twilio** requested. Behind a TLS terminator, load balancer or
//! tunnel the server sees another scheme, host or port: give the validator (or the layer's
//! `public_url`) the public URL configured in Twilio, never one rebuilt from what the server
//! sees unless the proxy in front is trusted.
//!
//! # Security notes
//!
//! - Use the account's **primary auth token**. API key secrets cannot validate webhooks.
//! - Twilio's scheme has no timestamp: a captured request can be replayed. Serve webhooks over
//!   HTTPS so requests cannot be captured.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's examples, compiled and run as doc tests so they stay true (they use the
/// Redis store and `test_util`, so they need every feature: `cargo test --all-features`).
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "redis-cluster",
    feature = "test-util"
))]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

mod error;
mod form;
pub mod http_auth;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod middleware;
pub mod replay;
mod signature;
mod tag;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
#[cfg(feature = "http")]
mod twilio_headers;
mod url;
mod validator;

pub use error::{InvalidUrl, MalformedBody, ValidationError};
pub use form::{FormParams, form_body, form_params, form_params_with_limit};
pub use signature::{compute_shared_key_signature, compute_signature, signed_string};
pub use url::{UrlVariant, redact_userinfo, url_variants};
pub use validator::{
    DEFAULT_MAX_PARAMS, KeyIdentity, KeyUsed, Unverified, Validator, Verified, Webhook,
    body_sha256, url_with_body_sha256,
};
