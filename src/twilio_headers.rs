//! The headers Twilio sends, read from an `http::HeaderMap` (feature `http`).

use http::{HeaderMap, HeaderName};

use crate::ValidationError;

/// `X-Twilio-Signature`.
pub(crate) static SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
/// `X-Twilio-Webhooks-Signature-Settings`.
pub(crate) static SIGNATURE_SETTINGS: HeaderName =
    HeaderName::from_static("x-twilio-webhooks-signature-settings");

/// A Twilio header that appears at most once, as text: repeated is
/// [`ValidationError::RepeatedHeader`] (which copy was signed cannot be known), not text is
/// `not_text`.
pub(crate) fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    not_text: ValidationError,
) -> Result<Option<&'h str>, ValidationError> {
    at_most_once(headers, name, not_text, ValidationError::RepeatedHeader)
}

/// Any header that appears at most once, as text; `not_text` or `repeated` otherwise. The one
/// place the middleware and the core read a single-valued header.
pub(crate) fn at_most_once<'h, E>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    not_text: E,
    repeated: E,
) -> Result<Option<&'h str>, E> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value.to_str().map(Some).map_err(|_| not_text),
        (Some(_), Some(_)) => Err(repeated),
    }
}
