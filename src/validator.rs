//! `Validator`: keys prepared once, checked against every request in constant time.

use core::fmt;
use std::sync::Arc;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ValidationError;
use crate::form::{FormBody, FormParams, SortedParams, param_values, with_buffer};
use crate::signature::{HmacSha1, HmacSha256};
use crate::url::{SignedUrl, UrlVariant};

/// Checks `X-Twilio-Signature` headers.
///
/// Built once from the account's **primary auth token** (an API key secret cannot validate
/// webhooks) and shared by every request: the HMAC key schedule is computed here, not per call.
///
/// ```
/// use twilio_webhook::Validator;
///
/// let validator = Validator::new("12345");
/// let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675310&Digits=1234\
///              &From=%2B14158675310&To=%2B18005551212";
/// validator
///     .validate_body(
///         "https://example.com/myapp.php?foo=1&bar=2",
///         Some("application/x-www-form-urlencoded"),
///         body,
///         "L/OH5YylLD5NRKLltdqwSvS0BnU=",
///     )
///     .expect("the example from Twilio's docs verifies");
/// ```
#[derive(Clone)]
pub struct Validator {
    auth_tokens: Vec<HmacSha1>,
    /// The identity of each auth token, in the same order (see [`KeyIdentity`]).
    auth_token_ids: Vec<KeyIdentity>,
    shared_keys: Vec<(Arc<str>, HmacSha256, KeyIdentity)>,
    max_params: usize,
    /// The account these keys belong to, when the validator was told.
    account_sid: Option<Arc<str>>,
}

/// Which key verified a request, as an identity rather than a position: a SHA-256 of the key
/// (with a label of its own, so it is no MAC and no other hash of the token), cut to 128 bits.
/// The same token has the same identity in every validator and every process, so reordering
/// tokens during a rotation (`[old, new]` or `[new, old]`) changes nothing that is keyed on it
/// (the replay guard's claims). It says nothing about the key: `Debug` shows no bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyIdentity([u8; 16]);

impl KeyIdentity {
    pub(crate) fn of(kind: &[u8], secret: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"twilio-webhook key identity v1\0");
        hash.update(kind);
        hash.update(b"\0");
        hash.update(secret);
        let digest = hash.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    /// The identity's bytes, for the replay guard's claim key.
    pub(crate) fn bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// 64 bits of the identity: which share of a bounded store a claim counts against.
    pub(crate) fn tenant(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"))
    }
}

impl fmt::Debug for KeyIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyIdentity(..)")
    }
}

/// The parameter that names the account a webhook is for.
const ACCOUNT_SID: &str = "AccountSid";

/// The default of [`Validator::max_params`]: 1,000 form parameters. Twilio's largest form
/// webhooks (an MMS with ten media, a Voice call with AddOns) carry well under 200.
pub const DEFAULT_MAX_PARAMS: usize = 1000;

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// Which form of the URL the signature covered.
    pub url_variant: UrlVariant,
    /// Which configured key signed the request.
    pub key: KeyUsed,
    /// The account whose key verified the request, when its validator knows it
    /// ([`Validator::account_sid`], or an [`AccountMap`] entry): the one account a handler may
    /// act for. `None` when the key's account was not said. Never the request's own, unverified
    /// `AccountSid` (a request naming another account is refused with
    /// [`ValidationError::AccountMismatch`]).
    ///
    /// [`AccountMap`]: https://docs.rs/twilio-webhook/latest/twilio_webhook/middleware/struct.AccountMap.html
    pub account_sid: Option<String>,
    /// The identity of the key that verified (the replay guard keys claims on it).
    pub key_identity: KeyIdentity,
}

/// What a request carries instead of [`Verified`] when it failed validation and the
/// middleware is in report-only mode: why it failed. (Also at `middleware::Unverified`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified(pub ValidationError);

/// Which configured key verified a request. Never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyUsed {
    /// An auth token (HMAC-SHA1), by its position: 0 is the token given to
    /// [`Validator::new`], 1 the first one added with [`Validator::add_auth_token`], ...
    /// (empty tokens, which are ignored, take no position).
    AuthToken {
        /// Position of the token.
        index: usize,
    },
    /// A webhook shared key (HMAC-SHA256), by the id Twilio sent.
    SharedKey {
        /// The shared key's id.
        id: Arc<str>,
    },
}

