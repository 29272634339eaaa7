//! Signed requests for tests (feature `test-util`): what Twilio would send, built in one line,
//! for `tower::ServiceExt::oneshot` on an axum router or any tower service.
//!
//! ```
//! use twilio_webhook::test_util::WebhookRequest;
//!
//! let request = WebhookRequest::post("https://hooks.example.com/twilio/sms")
//!     .param("From", "+14155550123")
//!     .param("Body", "Hello")
//!     .signed_with("your auth token")
//!     .build();
//! assert_eq!(request.uri(), "/twilio/sms");
//! assert_eq!(request.headers()["host"], "hooks.example.com");
//! assert!(request.headers().contains_key("x-twilio-signature"));
//! ```
//!
//! The request is signed exactly as Twilio signs (the crate's own [`compute_signature`] and
//! the same rules for JSON and shared keys), so a test that passes with it passes with Twilio.
//! Handlers that take a [`Verified`] or [`Unverified`] extension can be unit-tested without
//! the layer: [`verified`] and [`unverified`] build them.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::Full;

use crate::http_auth::{Credentials, basic_authorization, digest_authorization};
use crate::middleware::Unverified;
use crate::{
    KeyUsed, UrlVariant, ValidationError, Verified, compute_shared_key_signature,
    compute_signature, form_body, redact_userinfo, url_with_body_sha256,
};

/// A webhook request as Twilio would send it, signed. Build one with [`post`](Self::post),
/// [`get`](Self::get) or [`json`](Self::json), then [`build`](Self::build).
#[derive(Clone)]
#[must_use]
pub struct WebhookRequest {
    method: Method,
    url: String,
    params: Vec<(String, String)>,
    json: Option<Bytes>,
    key: Key,
    host: Option<String>,
    authorization: Option<Authorization>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Clone)]
enum Key {
    AuthToken(String),
    SharedKey { id: String, secret: String },
}

#[derive(Clone)]
enum Authorization {
    Basic(Credentials),
    Digest {
        challenge: String,
        credentials: Credentials,
    },
}

impl WebhookRequest {
    fn new(method: Method, url: &str) -> Self {
        Self {
            method,
            url: url.to_owned(),
            params: Vec::new(),
            json: None,
            key: Key::AuthToken(String::new()),
            host: None,
            authorization: None,
            headers: Vec::new(),
        }
    }

    /// A form POST to `url`, the full URL Twilio requests (the public one).
    pub fn post(url: &str) -> Self {
        Self::new(Method::POST, url)
    }

    /// A GET to `url`, whose query carries the parameters (write them into `url`).
    ///
    /// ```
    /// # use twilio_webhook::test_util::WebhookRequest;
    /// let request = WebhookRequest::get("https://hooks.example.com/status?CallSid=CA1")
    ///     .signed_with("token")
    ///     .build();
    /// assert_eq!(request.method(), "GET");
    /// assert_eq!(request.uri(), "/status?CallSid=CA1");
    /// ```
    pub fn get(url: &str) -> Self {
        Self::new(Method::GET, url)
    }

    /// A JSON POST to `url` with `body`: the builder appends `bodySHA256=<hash>` to the URL,
    /// as Twilio does, and signs the URL alone.
    ///
    /// ```
    /// # use twilio_webhook::test_util::WebhookRequest;
    /// let request = WebhookRequest::json("https://hooks.example.com/events", r#"{"a":1}"#)
    ///     .signed_with("token")
    ///     .build();
    /// assert!(request.uri().query().unwrap().starts_with("bodySHA256="));
    /// assert_eq!(request.headers()["content-type"], "application/json");
    /// ```
    pub fn json(url: &str, body: impl Into<Bytes>) -> Self {
        let mut request = Self::new(Method::POST, url);
        request.json = Some(body.into());
        request
    }

    /// A form parameter, in wire order (repeat a name to send it several times).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Sign with this auth token (HMAC-SHA1), as Twilio does by default.
    pub fn signed_with(mut self, auth_token: impl Into<String>) -> Self {
        self.key = Key::AuthToken(auth_token.into());
        self
    }

    /// Sign with a webhook shared key (HMAC-SHA256) and send the
    /// `X-Twilio-Webhooks-Signature-Settings` header that names it.
    ///
    /// ```
    /// # use twilio_webhook::test_util::WebhookRequest;
    /// let request = WebhookRequest::post("https://hooks.example.com/sms")
    ///     .param("Body", "hi")
    ///     .signed_with_shared_key("KS123", "the shared key's secret")
    ///     .build();
    /// assert_eq!(
    ///     request.headers()["x-twilio-webhooks-signature-settings"],
    ///     "key=KS123,algorithm=HMAC_SHA256"
    /// );
    /// assert_eq!(request.headers()["x-twilio-signature"].len(), 44);
    /// ```
    pub fn signed_with_shared_key(
        mut self,
        id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.key = Key::SharedKey {
            id: id.into(),
            secret: secret.into(),
        };
        self
    }

