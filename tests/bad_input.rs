//! Every kind of bad input gets a defined `ValidationError`, never a panic and never a pass.

use twilio_webhook::{
    InvalidUrl, MalformedBody, ValidationError, Validator, Webhook, compute_signature,
};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const URL: &str = "https://hooks.example.com/sms";
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

fn signature_for(url: &str, params: &[(&str, &str)]) -> String {
    compute_signature(TOKEN, url, params)
}

#[test]
fn missing_or_empty_signature_is_missing() {
    let v = Validator::new(TOKEN);
    assert_eq!(
        v.validate_body(URL, FORM, b"a=1", ""),
        Err(ValidationError::MissingSignature)
    );
    assert_eq!(
        v.verify(&Webhook::new(URL)),
        Err(ValidationError::MissingSignature)
    );
}

#[test]
fn garbled_headers_are_malformed_not_mismatched() {
    let v = Validator::new(TOKEN);
    let good = signature_for(URL, &[("a", "1")]);
    let base64url = good.replace('+', "-").replace('/', "_");
    let unpadded = good.trim_end_matches('=').to_string();
    let hex: String = "ab".repeat(20);
    let huge = "A".repeat(10 * 1024);
    let spaced = format!(" {good}");
    let trailing = format!("{good} ");
    let not_base64 = "!!!!!!!!!!!!!!!!!!!!!!!!!!!=".to_string();
    // 28 characters that decode to 21 bytes are not a SHA-1 tag either.
    let wrong_len = "AAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string();
    // Non-canonical trailing bits: the same 20 bytes, another spelling.
    // The 27th character carries 4 bits of the tag and 2 bits that must be zero; setting the
    // lowest one keeps the same 20 bytes under another spelling.
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut non_canonical = good.clone();
    let last = non_canonical.remove(26);
    let index = ALPHABET.find(last).unwrap() ^ 1;
    non_canonical.insert(26, ALPHABET.as_bytes()[index] as char);
    for bad in [
        &hex,
        &huge,
        &spaced,
        &trailing,
        &not_base64,
        &wrong_len,
        &unpadded,
        "x",
    ] {
        assert_eq!(
            v.validate_body(URL, FORM, b"a=1", bad),
            Err(ValidationError::MalformedSignature),
            "{bad:.40}"
        );
    }
    // base64url of this tag may or may not contain '-' or '_'; if it does, it is malformed.
    if base64url != good {
        assert_eq!(
            v.validate_body(URL, FORM, b"a=1", &base64url),
            Err(ValidationError::MalformedSignature)
        );
    }
    assert_eq!(
        v.validate_body(URL, FORM, b"a=1", &non_canonical),
        Err(ValidationError::MalformedSignature)
    );
    assert!(v.validate_body(URL, FORM, b"a=1", &good).is_ok());
}

#[test]
fn wrong_token_is_a_mismatch() {
    let sig = signature_for(URL, &[("a", "1")]);
    assert_eq!(
        Validator::new("another-token").validate(URL, &[("a", "1")], &sig),
        Err(ValidationError::SignatureMismatch)
    );
    assert_eq!(
        Validator::new(TOKEN.to_uppercase()).validate(URL, &[("a", "1")], &sig),
        Err(ValidationError::SignatureMismatch)
    );
}

#[test]
fn an_empty_token_fails_closed() {
    let v = Validator::new("");
    assert!(!v.has_usable_key());
    let sig = compute_signature("", URL, &[("a", "1")]);
    assert_eq!(
        v.validate(URL, &[("a", "1")], &sig),
        Err(ValidationError::NoUsableKey)
    );
    assert_eq!(
        v.validate_body(URL, FORM, b"a=1", &sig),
        Err(ValidationError::NoUsableKey)
    );
    assert!(
        ValidationError::NoUsableKey
            .to_string()
            .contains("API key secret cannot")
    );
}

#[test]
fn debug_of_a_validator_never_shows_the_token() {
    let v = Validator::new(TOKEN)
        .add_auth_token("secondary-secret-token")
        .add_shared_key("key-id", "whsk_shared_secret");
    let shown = format!("{v:?} {v:#?}");
    for secret in [TOKEN, "secondary-secret-token", "whsk_shared_secret"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("key-id"));
}

#[test]
fn invalid_percent_escapes_in_the_body_are_refused() {
    let v = Validator::new(TOKEN);
    let sig = signature_for(URL, &[("a", "1")]);
    for body in ["a=%", "a=%2", "a=%G1", "a=1&b=%zz", "%=1", "a=50%25%"] {
        assert_eq!(
            v.validate_body(URL, FORM, body.as_bytes(), &sig),
            Err(ValidationError::MalformedBody(
                MalformedBody::InvalidPercentEncoding
            )),
            "{body}"
        );
    }
}

#[test]
fn invalid_utf8_is_refused_raw_or_decoded() {
    let v = Validator::new(TOKEN);
    let sig = signature_for(URL, &[("a", "1")]);
    for body in [
        &b"a=%FF"[..],
        b"a=%C0%80",
        b"a=\xC3",
        b"\xFF=1",
        b"a=%ED%A0%80",
    ] {
        assert_eq!(
            v.validate_body(URL, FORM, body, &sig),
            Err(ValidationError::MalformedBody(MalformedBody::InvalidUtf8)),
            "{body:?}"
        );
    }
}