/// A request as it arrived, for [`Validator::verify`]. Built with [`Webhook::new`] and the
/// setters, so a field added later breaks nobody.
///
/// ```
/// use twilio_webhook::Webhook;
///
/// let body = b"Body=hi";
/// let webhook = Webhook::new("https://example.com/sms")
///     .content_type(Some("application/x-www-form-urlencoded"))
///     .body(body)
///     .signature(Some("L/OH5YylLD5NRKLltdqwSvS0BnU="));
/// assert_eq!(webhook.body, b"Body=hi");
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Webhook<'a> {
    /// The full URL Twilio requested: scheme, host, port, path and query, exactly as sent.
    pub url: &'a str,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The raw body (empty for GET).
    pub body: &'a [u8],
    /// The `X-Twilio-Signature` header, if any.
    pub signature: Option<&'a str>,
    /// The `X-Twilio-Webhooks-Signature-Settings` header, if any.
    pub signature_settings: Option<&'a str>,
}

impl<'a> Webhook<'a> {
    /// A request to `url` with no body and no headers yet.
    pub fn new(url: &'a str) -> Self {
        Self {
            url,
            content_type: None,
            body: &[],
            signature: None,
            signature_settings: None,
        }
    }

    /// The `Content-Type` header.
    #[must_use]
    pub fn content_type(mut self, content_type: Option<&'a str>) -> Self {
        self.content_type = content_type;
        self
    }

    /// The raw body.
    #[must_use]
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// The `X-Twilio-Signature` header.
    #[must_use]
    pub fn signature(mut self, signature: Option<&'a str>) -> Self {
        self.signature = signature;
        self
    }

    /// The `X-Twilio-Webhooks-Signature-Settings` header.
    #[must_use]
    pub fn signature_settings(mut self, settings: Option<&'a str>) -> Self {
        self.signature_settings = settings;
        self
    }
}

/// What the signature covers besides the URL.
enum Signed<'p, 'a> {
    /// Form parameters, sorted.
    Params(&'p SortedParams<'a>),
    /// The URL alone; `body_sha256` is the body whose hash the URL carries, if any.
    UrlOnly { body_sha256: Option<&'a [u8]> },
}

/// The algorithm and tag a request claims.
enum Claim<'k> {
    Sha1([u8; 20]),
    Sha256(&'k Arc<str>, &'k HmacSha256, KeyIdentity, [u8; 32]),
}

impl Validator {
    /// A validator for one account's auth token.
    ///
    /// An empty token gives a validator that rejects every request with
    /// [`ValidationError::NoUsableKey`]: it fails closed.
    pub fn new(auth_token: impl AsRef<str>) -> Self {
        Self {
            auth_tokens: Vec::new(),
            auth_token_ids: Vec::new(),
            shared_keys: Vec::new(),
            max_params: DEFAULT_MAX_PARAMS,
            account_sid: None,
        }
        .add_auth_token(auth_token)
    }

    /// Says which account these keys belong to. A request verified with them is then for
    /// that account only: one whose `AccountSid` (form body or query) names another is
    /// refused with [`ValidationError::AccountMismatch`], and [`Verified::account_sid`] is
    /// `account_sid`. A tenant signing `AccountSid=<another tenant>` with its own token
    /// cannot make a handler act for the other tenant.
    ///
    /// ```
    /// use twilio_webhook::{ValidationError, Validator, Webhook, compute_signature};
    ///
    /// let validator = Validator::new("token of A").account_sid("ACaaaa");
    /// let url = "https://example.com/sms";
    /// let form = Some("application/x-www-form-urlencoded");
    /// let verify = |body: &[u8], params: &[(&str, &str)]| {
    ///     let signature = compute_signature("token of A", url, params);
    ///     let webhook = Webhook::new(url).content_type(form).body(body).signature(Some(&signature));
    ///     validator.verify(&webhook)
    /// };
    /// let own = verify(b"AccountSid=ACaaaa&Body=hi", &[("AccountSid", "ACaaaa"), ("Body", "hi")]);
    /// assert_eq!(own.unwrap().account_sid.as_deref(), Some("ACaaaa"));
    /// // Signed with A's own token, but naming another account.
    /// let other = verify(b"AccountSid=ACvictim&Body=hi", &[("AccountSid", "ACvictim"), ("Body", "hi")]);
    /// assert_eq!(other, Err(ValidationError::AccountMismatch));
    /// ```
    #[must_use]
    pub fn account_sid(mut self, account_sid: impl AsRef<str>) -> Self {
        self.account_sid = Some(Arc::from(account_sid.as_ref()));
        self
    }

