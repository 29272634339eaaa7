//! The `Authorization` parser on arbitrary input: never panics, never passes without the
//! right credentials, and always answers a refusal with at least one challenge.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use twilio_webhook::http_auth::{Credentials, HttpAuth};

static BASIC: LazyLock<HttpAuth> =
    LazyLock::new(|| HttpAuth::basic([Credentials::new("twilio", "right").unwrap()]).unwrap());
static DIGEST: LazyLock<HttpAuth> = LazyLock::new(|| {
    HttpAuth::digest([Credentials::new("twilio", "right").unwrap()])
        .unwrap()
        .nonce_secret([7u8; 32])
        .unwrap()
});

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    for auth in [&*BASIC, &*DIGEST] {
        match auth.check(Some(header), "POST", "/sms") {
            // Only the one right Basic header can pass; a fuzzer cannot forge a Digest answer.
            Ok(who) => {
                assert_eq!(auth.scheme(), "Basic", "{header:?}");
                assert_eq!(
                    header.split_once(' ').map(|(_, t)| t.trim()),
                    Some("dHdpbGlvOnJpZ2h0")
                );
                assert_eq!(who.user(), "twilio");
            }
            Err(refused) => assert!(!refused.challenges().is_empty()),
        }
    }
});