#[test]
fn a_non_form_body_without_body_sha256_is_unsigned() {
    let v = Validator::new(TOKEN);
    let sig = signature_for(URL, &[]);
    for content_type in [
        Some("application/json"),
        Some("text/plain"),
        Some("application/x-www-form-urlencodedx"),
        Some("application/x-www-form-urlencode"),
        Some("application/x-www-form-urlencoded,text/plain"),
        Some("application/x-www-form-urlencoded-x; charset=utf-8"),
        Some("multipart/form-data; x=application/x-www-form-urlencoded"),
        None,
    ] {
        assert_eq!(
            v.validate_body(URL, content_type, br#"{"a":1}"#, &sig),
            Err(ValidationError::UnsignedBody),
            "{content_type:?}"
        );
    }
    // The same signature over the URL alone is fine when there is no body (GET).
    assert!(v.validate_body(URL, None, b"", &sig).is_ok());
}

#[test]
fn form_content_type_is_recognised_with_parameters_and_any_case() {
    let v = Validator::new(TOKEN);
    let sig = signature_for(URL, &[("a", "1")]);
    for content_type in [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        "Application/X-WWW-Form-Urlencoded;charset=utf-8",
        "application/x-www-form-urlencoded;",
        "  application/x-www-form-urlencoded ; charset=utf-8",
        "application/x-www-form-urlencoded\t",
        "application/x-www-form-urlencoded\u{a0}",
    ] {
        assert!(
            v.validate_body(URL, Some(content_type), b"a=1", &sig)
                .is_ok(),
            "{content_type}"
        );
    }
}

#[test]
fn absurd_urls_are_refused_before_any_mac() {
    let v = Validator::new(TOKEN);
    let sig = signature_for(URL, &[("a", "1")]);
    for (url, reason) in [
        ("", InvalidUrl::MissingScheme),
        ("?", InvalidUrl::MissingScheme),
        ("/sms", InvalidUrl::MissingScheme),
        ("hooks.example.com/sms", InvalidUrl::MissingScheme),
        ("https://", InvalidUrl::EmptyHost),
        ("https:///sms", InvalidUrl::EmptyHost),
        ("https://?a=1", InvalidUrl::EmptyHost),
        ("https://host:port/sms", InvalidUrl::MalformedAuthority),
        ("https://[::1/sms", InvalidUrl::MalformedAuthority),
    ] {
        assert_eq!(
            v.validate(url, &[("a", "1")], &sig),
            Err(ValidationError::InvalidUrl(reason)),
            "{url:?}"
        );
        assert_eq!(
            v.validate_body(url, FORM, b"a=1", &sig),
            Err(ValidationError::InvalidUrl(reason)),
            "{url:?}"
        );
    }
}

#[test]
fn odd_but_legal_urls_are_signed_byte_for_byte() {
    let v = Validator::new(TOKEN);
    for url in [
        "https://hooks.example.com/sms?",
        "https://hooks.example.com/sms/",
        "https://Hooks.Example.com/a/../sms",
        "https://hooks.example.com/caf%C3%A9?x='y'&z=%7e",
        "https://[2001:db8::1]:8443/sms",
        "https://u:p:w@hooks.example.com/sms",
        "https://hooks.example.com",
        "wss://hooks.example.com/media",
    ] {
        let sig = signature_for(url, &[("a", "1")]);
        assert!(v.validate(url, &[("a", "1")], &sig).is_ok(), "{url}");
        // One byte less is another URL.
        let shorter = &url[..url.len() - 1];
        assert!(
            v.validate(shorter, &[("a", "1")], &sig).is_err(),
            "{shorter}"
        );
    }
}

#[test]
fn trailing_slash_and_host_case_are_different_urls() {
    let v = Validator::new(TOKEN);
    let sig = signature_for("https://hooks.example.com/sms", &[("a", "1")]);
    for other in [
        "https://hooks.example.com/sms/",
        "https://Hooks.example.com/sms",
        "http://hooks.example.com/sms",
        "https://hooks.example.com/sms?",
    ] {
        assert_eq!(
            v.validate(other, &[("a", "1")], &sig),
            Err(ValidationError::SignatureMismatch),
            "{other}"
        );
    }
}

#[test]
fn a_body_sha256_url_checks_the_body_even_with_a_form_content_type() {
    let body = br#"{"a":1}"#;
    let url = "https://hooks.example.com/e?bodySHA256=015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862";
    let sig = signature_for(url, &[]);
    let v = Validator::new(TOKEN);
    assert!(
        v.validate_body(url, Some("application/json"), body, &sig)
            .is_ok()
    );
    assert_eq!(
        v.validate_body(url, FORM, b"a=2", &sig),
        Err(ValidationError::BodyHashMismatch)
    );
    assert_eq!(
        v.validate_body(url, Some("application/json"), b"", &sig),
        Err(ValidationError::BodyHashMismatch)
    );
}

#[test]
fn signature_settings_header_edge_cases() {
    let v = Validator::new(TOKEN).add_shared_key("k1", "shared-secret");
    let sig = signature_for(URL, &[("a", "1")]);
    let with = |settings: &'static str| {
        Webhook::new(URL)
            .content_type(FORM)
            .body(b"a=1")
            .signature(Some(sig.as_str()))
            .signature_settings(Some(settings))
    };
    // No algorithm, or SHA-1 named: the auth token path.
    assert!(v.verify(&with("key=k1")).is_ok());
    assert!(v.verify(&with("algorithm=HMAC_SHA1")).is_ok());
    assert_eq!(
        v.verify(&with("key=k1,algorithm=HMAC_SHA512")),
        Err(ValidationError::UnknownAlgorithm)
    );
    assert_eq!(
        v.verify(&with("key=k2,algorithm=HMAC_SHA256")),
        Err(ValidationError::UnknownSharedKey)
    );
    assert_eq!(
        v.verify(&with("algorithm=HMAC_SHA256")),
        Err(ValidationError::MalformedSignatureSettings)
    );
    assert_eq!(
        v.verify(&with("garbage")),
        Err(ValidationError::MalformedSignatureSettings)
    );
    // A 28-character SHA-1 tag under HMAC_SHA256 is malformed.
    assert_eq!(
        v.verify(&with("key=k1,algorithm=HMAC_SHA256")),
        Err(ValidationError::MalformedSignature)
    );
}