    /// The account these keys belong to, if it was said ([`account_sid`](Self::account_sid)).
    pub fn account(&self) -> Option<&str> {
        self.account_sid.as_deref()
    }

    /// Refuse requests with more than `limit` form parameters (default
    /// [`DEFAULT_MAX_PARAMS`]) with [`MalformedBody::TooManyParameters`], before they are
    /// sorted: the cost of refusing a body of a million tiny pairs stays that of a few
    /// thousand bytes, and the memory per request stays bounded.
    ///
    /// [`MalformedBody::TooManyParameters`]: crate::MalformedBody::TooManyParameters
    #[must_use]
    pub fn max_params(mut self, limit: usize) -> Self {
        self.max_params = limit;
        self
    }

    /// Also accept requests signed with `auth_token`: for the overlap while a secondary token
    /// is promoted. Tokens are tried in the order they were given. An empty token is ignored.
    #[must_use]
    pub fn add_auth_token(mut self, auth_token: impl AsRef<str>) -> Self {
        let token = auth_token.as_ref().as_bytes();
        if !token.is_empty() {
            self.auth_tokens
                .push(HmacSha1::new_from_slice(token).expect("HMAC accepts a key of any length"));
            self.auth_token_ids
                .push(KeyIdentity::of(b"auth token", token));
        }
        self
    }

    /// Accept HMAC-SHA256 signatures from a webhook shared key, when a request's
    /// `X-Twilio-Webhooks-Signature-Settings` header names `id`. An empty secret is ignored.
    #[must_use]
    pub fn add_shared_key(mut self, id: impl AsRef<str>, secret: impl AsRef<str>) -> Self {
        let secret = secret.as_ref().as_bytes();
        if !secret.is_empty() {
            self.shared_keys.push((
                Arc::from(id.as_ref()),
                HmacSha256::new_from_slice(secret).expect("HMAC accepts a key of any length"),
                KeyIdentity::of(b"shared key", secret),
            ));
        }
        self
    }

    /// Whether any key is configured. A validator without one rejects everything.
    pub fn has_usable_key(&self) -> bool {
        !self.auth_tokens.is_empty() || !self.shared_keys.is_empty()
    }

    /// Checks a signature over `url` and already-decoded form `params` (any order, repeats
    /// allowed). For GET requests, pass no params: the query is part of the URL.
    ///
    /// A URL with a `bodySHA256` query parameter (a JSON webhook) is refused with
    /// [`ValidationError::BodySha256NeedsRawBody`]: its signature covers the URL only, so
    /// without the raw body it would verify whatever body came with it. Use
    /// [`validate_body`](Self::validate_body) for those.
    ///
    /// ```
    /// use twilio_webhook::Validator;
    ///
    /// let params = [("To", "+18005551212"), ("Digits", "1234"), ("From", "+14158675310"),
    ///               ("Caller", "+14158675310"), ("CallSid", "CA1234567890ABCDE")];
    /// let verdict = Validator::new("12345").validate(
    ///     "https://example.com/myapp.php?foo=1&bar=2",
    ///     &params,
    ///     "L/OH5YylLD5NRKLltdqwSvS0BnU=",
    /// );
    /// assert!(verdict.is_ok());
    /// ```
    pub fn validate<P: FormParams + ?Sized>(
        &self,
        url: &str,
        params: &P,
        signature: &str,
    ) -> Result<(), ValidationError> {
        let claim = self.claim(Some(signature), None)?;
        let url = SignedUrl::parse(url).map_err(ValidationError::InvalidUrl)?;
        if url.has_body_sha256() {
            return Err(ValidationError::BodySha256NeedsRawBody);
        }
        if params.count() > self.max_params {
            return Err(ValidationError::MalformedBody(
                crate::MalformedBody::TooManyParameters {
                    limit: self.max_params,
                },
            ));
        }
        let mut sorted = SortedParams::new();
        sorted.fill_from_pairs(params);
        let signed = Signed::Params(&sorted);
        self.check(&url, &signed, &claim)?;
        let given = params
            .pairs()
            .filter(|(name, _)| *name == ACCOUNT_SID)
            .map(|(_, value)| Some(value.to_owned()));
        self.check_account(given.chain(param_values(url.query().as_bytes(), ACCOUNT_SID)))
    }

