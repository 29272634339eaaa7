//! HTTP Basic and Digest authentication in front of the signature, as Twilio performs it.
//!
//! Twilio's security docs: a webhook URL may carry credentials
//! (`https://user:pass@hooks.example.com/sms`). Twilio first sends the request **without**
//! `Authorization`; only after a `401` with a `WWW-Authenticate` header carrying a `realm` does
//! it send the same request again with credentials, Basic (RFC 7617) or Digest (RFC 7616). It
//! drops the credentials from the URL before signing, so the signature is checked as usual.
//!
//! [`HttpAuth`] is the framework-free check: give it the `Authorization` header, the method and
//! the request-target as received; it answers who authenticated, or the `WWW-Authenticate`
//! values of a `401`. The middleware's `TwilioWebhookLayer::http_auth` runs it before the body
//! is read.
//!
//! ```
//! use twilio_webhook::http_auth::{Credentials, HttpAuth};
//!
//! # fn main() -> Result<(), twilio_webhook::http_auth::HttpAuthError> {
//! let auth = HttpAuth::basic([Credentials::new("twilio", "a long random password")?])?;
//!
//! // Twilio's first request: no credentials. The answer is a 401 challenge.
//! let refused = auth.check(None, "POST", "/sms").unwrap_err();
//! assert_eq!(refused.challenges(), ["Basic realm=\"twilio-webhook\", charset=\"UTF-8\""]);
//!
//! // The same request again, with credentials.
//! let header = "Basic dHdpbGlvOmEgbG9uZyByYW5kb20gcGFzc3dvcmQ=";
//! assert_eq!(auth.check(Some(header), "POST", "/sms").unwrap().user(), "twilio");
//! # Ok(()) }
//! ```
//!
//! Use it only over HTTPS: Basic sends the password in the clear, and Digest's MD5 is weak.

mod basic;
mod client;
mod credentials;
mod digest;
mod nonce;
mod params;

use core::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use client::{basic_authorization, digest_authorization};
pub use credentials::Credentials;
pub use digest::Algorithm;
pub use nonce::NonceSecret;

/// The default realm: what Twilio is told the credentials are for.
pub const DEFAULT_REALM: &str = "twilio-webhook";

/// The default lifetime of a Digest nonce: 300 seconds. Twilio answers a challenge at once.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// The longest `Authorization` header looked at; anything longer is refused unread.
const MAX_AUTHORIZATION: usize = 4096;

/// Which credentials and schemes a webhook endpoint requires.
///
/// Built with [`HttpAuth::basic`] or [`HttpAuth::digest`]; several credential pairs may be
/// given (rotation: any pair passes, and [`Authenticated::user`] says which).
#[derive(Clone)]
pub struct HttpAuth {
    inner: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    credentials: Vec<Credentials>,
    realm: String,
    scheme: Scheme,
}

#[derive(Clone)]
enum Scheme {
    Basic,
    Digest {
        algorithms: Vec<Algorithm>,
        secret: NonceSecret,
        lifetime: Duration,
    },
}

/// Who authenticated: the user name of the credential pair that matched (never the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    user: Arc<str>,
}

impl Authenticated {
    /// The user name that matched.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// For tests of handlers that take an `Authenticated` extension (feature `test-util`).
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn for_tests(user: &str) -> Self {
        Self { user: user.into() }
    }
}

/// A request refused by HTTP authentication: why, and the `WWW-Authenticate` values of the
/// `401` that asks for credentials (one per offered challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthorized {
    reason: AuthError,
    challenges: Vec<String>,
}

impl Unauthorized {
    /// Why the request was refused.
    pub fn reason(&self) -> AuthError {
        self.reason
    }

    /// The `WWW-Authenticate` header values to send with the `401`, in order.
    pub fn challenges(&self) -> &[String] {
        &self.challenges
    }
}

/// Why credentials were refused. None of these ever carries a password, a nonce secret or a
/// digest response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header: Twilio's first request always looks like this.
    Missing,
    /// Several `Authorization` headers.
    Repeated,
    /// The header cannot be parsed (bad Base64, no `:`, unterminated quotes, duplicate or
    /// missing fields, too long, not ASCII).
    Malformed,
    /// Another scheme than the one required.
    WrongScheme,
    /// No configured user and password match.
    WrongCredentials,
    /// Digest: the realm is not ours.
    WrongRealm,
    /// Digest: an algorithm that was not offered.
    UnsupportedAlgorithm,
    /// Digest: a `qop` other than `auth` (`auth-int` included).
    UnsupportedQop,
    /// Digest: the `uri` is not the request-target as received.
    WrongUri,
    /// Digest: the nonce was not issued by a server with this secret, or claims to come from
    /// the future.
    InvalidNonce,
    /// Digest: the response is right but the nonce is older than its lifetime: the challenge
    /// says `stale=true`, so the client retries with a fresh nonce without asking anyone.
    StaleNonce,
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpAuthError {
    /// No credential pair was given.
    NoCredentials,
    /// A user name is empty or contains `:` (RFC 7617 forbids it), `"` or a control character.
    InvalidUser,
    /// A password is empty or contains a control character.
    InvalidPassword,
    /// The realm is empty or contains `"`, `\` or a control character.
    InvalidRealm,
    /// Digest with no algorithm to offer.
    NoAlgorithm,
    /// The nonce secret is shorter than 32 bytes.
    WeakNonceSecret,
}

