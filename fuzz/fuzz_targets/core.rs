//! The core on arbitrary input: never panics; whatever `compute_signature` signs verifies.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twilio_webhook::{Validator, Webhook, compute_signature, signed_string};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    token: &'a str,
    url: &'a str,
    content_type: Option<&'a str>,
    body: &'a [u8],
    signature: Option<&'a str>,
    settings: Option<&'a str>,
    params: Vec<(&'a str, &'a str)>,
}

fuzz_target!(|input: Input<'_>| {
    let validator = Validator::new(input.token).add_shared_key("KS1", input.token);
    // Arbitrary requests: any verdict, never a panic.
    let _ = validator.verify(
        &Webhook::new(input.url)
            .content_type(input.content_type)
            .body(input.body)
            .signature(input.signature)
            .signature_settings(input.settings),
    );
    let _ = validator.validate(input.url, &input.params, input.signature.unwrap_or(""));
    let _ = signed_string(input.url, &input.params);

    // What compute_signature signs, validate accepts: for any token, URL and parameters the
    // validator can parse.
    let signature = compute_signature(input.token, input.url, &input.params);
    let verdict = validator.validate(input.url, &input.params, &signature);
    if !input.token.is_empty()
        && twilio_webhook_fuzz::candidates(input.url).is_some()
        && twilio_webhook_fuzz::body_sha256_values(input.url).is_empty()
        && input.params.len() <= twilio_webhook::DEFAULT_MAX_PARAMS
    {
        assert_eq!(verdict, Ok(()), "{input:?}");
    }
});
