//! The string Twilio signs, and the signature it sends.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::form::{FormParams, SortedParams, with_buffer};

pub(crate) type HmacSha1 = Hmac<Sha1>;
pub(crate) type HmacSha256 = Hmac<sha2::Sha256>;

/// The `X-Twilio-Signature` Twilio would send for a form (or GET) request to `url` with
/// `params`, signed with `auth_token`.
///
/// `url` is used exactly as given (no port or userinfo variant); `params` are the decoded form
/// parameters in any order. Use it to sign requests in tests, or to check a signature by hand.
///
/// ```
/// use twilio_webhook::compute_signature;
///
/// // The example from Twilio's security docs.
/// let params = [
///     ("CallSid", "CA1234567890ABCDE"),
///     ("Caller", "+14158675310"),
///     ("Digits", "1234"),
///     ("From", "+14158675310"),
///     ("To", "+18005551212"),
/// ];
/// let signature = compute_signature("12345", "https://example.com/myapp.php?foo=1&bar=2", &params);
/// assert_eq!(signature, "L/OH5YylLD5NRKLltdqwSvS0BnU=");
/// ```
pub fn compute_signature<P: FormParams + ?Sized>(
    auth_token: impl AsRef<str>,
    url: &str,
    params: &P,
) -> String {
    let mut mac = HmacSha1::new_from_slice(auth_token.as_ref().as_bytes())
        .expect("HMAC accepts a key of any length");
    let mut sorted = SortedParams::new();
    sorted.fill_from_pairs(params);
    let params = sorted;
    mac.update(url.as_bytes());
    with_buffer(params.len_bound(), |buf| {
        let len = params.write(buf).unwrap_or(0);
        mac.update(&buf[..len]);
    });
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The signature Twilio sends with a webhook **shared key** (HMAC-SHA256, 44 characters), for
/// a form (or GET) request to `url` with `params`. The request also carries
/// `X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256`.
///
/// ```
/// use twilio_webhook::{Validator, Webhook, compute_shared_key_signature};
///
/// let url = "https://example.com/sms";
/// let signature = compute_shared_key_signature("shared secret", url, &[]);
/// let verified = Validator::new("auth token")
///     .add_shared_key("KS1", "shared secret")
///     .verify(
///         &Webhook::new(url)
///             .signature(Some(&signature))
///             .signature_settings(Some("key=KS1,algorithm=HMAC_SHA256")),
///     );
/// assert!(verified.is_ok());
/// ```
pub fn compute_shared_key_signature<P: FormParams + ?Sized>(
    secret: impl AsRef<str>,
    url: &str,
    params: &P,
) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_ref().as_bytes())
        .expect("HMAC accepts a key of any length");
    mac.update(signed_string(url, params).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The exact text Twilio signs for a form (or GET) request to `url` with `params`: the URL,
/// then every parameter's name and value sorted by name (then value), duplicates removed.
///
/// Useful to compare with what another SDK computes when a signature does not match.
///
/// ```
/// use twilio_webhook::signed_string;
///
/// let params = [("To", "+1"), ("Body", "hi"), ("To", "+1")];
/// assert_eq!(signed_string("https://example.com/sms", &params), "https://example.com/smsBodyhiTo+1");
/// ```
pub fn signed_string<P: FormParams + ?Sized>(url: &str, params: &P) -> String {
    let mut sorted = SortedParams::new();
    sorted.fill_from_pairs(params);
    let params = sorted;
    let mut text = vec![0u8; params.len_bound()];
    let len = params.write(&mut text).unwrap_or(0);
    text.truncate(len);
    // Every piece came from a `&str`, so the concatenation is UTF-8.
    url.to_owned() + &String::from_utf8_lossy(&text)
}
