//! `TwilioWebhookLayer`: the configuration, checked when it is built.

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::ConfigError;
use super::key_source::KeySource;
use super::rejection_log::RejectionLog;
use super::replay_guard::ReplayGuard;
use super::request_url::{PathPrefix, PublicUrl, Scheme, UrlSource};
use super::response::DefaultRejection;
use super::service::TwilioWebhook;
use crate::Validator;
use crate::http_auth::HttpAuth;

/// The default body limit: 256 KiB.
///
/// Twilio's largest form webhooks are a few KiB (an inbound SMS of 1,600 characters, every
/// byte escaped, is under 20 KiB; an MMS with ten media about 9 KiB), so this leaves ten times
/// the room, while a request that holds memory before its signature is checked holds a
/// quarter of what it could with 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// The default body timeout: 10 seconds.
///
/// Twilio gives up on a webhook after 15 seconds in all, and sends its request in one go: a
/// body still arriving after 10 seconds leaves the handler no time to answer, and is a slow
/// client holding a connection and memory.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A tower [`Layer`] that refuses requests without a valid `X-Twilio-Signature`.
///
/// Built from a [`Validator`]; see the [module docs](super) for an example and for how the
/// URL is found behind proxies.
#[derive(Clone)]
#[must_use]
pub struct TwilioWebhookLayer<R = DefaultRejection> {
    pub(crate) shared: Arc<Shared<R>>,
}

impl<R> core::fmt::Debug for TwilioWebhookLayer<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.shared.fmt(f)
    }
}

/// What every clone of the service shares.
#[derive(Clone)]
pub(crate) struct Shared<R> {
    pub(crate) keys: Keys,
    pub(crate) url: UrlSource,
    pub(crate) strip_prefix: Option<PathPrefix>,
    pub(crate) body_limit: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) report_only: bool,
    pub(crate) rejection: R,
    pub(crate) log: Arc<RejectionLog>,
    pub(crate) replay: Option<ReplayGuard>,
    pub(crate) http_auth: Option<HttpAuth>,
}

impl<R> Shared<R> {
    /// The rejection's one bounded event, with this layer's `report_only`.
    pub(crate) fn log_rejection(
        &self,
        rejection: &super::Rejection,
        method: &http::Method,
        url: Option<&str>,
    ) {
        self.log.record(super::rejection_log::Event {
            rejection,
            method,
            url,
            report_only: self.report_only,
        });
    }

    /// Twilio's docs: "Be sure to use HTTP authentication in conjunction with SSL."
    fn warn_if_credentials_in_clear(&self) {
        let in_clear = match &self.url {
            UrlSource::Public(public) => public.is_plain_http(),
            UrlSource::FromRequest { scheme, .. } => *scheme == Scheme::Http,
        };
        if let (Some(auth), true) = (&self.http_auth, in_clear) {
            tracing::warn!(
                target: "twilio_webhook",
                scheme = auth.scheme(),
                "HTTP authentication over plain http://: the credentials cross the network \
                 readable (Basic) or weakly hashed (Digest); serve the webhook over HTTPS"
            );
        }
    }
}

/// Keys redacted (by the validator's own `Debug`), the rejection left out: it may be a
/// closure, and its type says nothing useful.
impl<R> core::fmt::Debug for Shared<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TwilioWebhookLayer")
            .field("keys", &self.keys)
            .field("url", &self.url)
            .field(
                "strip_path_prefix",
                &self.strip_prefix.as_ref().map(PathPrefix::as_str),
            )
            .field("body_limit", &self.body_limit)
            .field("body_timeout", &self.body_timeout)
            .field("report_only", &self.report_only)
            .field("replay", &self.replay)
            .field("http_auth", &self.http_auth)
            .finish_non_exhaustive()
    }
}

/// Where the keys come from.
#[derive(Clone)]
pub(crate) enum Keys {
    /// One validator for every request: the fast, simple path.
    Static(Validator),
    /// A validator chosen per request.
    Source(Arc<dyn KeySource>),
}

impl core::fmt::Debug for Keys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Static(validator) => validator.fmt(f),
            Self::Source(_) => f.write_str("KeySource"),
        }
    }
}