    /// Checks a request from its raw parts: the URL, the `Content-Type` header, the raw body
    /// and the `X-Twilio-Signature` header.
    ///
    /// - A form body (`application/x-www-form-urlencoded`, any `charset`) is decoded and signed
    ///   as sorted parameters.
    /// - A URL with a `bodySHA256` query parameter (JSON webhooks) signs the URL alone, and the
    ///   body's SHA-256 must equal that parameter.
    /// - An empty body means the URL alone (GET).
    /// - Any other body is refused with [`ValidationError::UnsignedBody`]: nothing signs it.
    pub fn validate_body(
        &self,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
        signature: &str,
    ) -> Result<(), ValidationError> {
        self.verify(&Webhook {
            url,
            content_type,
            body,
            signature: Some(signature),
            signature_settings: None,
        })
        .map(drop)
    }

    /// Checks a request and says which URL form and which key verified it. Honours the
    /// `X-Twilio-Webhooks-Signature-Settings` header (webhook shared keys, HMAC-SHA256).
    pub fn verify(&self, webhook: &Webhook<'_>) -> Result<Verified, ValidationError> {
        let claim = self.claim(webhook.signature, webhook.signature_settings)?;
        let url = SignedUrl::parse(webhook.url).map_err(ValidationError::InvalidUrl)?;
        // Declared before the parameters, which borrow from it.
        let form;
        let mut params = SortedParams::new();
        let signed = if url.has_body_sha256() {
            Signed::UrlOnly {
                body_sha256: Some(webhook.body),
            }
        } else if webhook.content_type.is_some_and(is_form) {
            form = FormBody::new(webhook.body);
            params
                .fill_from_form_body(&form, self.max_params)
                .map_err(ValidationError::MalformedBody)?;
            Signed::Params(&params)
        } else if webhook.body.is_empty() {
            Signed::UrlOnly { body_sha256: None }
        } else {
            return Err(ValidationError::UnsignedBody);
        };
        let verified = self.check(&url, &signed, &claim)?;
        let form_body = match signed {
            Signed::UrlOnly {
                body_sha256: Some(body),
            } => {
                check_body_sha256(&url, body)?;
                None
            }
            Signed::UrlOnly { body_sha256: None } => None,
            Signed::Params(_) => Some(webhook.body),
        };
        // Only a form body and the query carry parameters: text inside a JSON body is no
        // `AccountSid`.
        let body_values = form_body
            .into_iter()
            .flat_map(|body| param_values(body, ACCOUNT_SID));
        self.check_account(body_values.chain(param_values(url.query().as_bytes(), ACCOUNT_SID)))?;
        Ok(verified)
    }

    /// With an account said ([`account_sid`](Self::account_sid)), refuses a request whose
    /// `AccountSid` values (`None`: one that does not decode) name anything else.
    fn check_account(
        &self,
        mut values: impl Iterator<Item = Option<String>>,
    ) -> Result<(), ValidationError> {
        match &self.account_sid {
            Some(account) => match values.all(|value| value.as_deref() == Some(&**account)) {
                true => Ok(()),
                false => Err(ValidationError::AccountMismatch),
            },
            None => Ok(()),
        }
    }

    /// Checks a request from its [`http`] parts, for hyper and any `http` 1.x server: the
    /// signature, the signature settings (shared keys) and the content type are read from its
    /// headers (each at most once: [`ValidationError::RepeatedHeader`] otherwise). `url` is the
    /// URL Twilio requested: your public base URL and the request's path and query, as
    /// received.
    ///
    /// ```
    /// use twilio_webhook::{Validator, compute_signature};
    ///
    /// let url = "https://hooks.example.com/sms";
    /// let request = http::Request::post("/sms")
    ///     .header("content-type", "application/x-www-form-urlencoded")
    ///     .header("x-twilio-signature", compute_signature("token", url, &[("Body", "hi")]))
    ///     .body(b"Body=hi".to_vec())
    ///     .unwrap();
    /// let (parts, body) = request.into_parts();
    /// assert!(Validator::new("token").verify_request(url, &parts, &body).is_ok());
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn verify_request(
        &self,
        url: &str,
        parts: &http::request::Parts,
        body: &[u8],
    ) -> Result<Verified, ValidationError> {
        self.verify_headers(url, &parts.headers, body)
    }

    /// [`verify_request`](Self::verify_request) from the headers alone.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn verify_headers(
        &self,
        url: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Verified, ValidationError> {
        let signed = crate::twilio_headers::signed(headers)?;
        self.verify(
            &Webhook::new(url)
                .body(body)
                .content_type(signed.content_type)
                .signature(signed.signature)
                .signature_settings(signed.settings),
        )
    }