#[test]
fn validate_refuses_a_body_sha256_url_it_cannot_check_the_body_of() {
    // A JSON webhook's signature covers the URL alone: without the body, any body would pass.
    let url = "https://hooks.example.com/events?bodySHA256=0123abcd";
    let signature = signature_for(url, &[]);
    let no_params: [(&str, &str); 0] = [];
    assert_eq!(
        Validator::new(TOKEN).validate(url, &no_params, &signature),
        Err(ValidationError::BodySha256NeedsRawBody)
    );
    // Even when the caller passes parameters, and whatever the signature.
    assert_eq!(
        Validator::new(TOKEN).validate(url, &[("a", "1")], "garbage"),
        Err(ValidationError::MalformedSignature)
    );
    assert_eq!(
        Validator::new(TOKEN).validate(url, &[("a", "1")], &signature),
        Err(ValidationError::BodySha256NeedsRawBody)
    );
    // A bodySHA256 inside the fragment is not in the query: the URL is an ordinary one.
    let url = "https://hooks.example.com/events#x?bodySHA256=0123abcd";
    let signature = signature_for(url, &[]);
    assert_eq!(
        Validator::new(TOKEN).validate(url, &no_params, &signature),
        Ok(())
    );
}

#[test]
fn more_parameters_than_the_limit_are_refused_before_any_mac() {
    let v = Validator::new(TOKEN).max_params(3);
    let params = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")];
    let signature = signature_for(URL, &params);
    let too_many = Err(ValidationError::MalformedBody(
        MalformedBody::TooManyParameters { limit: 3 },
    ));
    assert_eq!(v.validate(URL, &params, &signature), too_many);
    assert_eq!(
        v.validate_body(URL, FORM, b"a=1&b=2&c=3&d=4", &signature),
        too_many
    );
    assert_eq!(
        v.validate(URL, &params[..3], &signature_for(URL, &params[..3])),
        Ok(())
    );
    // The default bounds a flood of tiny pairs: a 1 MiB body of `a&` is refused.
    let flood = "a&".repeat(512 * 1024);
    assert_eq!(
        Validator::new(TOKEN).validate_body(URL, FORM, flood.as_bytes(), &signature),
        Err(ValidationError::MalformedBody(
            MalformedBody::TooManyParameters {
                limit: twilio_webhook::DEFAULT_MAX_PARAMS
            },
        ))
    );
}

#[test]
fn every_error_says_something_and_no_error_text_holds_a_secret() {
    let errors = [
        ValidationError::MissingSignature,
        ValidationError::MalformedSignature,
        ValidationError::SignatureMismatch,
        ValidationError::BodyHashMismatch,
        ValidationError::UnsignedBody,
        ValidationError::MalformedBody(MalformedBody::InvalidPercentEncoding),
        ValidationError::MalformedBody(MalformedBody::InvalidUtf8),
        ValidationError::MalformedBody(MalformedBody::TooManyParameters { limit: 10 }),
        ValidationError::BodySha256NeedsRawBody,
        ValidationError::AmbiguousAccount,
        ValidationError::RepeatedHeader,
        ValidationError::InvalidUrl(InvalidUrl::MissingScheme),
        ValidationError::InvalidUrl(InvalidUrl::EmptyHost),
        ValidationError::InvalidUrl(InvalidUrl::MalformedAuthority),
        ValidationError::NoUsableKey,
        ValidationError::UnknownAccount,
        ValidationError::UnknownAlgorithm,
        ValidationError::UnknownSharedKey,
        ValidationError::MalformedSignatureSettings,
    ];
    let mut texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(texts.iter().all(|t| t.len() > 20));
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), errors.len(), "every kind reads differently");
}