impl TwilioWebhookLayer {
    /// A layer that checks requests with `validator`.
    ///
    /// Fails with [`ConfigError::NoUsableKey`] if the validator has no key (an empty auth
    /// token): a layer that could never accept anything is a configuration mistake, reported
    /// at startup rather than as a 403 on every webhook.
    ///
    /// Until [`public_url`](Self::public_url) is set, the URL is derived from the request:
    /// `https://` + the `Host` header (or the HTTP/2 authority) + the path and query.
    pub fn new(validator: Validator) -> Result<Self, ConfigError> {
        if !validator.has_usable_key() {
            return Err(ConfigError::NoUsableKey);
        }
        Ok(Self::with_keys(Keys::Static(validator)))
    }

    /// A layer that asks `source` for the validator of each request's account: for
    /// subaccounts and multi-tenant servers (see [`AccountMap`](super::AccountMap)).
    ///
    /// An unknown account is refused with 403
    /// ([`ValidationError::UnknownAccount`](crate::ValidationError::UnknownAccount)); a
    /// failed lookup with 503 ([`Rejection::KeyLookupFailed`](super::Rejection)), so Twilio
    /// retries instead of marking the webhook broken. A lookup that never ends holds the
    /// request: put a timeout layer outside this one.
    pub fn with_key_source(source: impl KeySource) -> Self {
        Self::with_keys(Keys::Source(Arc::new(source)))
    }

    fn with_keys(keys: Keys) -> Self {
        Self {
            shared: Arc::new(Shared {
                keys,
                url: UrlSource::FromRequest {
                    scheme: Scheme::Https,
                    trust_forwarded: false,
                },
                strip_prefix: None,
                body_limit: DEFAULT_BODY_LIMIT,
                body_timeout: DEFAULT_BODY_TIMEOUT,
                report_only: false,
                rejection: DefaultRejection,
                log: Arc::default(),
                replay: None,
                http_auth: None,
            }),
        }
    }
}