    /// Decodes the signature header and picks the algorithm and keys it calls for.
    fn claim(
        &self,
        signature: Option<&str>,
        settings: Option<&str>,
    ) -> Result<Claim<'_>, ValidationError> {
        if !self.has_usable_key() {
            return Err(ValidationError::NoUsableKey);
        }
        let signature = signature.filter(|s| !s.is_empty());
        let signature = signature.ok_or(ValidationError::MissingSignature)?;
        match parse_settings(settings)? {
            None => {
                if self.auth_tokens.is_empty() {
                    return Err(ValidationError::NoUsableKey);
                }
                Ok(Claim::Sha1(decode_tag::<20>(signature)?))
            }
            Some(key_id) => {
                let (id, key, identity) = self
                    .shared_keys
                    .iter()
                    .find(|(id, _, _)| **id == *key_id)
                    .ok_or(ValidationError::UnknownSharedKey)?;
                let tag = decode_tag::<32>(signature)?;
                Ok(Claim::Sha256(id, key, *identity, tag))
            }
        }
    }

    fn check(
        &self,
        url: &SignedUrl<'_>,
        signed: &Signed<'_, '_>,
        claim: &Claim<'_>,
    ) -> Result<Verified, ValidationError> {
        match signed {
            // The parameters are the same for every candidate: decode and write them once.
            Signed::Params(params) => with_buffer(params.len_bound(), |buf| {
                let len = params.write(buf).map_err(ValidationError::MalformedBody)?;
                self.match_claim(url, &buf[..len], claim)
            }),
            Signed::UrlOnly { .. } => self.match_claim(url, &[], claim),
        }
    }

    /// Which key and URL candidate signed `url` followed by `text`, if any.
    fn match_claim(
        &self,
        url: &SignedUrl<'_>,
        text: &[u8],
        claim: &Claim<'_>,
    ) -> Result<Verified, ValidationError> {
        match claim {
            Claim::Sha1(tag) => {
                first_match(url, text, &self.auth_tokens, tag).map(|(index, url_variant)| {
                    Verified {
                        url_variant,
                        key: KeyUsed::AuthToken { index },
                        account_sid: self.account_sid.as_deref().map(str::to_owned),
                        key_identity: self.auth_token_ids[index],
                    }
                })
            }
            Claim::Sha256(id, key, identity, tag) => {
                first_match(url, text, core::slice::from_ref(*key), tag).map(|(_, url_variant)| {
                    Verified {
                        url_variant,
                        key: KeyUsed::SharedKey { id: Arc::clone(id) },
                        account_sid: self.account_sid.as_deref().map(str::to_owned),
                        key_identity: *identity,
                    }
                })
            }
        }
        .ok_or(ValidationError::SignatureMismatch)
    }
}

/// Tries every URL candidate with every key; the first that verifies wins.
fn first_match<M: Mac + Clone>(
    url: &SignedUrl<'_>,
    text: &[u8],
    keys: &[M],
    tag: &[u8],
) -> Option<(usize, UrlVariant)> {
    for variant in url.variants() {
        for (index, key) in keys.iter().enumerate() {
            let mut mac = key.clone();
            url.for_each_piece(variant, |piece| mac.update(piece.as_bytes()));
            mac.update(text);
            // Constant-time comparison of the MAC bytes.
            if mac.verify_slice(tag).is_ok() {
                return Some((index, variant));
            }
        }
    }
    None
}

/// Standard, padded Base64 of exactly `N` bytes; anything else is malformed. The length is
/// checked first, so an oversized header costs nothing to refuse.
fn decode_tag<const N: usize>(signature: &str) -> Result<[u8; N], ValidationError> {
    crate::tag::decode(signature.as_bytes()).ok_or(ValidationError::MalformedSignature)
}

/// `key=<id>,algorithm=<name>`: `None` means HMAC-SHA1 with the auth token, `Some(id)` an
/// HMAC-SHA256 shared key.
fn parse_settings(settings: Option<&str>) -> Result<Option<&str>, ValidationError> {
    let Some(settings) = settings else {
        return Ok(None);
    };
    let mut key = None;
    let mut algorithm = None;
    for entry in settings.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let (name, value) = entry
            .split_once('=')
            .ok_or(ValidationError::MalformedSignatureSettings)?;
        match name.trim() {
            "key" => key = Some(value.trim()),
            "algorithm" => algorithm = Some(value.trim()),
            _ => {}
        }
    }
    match algorithm {
        None | Some("HMAC_SHA1") => Ok(None),
        Some("HMAC_SHA256") => key
            .filter(|k| !k.is_empty())
            .map(Some)
            .ok_or(ValidationError::MalformedSignatureSettings),
        Some(_) => Err(ValidationError::UnknownAlgorithm),
    }
}