impl HttpAuth {
    fn new(
        credentials: impl IntoIterator<Item = Credentials>,
        scheme: Scheme,
    ) -> Result<Self, HttpAuthError> {
        let credentials: Vec<_> = credentials.into_iter().collect();
        if credentials.is_empty() {
            return Err(HttpAuthError::NoCredentials);
        }
        Ok(Self {
            inner: Arc::new(Config {
                credentials,
                realm: DEFAULT_REALM.to_owned(),
                scheme,
            }),
        })
    }

    /// Require Basic authentication with any of `credentials`.
    pub fn basic(
        credentials: impl IntoIterator<Item = Credentials>,
    ) -> Result<Self, HttpAuthError> {
        Self::new(credentials, Scheme::Basic)
    }

    /// Require Digest authentication (`qop="auth"`) with any of `credentials`, offering
    /// SHA-256 then MD5 (Twilio does not document which it uses), with nonces valid for
    /// [`DEFAULT_NONCE_LIFETIME`] under a random secret of this process.
    ///
    /// Several instances behind a load balancer must share one secret
    /// ([`nonce_secret`](Self::nonce_secret)): Twilio's retry with credentials may land on
    /// another instance, which must accept the nonce the first one issued.
    pub fn digest(
        credentials: impl IntoIterator<Item = Credentials>,
    ) -> Result<Self, HttpAuthError> {
        Self::new(
            credentials,
            Scheme::Digest {
                algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
                secret: NonceSecret::random(),
                lifetime: DEFAULT_NONCE_LIFETIME,
            },
        )
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.inner)
    }

    /// The realm named in challenges (default [`DEFAULT_REALM`]).
    pub fn realm(mut self, realm: impl Into<String>) -> Result<Self, HttpAuthError> {
        let realm = realm.into();
        if realm.is_empty()
            || realm
                .chars()
                .any(|c| c == '"' || c == '\\' || c.is_control())
        {
            return Err(HttpAuthError::InvalidRealm);
        }
        self.config_mut().realm = realm;
        Ok(self)
    }

    /// Digest: the algorithms offered, in order (default SHA-256 then MD5). No effect on Basic.
    pub fn algorithms(
        mut self,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> Result<Self, HttpAuthError> {
        let mut chosen: Vec<Algorithm> = Vec::new();
        for algorithm in algorithms {
            if !chosen.contains(&algorithm) {
                chosen.push(algorithm);
            }
        }
        if chosen.is_empty() {
            return Err(HttpAuthError::NoAlgorithm);
        }
        if let Scheme::Digest { algorithms, .. } = &mut self.config_mut().scheme {
            *algorithms = chosen;
        }
        Ok(self)
    }

    /// Digest: the secret nonces are signed with, shared by every instance (at least 32
    /// bytes, e.g. from your secret manager). No effect on Basic.
    pub fn nonce_secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, HttpAuthError> {
        let secret = NonceSecret::new(secret.as_ref())?;
        if let Scheme::Digest {
            secret: current, ..
        } = &mut self.config_mut().scheme
        {
            *current = secret;
        }
        Ok(self)
    }

    /// Digest: how long a nonce stays valid (default [`DEFAULT_NONCE_LIFETIME`]). An expired
    /// nonce with an otherwise correct answer gets a challenge with `stale=true`.
    #[must_use]
    pub fn nonce_lifetime(mut self, lifetime: Duration) -> Self {
        if let Scheme::Digest {
            lifetime: current, ..
        } = &mut self.config_mut().scheme
        {
            *current = lifetime;
        }
        self
    }

    /// The scheme required: `"Basic"` or `"Digest"`.
    pub fn scheme(&self) -> &'static str {
        match self.inner.scheme {
            Scheme::Basic => "Basic",
            Scheme::Digest { .. } => "Digest",
        }
    }

    /// Checks a request's credentials from its headers alone: `authorization` is the
    /// `Authorization` header (`None` when absent), `method` the request method and
    /// `request_target` the request-target exactly as received (`/sms?x=1`).
    pub fn check(
        &self,
        authorization: Option<&str>,
        method: &str,
        request_target: &str,
    ) -> Result<Authenticated, Unauthorized> {
        self.check_at(authorization, method, request_target, SystemTime::now())
    }

    /// [`check`](Self::check) at a given time (for tests of nonce expiry).
    pub fn check_at(
        &self,
        authorization: Option<&str>,
        method: &str,
        request_target: &str,
        now: SystemTime,
    ) -> Result<Authenticated, Unauthorized> {
        let config = &*self.inner;
        let refuse = |reason| Err(self.unauthorized(reason, now));
        let Some(header) = authorization else {
            return refuse(AuthError::Missing);
        };
        if header.len() > MAX_AUTHORIZATION || !header.is_ascii() {
            return refuse(AuthError::Malformed);
        }
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let verdict = match &config.scheme {
            Scheme::Basic if scheme.eq_ignore_ascii_case("Basic") => {
                basic::check(&config.credentials, rest)
            }
            Scheme::Digest {
                algorithms,
                secret,
                lifetime,
            } if scheme.eq_ignore_ascii_case("Digest") => digest::check(
                &digest::Expected {
                    credentials: &config.credentials,
                    realm: &config.realm,
                    algorithms,
                    secret,
                    lifetime: *lifetime,
                    method,
                    request_target,
                    now,
                },
                rest,
            ),
            _ => Err(AuthError::WrongScheme),
        };
        match verdict {
            Ok(index) => Ok(Authenticated {
                user: config.credentials[index].user_arc(),
            }),
            Err(reason) => refuse(reason),
        }
    }

    /// The 401 for a request refused before [`check`](Self::check) could look at it (several
    /// `Authorization` headers: [`AuthError::Repeated`]).
    pub fn refuse(&self, reason: AuthError) -> Unauthorized {
        self.unauthorized(reason, SystemTime::now())
    }

    /// The challenges of a 401: one per offered algorithm for Digest, with a fresh nonce.
    fn unauthorized(&self, reason: AuthError, now: SystemTime) -> Unauthorized {
        let config = &*self.inner;
        let realm = &config.realm;
        let challenges = match &config.scheme {
            Scheme::Basic => vec![format!("Basic realm=\"{realm}\", charset=\"UTF-8\"")],
            Scheme::Digest {
                algorithms, secret, ..
            } => {
                let nonce = secret.issue(now);
                let stale = if reason == AuthError::StaleNonce {
                    ", stale=true"
                } else {
                    ""
                };
                algorithms
                    .iter()
                    .map(|algorithm| {
                        format!(
                            "Digest realm=\"{realm}\", qop=\"auth\", algorithm={algorithm}, \
                             nonce=\"{nonce}\"{stale}"
                        )
                    })
                    .collect()
            }
        };
        Unauthorized { reason, challenges }
    }

    /// The user names configured, for logs.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.inner.credentials.iter().map(Credentials::user)
    }
}