impl<R: Clone> TwilioWebhookLayer<R> {
    fn with(self, change: impl FnOnce(&mut Shared<R>)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        change(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The recommended mode: the public base URL Twilio is configured with, such as
    /// `https://hooks.example.com` or `https://example.com/api`. The request's path and query
    /// are appended as received, without adding or removing a slash, so the base must not end
    /// with `/` nor carry a query.
    ///
    /// This is the only mode that works whatever sits in front of the server (TLS terminator,
    /// load balancer, tunnel), and the only one an attacker cannot steer with headers.
    pub fn public_url(self, base: &str) -> Result<Self, ConfigError> {
        let public = PublicUrl::parse(base)?;
        Ok(self.with(|shared| {
            shared.url = UrlSource::Public(public);
            shared.warn_if_credentials_in_clear();
        }))
    }

    /// Removes `prefix` (a `/segment...` path, no trailing `/`) from the request's path before
    /// the URL is built, for a platform that adds a prefix Twilio never requested: on AWS
    /// Lambda, `lambda_http` puts a REST API's stage back into the path (`/prod/twilio/sms` for
    /// a webhook Twilio sent to `https://api.example.com/twilio/sms`). The public URL's own
    /// path, if any, is then put in front as usual:
    ///
    /// ```
    /// use twilio_webhook::Validator;
    /// use twilio_webhook::middleware::TwilioWebhookLayer;
    ///
    /// # fn main() -> Result<(), twilio_webhook::middleware::ConfigError> {
    /// // REST API behind a custom domain: the request's path is /prod/twilio/sms.
    /// let rest = TwilioWebhookLayer::new(Validator::new("auth token"))?
    ///     .public_url("https://api.example.com")?
    ///     .strip_path_prefix("/prod")?;
    /// // HTTP API mapping `twilio` -> stage `prod`, whose rawPath is /prod/sms.
    /// let http_api = TwilioWebhookLayer::new(Validator::new("auth token"))?
    ///     .public_url("https://api.example.com/twilio")?
    ///     .strip_path_prefix("/prod")?;
    /// # Ok(()) }
    /// ```
    ///
    /// Whole segments only (`/prod` is not a prefix of `/production`). A request whose path
    /// does not start with the prefix is refused before its body is read with
    /// [`Rejection::PathPrefixMissing`](super::Rejection::PathPrefixMissing) (`500`, and an
    /// error event): it is a deployment mistake, not a forgery. Digest authentication's `uri`
    /// is checked against the path without the prefix too, as Twilio sent it. Inside
    /// `Router::nest`, the prefix is taken from the full path (axum's `OriginalUri`).
    pub fn strip_path_prefix(self, prefix: &str) -> Result<Self, ConfigError> {
        let prefix = PathPrefix::parse(prefix)?;
        Ok(self.with(|shared| shared.strip_prefix = Some(prefix)))
    }

    /// Derive the URL from the request, with `scheme` (the default mode, with
    /// [`Scheme::Https`]). Replaces a [`public_url`](Self::public_url).
    pub fn derive_url(self, scheme: Scheme) -> Self {
        self.with(|shared| {
            shared.url = UrlSource::FromRequest {
                scheme,
                trust_forwarded: false,
            }
        })
    }

    /// When deriving the URL, take the scheme and host from `Forwarded` (RFC 7239) or
    /// `X-Forwarded-Proto` / `-Host` / `-Port` (first value of each list).
    ///
    /// **Only** when the proxy in front of this server sets those headers and strips the
    /// client's: anyone can send them. Has no effect with a [`public_url`](Self::public_url).
    pub fn trust_forwarded_headers(self) -> Self {
        self.with(|shared| {
            if let UrlSource::FromRequest {
                trust_forwarded, ..
            } = &mut shared.url
            {
                *trust_forwarded = true;
            }
        })
    }

    /// The largest body read, in bytes (default [`DEFAULT_BODY_LIMIT`]). A larger
    /// `Content-Length` is refused with 413 before reading; a body that grows past the limit
    /// while read is refused too.
    pub fn body_limit(self, bytes: usize) -> Self {
        self.with(|shared| shared.body_limit = bytes)
    }

    /// The longest the whole body may take to arrive (default [`DEFAULT_BODY_TIMEOUT`]),
    /// counted from the first time it is not ready; a slower body is refused with 408
    /// ([`Rejection::BodyTimeout`](super::Rejection::BodyTimeout)). A body that is ready at
    /// once, as Twilio's are, never starts a timer.
    ///
    /// The timer is tokio's: the runtime must have its time driver enabled (`#[tokio::main]`
    /// and `Builder::enable_all` do).
    pub fn body_timeout(self, timeout: Duration) -> Self {
        self.with(|shared| shared.body_timeout = timeout)
    }

    /// Require HTTP authentication (Basic or Digest, see [`HttpAuth`]) before the signature:
    /// checked from the headers alone, before the body is read. Missing or wrong credentials
    /// get `401` with the challenges (never `403`: Twilio sends its credentials only after a
    /// 401); the request then goes on to the signature check, which report-only mode may relax
    /// (credentials stay enforced). The user that matched is in the request's
    /// [`Authenticated`](crate::http_auth::Authenticated) extension.
    ///
    /// Configure the same credentials in the webhook URL in Twilio
    /// (`https://user:password@hooks.example.com/sms`); the [`public_url`](Self::public_url)
    /// stays without them, as Twilio signs the URL without them. Only over HTTPS: a warning
    /// is logged when the public URL is `http://`.
    pub fn http_auth(self, auth: HttpAuth) -> Self {
        self.with(|shared| {
            shared.http_auth = Some(auth);
            shared.warn_if_credentials_in_clear();
        })
    }

    /// Handle each verified webhook once: claim it before the handler runs, answer copies
    /// (Twilio's re-sends, replays) without the handler. See [`ReplayGuard`] and the
    /// [`replay`](crate::replay) module for the rules.
    pub fn replay_guard(self, guard: ReplayGuard) -> Self {
        self.with(|shared| shared.replay = Some(guard))
    }

    /// Log failures but let every request through, marked with
    /// [`Unverified`](super::Unverified) instead of [`Verified`](crate::Verified): for
    /// switching validation on in production without risking an outage. 413 and 400 still
    /// apply. **Not a security control**: switch it off once the logs are clean.
    pub fn report_only(self) -> Self {
        self.with(|shared| shared.report_only = true)
    }

    /// Answer refused requests with `rejection` instead of an empty 403 / 413 / 400.
    pub fn rejection<R2: Clone>(self, rejection: R2) -> TwilioWebhookLayer<R2> {
        let shared = Arc::unwrap_or_clone(self.shared);
        TwilioWebhookLayer {
            shared: Arc::new(Shared {
                keys: shared.keys,
                url: shared.url,
                strip_prefix: shared.strip_prefix,
                body_limit: shared.body_limit,
                body_timeout: shared.body_timeout,
                report_only: shared.report_only,
                rejection,
                log: shared.log,
                replay: shared.replay,
                http_auth: shared.http_auth,
            }),
        }
    }
}

impl<S, R> Layer<S> for TwilioWebhookLayer<R> {
    type Service = TwilioWebhook<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        TwilioWebhook {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}