pub(crate) fn is_form(content_type: &str) -> bool {
    const FORM: &[u8] = b"application/x-www-form-urlencoded";
    // What Twilio sends (`application/x-www-form-urlencoded`, perhaps `; charset=utf-8`)
    // answered without the `;` search and the Unicode trim below, a tenth of a status
    // callback's own work; the general rule gives the same answer for these.
    let bytes = content_type.as_bytes();
    if let Some((essence, rest)) = bytes.split_at_checked(FORM.len())
        && essence.eq_ignore_ascii_case(FORM)
        && matches!(rest.first(), None | Some(b';'))
    {
        return true;
    }
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// Every `bodySHA256` in the URL must be the lowercase hex SHA-256 of the body.
fn check_body_sha256(url: &SignedUrl<'_>, body: &[u8]) -> Result<(), ValidationError> {
    let hex = sha256_hex(body);
    for claimed in url.body_sha256_values() {
        if !bool::from(claimed.as_bytes().ct_eq(&hex)) {
            return Err(ValidationError::BodyHashMismatch);
        }
    }
    Ok(())
}

/// The value Twilio puts in a JSON webhook's `bodySHA256` query parameter: the lowercase hex
/// SHA-256 of the raw body.
///
/// ```
/// assert_eq!(
///     twilio_webhook::body_sha256(b""),
///     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
pub fn body_sha256(body: &[u8]) -> String {
    String::from_utf8(sha256_hex(body).to_vec()).expect("hex digits")
}

/// The URL Twilio signs for a non-form (JSON) body: `url` with `bodySHA256=<hash of body>`
/// added to its query, before any `#fragment` (a parameter after `#` is in no query).
///
/// A URL that already carries `bodySHA256`, as the URL Twilio calls does, is returned as it
/// is when every such value is the body's hash (adding another would sign
/// `?bodySHA256=H&bodySHA256=H`, which Twilio never does), and refused with
/// [`ValidationError::BodyHashMismatch`] when one is not. A URL that cannot be the one Twilio
/// requested is [`ValidationError::InvalidUrl`].
///
/// ```
/// use twilio_webhook::{ValidationError, url_with_body_sha256};
///
/// let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// let url = url_with_body_sha256("https://example.com/events?a=1#frag", b"").unwrap();
/// assert_eq!(url, format!("https://example.com/events?a=1&bodySHA256={empty}#frag"));
/// // Already there: signed as it is.
/// assert_eq!(url_with_body_sha256(&url, b"").unwrap(), url);
/// // There, but not this body's hash.
/// assert_eq!(url_with_body_sha256(&url, b"{}"), Err(ValidationError::BodyHashMismatch));
/// ```
pub fn url_with_body_sha256(url: &str, body: &[u8]) -> Result<String, ValidationError> {
    let parsed = SignedUrl::parse(url).map_err(ValidationError::InvalidUrl)?;
    if parsed.has_body_sha256() {
        check_body_sha256(&parsed, body)?;
        return Ok(url.to_owned());
    }
    let (before_fragment, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let separator = if before_fragment.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok(format!(
        "{before_fragment}{separator}bodySHA256={}{fragment}",
        body_sha256(body)
    ))
}

/// The lowercase hex SHA-256 of `body`, on the stack.
pub(crate) fn sha256_hex(body: &[u8]) -> [u8; 64] {
    let digest = Sha256::digest(body);
    let mut hex = [0u8; 64];
    for (i, byte) in digest.iter().enumerate() {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex[2 * i] = DIGITS[usize::from(byte >> 4)];
        hex[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
    }
    hex
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field(
                "auth_tokens",
                &format_args!("[{} redacted]", self.auth_tokens.len()),
            )
            .field(
                "shared_keys",
                &self
                    .shared_keys
                    .iter()
                    .map(|(id, _, _)| id)
                    .collect::<Vec<_>>(),
            )
            .field("max_params", &self.max_params)
            .field("account_sid", &self.account_sid)
            .finish()
    }
}
