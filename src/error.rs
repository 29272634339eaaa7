//! Why a webhook was rejected, as a value a caller can match on.

use core::fmt;

/// Why a request failed validation.
///
/// Each variant is a kind a caller can match on; the `Display` text says what a person can do
/// about it. No variant ever carries the auth token, a shared key or a computed signature.
///
/// ```
/// use twilio_webhook::{ValidationError, Validator};
///
/// let validator = Validator::new("12345");
/// let params: [(&str, &str); 0] = [];
/// match validator.validate("https://example.com/sms", &params, "") {
///     Err(ValidationError::MissingSignature) => {} // no X-Twilio-Signature header
///     other => panic!("unexpected: {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationError {
    /// The `X-Twilio-Signature` header is absent or empty.
    MissingSignature,
    /// The header is not a signature: not standard, padded Base64 of a 20-byte (HMAC-SHA1) or
    /// 32-byte (HMAC-SHA256) MAC. Base64url, missing padding, hex digests, surrounding
    /// whitespace and oversized values all land here.
    MalformedSignature,
    /// The signature is well-formed but no configured key signed this URL and these parameters.
    SignatureMismatch,
    /// The signature is valid for the URL, but the body's SHA-256 does not equal the URL's
    /// `bodySHA256` parameter: the body was replaced.
    BodyHashMismatch,
    /// The URL carries `bodySHA256` (a JSON webhook) but was handed to
    /// [`Validator::validate`], which has no body to hash: the signature alone says nothing
    /// about the body. Use [`Validator::validate_body`] or [`Validator::verify`] with the raw
    /// body.
    ///
    /// [`Validator::validate`]: crate::Validator::validate
    /// [`Validator::validate_body`]: crate::Validator::validate_body
    /// [`Validator::verify`]: crate::Validator::verify
    BodySha256NeedsRawBody,
    /// A non-empty body that is not form-encoded, and the URL has no `bodySHA256` parameter:
    /// nothing signs that body, so it cannot be trusted.
    UnsignedBody,
    /// The form body cannot be decoded.
    MalformedBody(MalformedBody),
    /// The URL cannot be the URL Twilio requested.
    InvalidUrl(InvalidUrl),
    /// The validator has no key to check with (an empty auth token was given).
    NoUsableKey,
    /// A multi-tenant key source has no auth token for the request's account (its
    /// `AccountSid`, or whatever the source keys on).
    UnknownAccount,
    /// The form body and query together carry more than one distinct `AccountSid` (or one
    /// that cannot be decoded): which account the request is for cannot be known, and a
    /// handler reading another copy than the key source did could act for the wrong tenant.
    AmbiguousAccount,
    /// The request verified with the keys of one account, but its `AccountSid` (form body or
    /// query) names another: a tenant signing with its own token while claiming another
    /// tenant's account. Refused, so that a handler never acts for an account whose key did not
    /// verify the request.
    AccountMismatch,
    /// The `X-Twilio-Webhooks-Signature-Settings` header names an algorithm this library does
    /// not know.
    UnknownAlgorithm,
    /// The `X-Twilio-Webhooks-Signature-Settings` header names a shared key id that is not
    /// configured.
    UnknownSharedKey,
    /// The `X-Twilio-Webhooks-Signature-Settings` header cannot be parsed.
    MalformedSignatureSettings,
    /// `X-Twilio-Signature`, `X-Twilio-Webhooks-Signature-Settings` or `Content-Type` appears
    /// more than once: which copy was signed cannot be known.
    RepeatedHeader,
}

/// Why a form body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedBody {
    /// A `%` not followed by two hexadecimal digits.
    InvalidPercentEncoding,
    /// The body, or a name or value after percent-decoding, is not valid UTF-8.
    InvalidUtf8,
    /// More parameters than the validator accepts (see [`Validator::max_params`]). Twilio's
    /// largest form webhooks carry well under 200; a body of thousands of tiny pairs is an
    /// attempt to make the server work before the signature can refuse it.
    ///
    /// [`Validator::max_params`]: crate::Validator::max_params
    TooManyParameters {
        /// The configured limit.
        limit: usize,
    },
}

