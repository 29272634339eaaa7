//! The headers Twilio sends, read from an `http::HeaderMap` (feature `http`).

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::ValidationError;

/// `X-Twilio-Signature`.
pub(crate) static SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
/// `X-Twilio-Webhooks-Signature-Settings`.
pub(crate) static SIGNATURE_SETTINGS: HeaderName =
    HeaderName::from_static("x-twilio-webhooks-signature-settings");

/// The headers a signature check reads, found in one pass over the headers: looking each up
/// hashed its name, a tenth of the layer's own work per request.
pub(crate) struct Signed<'h> {
    /// `Content-Type`.
    pub(crate) content_type: Option<&'h str>,
    /// `X-Twilio-Signature`.
    pub(crate) signature: Option<&'h str>,
    /// `X-Twilio-Webhooks-Signature-Settings`.
    pub(crate) settings: Option<&'h str>,
}

/// [`Signed`] from `headers`, each header read as [`single`] reads it and refused in the same
/// order: the content type first, then the signature, then its settings.
pub(crate) fn signed(headers: &HeaderMap) -> Result<Signed<'_>, ValidationError> {
    // The first value of each, and whether there was another.
    let mut found: [(Option<&HeaderValue>, bool); 3] = [(None, false); 3];
    for (name, value) in headers {
        let slot = if name == http::header::CONTENT_TYPE {
            &mut found[0]
        } else if name == SIGNATURE {
            &mut found[1]
        } else if name == SIGNATURE_SETTINGS {
            &mut found[2]
        } else {
            continue;
        };
        match slot.0 {
            None => slot.0 = Some(value),
            Some(_) => slot.1 = true,
        }
    }
    Ok(Signed {
        content_type: text(found[0], ValidationError::UnsignedBody)?,
        signature: text(found[1], ValidationError::MalformedSignature)?,
        settings: text(found[2], ValidationError::MalformedSignatureSettings)?,
    })
}

/// One header of [`signed`], as [`single`] reads it.
fn text(
    (value, repeated): (Option<&HeaderValue>, bool),
    not_text: ValidationError,
) -> Result<Option<&str>, ValidationError> {
    one_text(value, repeated, not_text, ValidationError::RepeatedHeader)
}

/// A header's first value (if any) as text, given whether another followed it: `not_text` or
/// `repeated` otherwise. The rule [`signed`] and [`at_most_once`] both apply.
fn one_text<E>(
    first: Option<&HeaderValue>,
    another: bool,
    not_text: E,
    repeated: E,
) -> Result<Option<&str>, E> {
    match (first, another) {
        (None, _) => Ok(None),
        (Some(_), true) => Err(repeated),
        (Some(value), false) => value.to_str().map(Some).map_err(|_| not_text),
    }
}

/// A Twilio header that appears at most once, as text: repeated is
/// [`ValidationError::RepeatedHeader`] (which copy was signed cannot be known), not text is
/// `not_text`.
#[cfg(test)]
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
    let first = values.next();
    one_text(first, values.next().is_some(), not_text, repeated)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each of the three headers absent, once as text, once not as text, or twice, with other
    /// headers between them: one pass reads them as a lookup of each does, and refuses them
    /// in the same order.
    #[test]
    fn one_pass_reads_the_headers_as_three_lookups_do() {
        let names = [
            http::header::CONTENT_TYPE,
            SIGNATURE.clone(),
            SIGNATURE_SETTINGS.clone(),
        ];
        let forms = [
            vec![],
            vec![HeaderValue::from_static("text")],
            vec![HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()],
            vec![HeaderValue::from_static("a"), HeaderValue::from_static("b")],
        ];
        let errors = [
            ValidationError::UnsignedBody,
            ValidationError::MalformedSignature,
            ValidationError::MalformedSignatureSettings,
        ];
        for case in 0..forms.len().pow(3) {
            let mut headers = HeaderMap::new();
            headers.insert("host", HeaderValue::from_static("example.com"));
            for (k, name) in names.iter().enumerate() {
                for value in &forms[case / forms.len().pow(k as u32) % forms.len()] {
                    headers.append(name.clone(), value.clone());
                    headers.append("x-other", HeaderValue::from_static("1"));
                }
            }
            let reference = (|| {
                Ok::<_, ValidationError>([
                    single(&headers, &names[0], errors[0].clone())?,
                    single(&headers, &names[1], errors[1].clone())?,
                    single(&headers, &names[2], errors[2].clone())?,
                ])
            })();
            let one_pass = signed(&headers)
                .map(|signed| [signed.content_type, signed.signature, signed.settings]);
            assert_eq!(one_pass, reference, "{headers:?}");
        }
    }
}