impl fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("HttpAuth");
        s.field("scheme", &self.scheme())
            .field("realm", &self.inner.realm)
            .field("credentials", &self.inner.credentials);
        if let Scheme::Digest {
            algorithms,
            lifetime,
            ..
        } = &self.inner.scheme
        {
            s.field("algorithms", algorithms)
                .field("nonce_lifetime", lifetime)
                .field("nonce_secret", &"[redacted]");
        }
        s.finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "no Authorization header (Twilio's first request: it is challenged)",
            Self::Repeated => "several Authorization headers",
            Self::Malformed => "the Authorization header cannot be parsed",
            Self::WrongScheme => "the Authorization header uses another scheme than required",
            Self::WrongCredentials => "the user name or password is wrong",
            Self::WrongRealm => "the Digest realm is not this server's",
            Self::UnsupportedAlgorithm => "the Digest algorithm was not offered",
            Self::UnsupportedQop => "the Digest qop is not \"auth\"",
            Self::WrongUri => "the Digest uri is not the request-target",
            Self::InvalidNonce => "the Digest nonce was not issued by this server",
            Self::StaleNonce => "the Digest nonce has expired (challenged again with stale=true)",
        })
    }
}

impl fmt::Display for HttpAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoCredentials => "HTTP authentication needs at least one user and password",
            Self::InvalidUser => {
                "a user name must be non-empty, without ':', '\"' or control characters"
            }
            Self::InvalidPassword => "a password must be non-empty, without control characters",
            Self::InvalidRealm => {
                "the realm must be non-empty, without '\"', '\\' or control characters"
            }
            Self::NoAlgorithm => "Digest needs at least one algorithm to offer",
            Self::WeakNonceSecret => "the Digest nonce secret must be at least 32 bytes",
        })
    }
}

impl std::error::Error for AuthError {}
impl std::error::Error for HttpAuthError {}
