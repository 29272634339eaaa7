//! Every published and conformance vector (tests/data/), through every entry point.
//!
//! A failure names the case, so the vector can be found in tests/data/.

mod support;

use support::{conformance, form_body, published};
use twilio_webhook::{KeyUsed, UrlVariant, ValidationError, Validator, Webhook, signed_string};

#[test]
fn every_published_sdk_vector_through_validate_and_validate_body() {
    let vectors = published();
    assert_eq!(vectors.len(), 46);
    for (i, v) in vectors.iter().enumerate() {
        let case = format!("sdk-published #{i} ({}) {}", v.source, v.url);
        let validator = Validator::new(&v.token);
        match &v.body {
            Some(json) => {
                let verdict = validator.validate_body(
                    &v.url,
                    Some("application/json"),
                    json.as_bytes(),
                    &v.signature,
                );
                assert_eq!(verdict.is_ok(), v.expected_valid, "{case}: {verdict:?}");
            }
            None => {
                let params = v.params.clone().unwrap_or_default();
                let verdict = validator.validate(&v.url, &params, &v.signature);
                assert_eq!(
                    verdict.is_ok(),
                    v.expected_valid,
                    "{case}: validate {verdict:?}"
                );

                let body = form_body(&params);
                let verdict = validator.validate_body(
                    &v.url,
                    Some("application/x-www-form-urlencoded"),
                    body.as_bytes(),
                    &v.signature,
                );
                assert_eq!(
                    verdict.is_ok(),
                    v.expected_valid,
                    "{case}: validate_body {verdict:?}"
                );

                // Where the signature covered the URL as received, our string-to-sign is theirs.
                if v.expected_valid && v.signed_string.starts_with(&v.url) {
                    assert_eq!(signed_string(&v.url, &params), v.signed_string, "{case}");
                }
            }
        }
    }
}

#[test]
fn every_conformance_case_through_validate_body_and_verify() {
    let cases = conformance();
    assert_eq!(cases.len(), 61);
    for c in &cases {
        let sharedkey = c.tagged("sharedkey");
        let body = c.body();
        let webhook = Webhook::new(&c.url)
            .content_type(c.content_type.as_deref())
            .body(body)
            .signature(c.header_signature.as_deref())
            .signature_settings(c.signature_settings_header.as_deref());
        let validator = if sharedkey {
            let id = c.shared_key_id().unwrap();
            Validator::new("not-the-shared-key").add_shared_key(id, &c.auth_token)
        } else {
            Validator::new(&c.auth_token)
        };
        let verdict = validator.verify(&webhook);
        assert_eq!(
            verdict.is_ok(),
            c.expected_valid,
            "{}: verify {verdict:?}",
            c.name
        );
        if let Ok(verified) = &verdict {
            match &verified.key {
                KeyUsed::SharedKey { .. } => assert!(sharedkey, "{}", c.name),
                KeyUsed::AuthToken { index } => assert_eq!(*index, 0, "{}", c.name),
                other => panic!("{}: {other:?}", c.name),
            }
        }

        if !sharedkey {
            let verdict = validator.validate_body(
                &c.url,
                c.content_type.as_deref(),
                body,
                c.header_signature.as_deref().unwrap_or(""),
            );
            assert_eq!(
                verdict.is_ok(),
                c.expected_valid,
                "{}: validate_body {verdict:?}",
                c.name
            );
        } else {
            // Without the settings header, a 44-character HMAC-SHA256 is not an
            // X-Twilio-Signature at all.
            let sha1_only = Validator::new(&c.auth_token);
            let verdict = sha1_only.validate_body(
                &c.url,
                c.content_type.as_deref(),
                body,
                c.header_signature.as_deref().unwrap(),
            );
            assert_eq!(
                verdict,
                Err(ValidationError::MalformedSignature),
                "{}",
                c.name
            );
        }
    }
}

#[test]
fn every_conformance_form_case_through_validate() {
    for c in conformance() {
        // JSON bodies cannot be handed over as parameters; shared keys need the settings
        // header, which `validate` does not take. Both are covered above.
        if c.raw_body.is_some() || c.tagged("sharedkey") {
            continue;
        }
        let params = c.params.clone().unwrap_or_default();
        let verdict = Validator::new(&c.auth_token).validate(
            &c.url,
            &params,
            c.header_signature.as_deref().unwrap_or(""),
        );
        assert_eq!(
            verdict.is_ok(),
            c.expected_valid,
            "{}: validate {verdict:?}",
            c.name
        );

        // Our string-to-sign matches the case's wherever the case signed the URL as received.
        let as_received = Validator::new(&c.auth_token)
            .verify(
                &Webhook::new(&c.url)
                    .content_type(c.content_type.as_deref())
                    .body(c.body())
                    .signature(c.header_signature.as_deref())
                    .signature_settings(None),
            )
            .is_ok_and(|verified| verified.url_variant == UrlVariant::AsReceived);
        if as_received && let Some(expected) = c.signed_string.as_deref() {
            assert_eq!(signed_string(&c.url, &params), expected, "{}", c.name);
        }
    }
}

#[test]
fn negative_conformance_cases_fail_for_the_stated_reason() {
    let reasons = [
        ("missing_signature", ValidationError::MissingSignature),
        ("truncated_signature", ValidationError::MalformedSignature),
        ("signature_base64url", ValidationError::MalformedSignature),
        ("sha256_in_sha1_header", ValidationError::MalformedSignature),
        ("garbled_signature", ValidationError::SignatureMismatch),
        ("wrong_token", ValidationError::SignatureMismatch),
        (
            "json_body_tampered_hash_rewritten",
            ValidationError::SignatureMismatch,
        ),
        (
            "json_body_hash_uppercase",
            ValidationError::BodyHashMismatch,
        ),
        // The `?` is inside the fragment: no bodySHA256, so the JSON body is signed by nothing.
        ("fragment_is_not_query", ValidationError::UnsignedBody),
        (
            "https_trailing_slash_not_a_candidate",
            ValidationError::SignatureMismatch,
        ),
    ];
    let cases = conformance();
    for (name, reason) in reasons {
        let c = cases.iter().find(|c| c.name == name).expect(name);
        let body = c.body();
        let verdict = Validator::new(&c.auth_token).validate_body(
            &c.url,
            c.content_type.as_deref(),
            body,
            c.header_signature.as_deref().unwrap_or(""),
        );
        assert_eq!(verdict, Err(reason), "{name}");
    }
}