/// Why a URL was refused before any signature was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidUrl {
    /// No `scheme://` prefix (Twilio always requests an absolute URL).
    MissingScheme,
    /// Nothing between `://` and the path, or no host in the authority.
    EmptyHost,
    /// The port is not a decimal number, or an IPv6 literal is not closed by `]`.
    MalformedAuthority,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingSignature => f.write_str("the request has no X-Twilio-Signature header"),
            Self::MalformedSignature => f.write_str(
                "the X-Twilio-Signature header is not a Base64-encoded HMAC \
                 (28 characters for HMAC-SHA1, 44 for HMAC-SHA256, standard alphabet, padded)",
            ),
            Self::SignatureMismatch => f.write_str(
                "the X-Twilio-Signature header does not match: check that the URL is exactly the \
                 one configured in Twilio (scheme, host, port, path, query) and that the key is \
                 the account's primary auth token (an API key secret cannot validate webhooks)",
            ),
            Self::AccountMismatch => f.write_str(
                "the request's AccountSid names another account than the one whose key verified \
                 it",
            ),
            Self::BodyHashMismatch => {
                f.write_str("the request body does not match the bodySHA256 parameter of the URL")
            }
            Self::BodySha256NeedsRawBody => f.write_str(
                "the URL carries bodySHA256 (a JSON webhook), so the raw body must be checked \
                 too: use Validator::validate_body or Validator::verify, not validate",
            ),
            Self::UnsignedBody => f.write_str(
                "the body is neither form-encoded nor covered by a bodySHA256 URL parameter, so \
                 no signature covers it",
            ),
            Self::MalformedBody(reason) => write!(f, "the form body cannot be decoded: {reason}"),
            Self::InvalidUrl(reason) => write!(f, "the URL cannot be validated: {reason}"),
            Self::NoUsableKey => f.write_str(
                "no auth token is configured: webhooks are signed with the account's primary \
                 auth token (an API key secret cannot validate them)",
            ),
            Self::UnknownAccount => f.write_str(
                "no auth token is configured for the account this request claims to come from",
            ),
            Self::AmbiguousAccount => f.write_str(
                "the request carries more than one distinct AccountSid (body and query \
                 together), so the account it is for cannot be known",
            ),
            Self::UnknownAlgorithm => f.write_str(
                "the X-Twilio-Webhooks-Signature-Settings header names an unsupported algorithm",
            ),
            Self::UnknownSharedKey => f.write_str(
                "the X-Twilio-Webhooks-Signature-Settings header names a shared key id that is \
                 not configured",
            ),
            Self::MalformedSignatureSettings => {
                f.write_str("the X-Twilio-Webhooks-Signature-Settings header cannot be parsed")
            }
            Self::RepeatedHeader => f.write_str(
                "a repeated header: X-Twilio-Signature, X-Twilio-Webhooks-Signature-Settings or \
                 Content-Type appears more than once, so which copy was signed cannot be known",
            ),
        }
    }
}

impl fmt::Display for MalformedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPercentEncoding => {
                f.write_str("a '%' is not followed by two hexadecimal digits")
            }
            Self::InvalidUtf8 => f.write_str("it is not valid UTF-8 after percent-decoding"),
            Self::TooManyParameters { limit } => write!(
                f,
                "too many parameters: more than {limit} (raise Validator::max_params if a genuine \
                 webhook carries that many)"
            ),
        }
    }
}

impl fmt::Display for InvalidUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingScheme => "it does not start with a scheme such as https://",
            Self::EmptyHost => "it has no host",
            Self::MalformedAuthority => "its port or IPv6 host is malformed",
        })
    }
}

impl std::error::Error for ValidationError {}
impl std::error::Error for MalformedBody {}
impl std::error::Error for InvalidUrl {}