    /// Deliver to another host than the signed URL's, as a proxy or tunnel does: the
    /// `Host` header becomes `host` (e.g. `internal:8080`) while the signature still covers
    /// the public URL. For testing `public_url` and forwarded-header setups.
    ///
    /// ```
    /// # use twilio_webhook::test_util::WebhookRequest;
    /// let request = WebhookRequest::post("https://hooks.example.com/sms")
    ///     .signed_with("token")
    ///     .sent_to("internal:8080")
    ///     .header("x-forwarded-proto", "https")
    ///     .build();
    /// assert_eq!(request.headers()["host"], "internal:8080");
    /// ```
    pub fn sent_to(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Send HTTP Basic credentials.
    pub fn basic_auth(mut self, credentials: &Credentials) -> Self {
        self.authorization = Some(Authorization::Basic(credentials.clone()));
        self
    }

    /// Answer a Digest `challenge` (a `WWW-Authenticate` value from a 401) with `credentials`.
    ///
    /// ```
    /// # use twilio_webhook::http_auth::{Credentials, HttpAuth};
    /// # use twilio_webhook::test_util::WebhookRequest;
    /// let twilio = Credentials::new("twilio", "s3cret").unwrap();
    /// let auth = HttpAuth::digest([twilio.clone()]).unwrap();
    /// let challenge = auth.check(None, "POST", "/sms").unwrap_err().challenges()[0].clone();
    /// let request = WebhookRequest::post("https://hooks.example.com/sms")
    ///     .signed_with("token")
    ///     .digest_auth(challenge, &twilio)
    ///     .build();
    /// let header = request.headers()["authorization"].to_str().unwrap();
    /// assert!(auth.check(Some(header), "POST", "/sms").is_ok());
    /// ```
    pub fn digest_auth(mut self, challenge: impl Into<String>, credentials: &Credentials) -> Self {
        self.authorization = Some(Authorization::Digest {
            challenge: challenge.into(),
            credentials: credentials.clone(),
        });
        self
    }

    /// Any other header (`I-Twilio-Idempotency-Token`, a forwarded header...).
    ///
    /// # Panics
    /// If the name or value is not a valid header: a mistake in the test itself.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        ));
        self
    }

    /// The URL Twilio signs: the given one without any `#fragment`, with `bodySHA256` added to
    /// its query for JSON (or kept, when the URL given already carries the body's hash).
    ///
    /// # Panics
    /// For JSON, if the URL given carries a `bodySHA256` that is not the body's hash, or is not
    /// an absolute URL: a mistake in the test itself.
    pub fn signed_url(&self) -> String {
        // A fragment (`#rc=...`) is never sent, and Twilio strips it before signing.
        let url = self.url.split('#').next().unwrap_or_default();
        match &self.json {
            Some(body) => url_with_body_sha256(url, body).unwrap_or_else(|error| {
                panic!(
                    "WebhookRequest::json({:?}, ..): {error}",
                    redact_userinfo(url)
                )
            }),
            None => url.to_owned(),
        }
    }

    /// The `X-Twilio-Signature` value.
    pub fn signature(&self) -> String {
        let url = self.signed_url();
        let params: &[(String, String)] = if self.json.is_some() {
            &[]
        } else {
            &self.params
        };
        match &self.key {
            Key::AuthToken(token) => compute_signature(token, &url, params),
            Key::SharedKey { secret, .. } => compute_shared_key_signature(secret, &url, params),
        }
    }

    /// The request: method, origin-form URI (path and query), `Host`, `Content-Type`, the
    /// signature headers, credentials if any, and the body.
    ///
    /// # Panics
    /// If the URL is not absolute (`https://host/path`): a mistake in the test itself.
    pub fn build(self) -> Request<Full<Bytes>> {
        let url = self.signed_url();
        let (_, after_scheme) = url.split_once("://").expect("an absolute URL");
        let path_start = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
        let authority = &after_scheme[..path_start];
        // Twilio drops credentials from the URL; the Host header never carries them.
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let path = after_scheme[path_start..].split('#').next().unwrap_or("");
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(path.as_str())
            .header(HOST, self.host.as_deref().unwrap_or(host))
            .header("x-twilio-signature", self.signature());
        if let Key::SharedKey { id, .. } = &self.key {
            builder = builder.header(
                "x-twilio-webhooks-signature-settings",
                format!("key={id},algorithm=HMAC_SHA256"),
            );
        }
        let body = match (&self.json, self.method == Method::GET) {
            (Some(json), _) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                json.clone()
            }
            (None, true) => Bytes::new(),
            (None, false) => {
                builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Bytes::from(form_body(&self.params))
            }
        };
        match &self.authorization {
            Some(Authorization::Basic(credentials)) => {
                builder = builder.header(AUTHORIZATION, basic_authorization(credentials));
            }
            Some(Authorization::Digest {
                challenge,
                credentials,
            }) => {
                let answer = digest_authorization(
                    challenge,
                    credentials,
                    self.method.as_str(),
                    &path,
                    "746573742d757469",
                )
                .expect("a Digest challenge from this crate");
                builder = builder.header(AUTHORIZATION, answer);
            }
            None => {}
        }
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder.body(Full::new(body)).expect("a valid request")
    }
}

/// A [`Verified`] as the layer would attach it for a request signed with the first auth token,
/// over the URL as received: for unit tests of handlers.
///
/// ```
/// use twilio_webhook::Verified;
/// use twilio_webhook::test_util::verified;
///
/// fn reply(verified: &Verified) -> String {
///     format!("verified over the URL {}", verified.url_variant)
/// }
/// assert_eq!(reply(&verified()), "verified over the URL as received");
/// ```
pub fn verified() -> Verified {
    Verified {
        url_variant: UrlVariant::AsReceived,
        key: KeyUsed::AuthToken { index: 0 },
        account_sid: None,
        key_identity: crate::KeyIdentity::of(b"test", b"test_util::verified"),
    }
}

/// A [`Verified`] for a request of `account_sid`, as a layer with a key source attaches it.
pub fn verified_for_account(account_sid: &str) -> Verified {
    Verified {
        account_sid: Some(account_sid.to_owned()),
        ..verified()
    }
}

/// An [`Unverified`] as report-only mode attaches it.
pub fn unverified(error: ValidationError) -> Unverified {
    Unverified(error)
}
