//! The cost of validation against the floor: the bare HMAC-SHA1 of the same bytes.
//!
//! Run: `cargo bench --bench validate`. For each of a tiny (3 params), an SMS (20 params) and
//! a large (100 params) webhook it measures, in one run, interleaved:
//!
//! 1. the floor: HMAC-SHA1 over the exact signed bytes with a prepared key (a clone of a keyed
//!    `Hmac`), i.e. what any validator must at least do;
//! 2. `validate_body` from the raw form body, valid signature;
//! 3. `validate_body` with a wrong signature (every URL candidate tried);
//!
//! and prints the medians and the ratios 2/1 and 3/1.

#[path = "../tests/support/mod.rs"]
mod fixtures;
mod support;

use std::hint::black_box;

use fixtures::{form_body, large_params, sms_params, tiny_params};
use support::{Bench, hmac_floor, medians, rounds};
use twilio_webhook::{Validator, compute_signature, signed_string};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const URL: &str = "https://api.example.com/twilio/sms/inbound";
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

fn main() {
    let rounds = rounds();
    println!(
        "{:<7} {:>7} {:>11} {:>11} {:>11} {:>8} {:>8} {:>8}",
        "webhook", "body B", "floor ns", "valid ns", "reject ns", "valid/f", "rej/f", "2tok rej/f"
    );
    for (name, params) in [
        ("tiny", tiny_params()),
        ("sms", sms_params()),
        ("large", large_params()),
    ] {
        let body = form_body(&params);
        let signed = signed_string(URL, &params);
        let good = compute_signature(TOKEN, URL, &params);
        let bad = compute_signature("not-the-token", URL, &params);
        let validator = Validator::new(TOKEN);
        let rotating = Validator::new(TOKEN).add_auth_token("0e1d2c3b4a5968778695a4b3c2d1e0f9");
        let mut benches = [
            hmac_floor(TOKEN, signed.as_bytes()),
            Bench::new("valid", validating(&validator, &body, &good, true)),
            Bench::new("reject", validating(&validator, &body, &bad, false)),
            Bench::new(
                "reject, 2 tokens",
                validating(&rotating, &body, &bad, false),
            ),
        ];
        let m = medians(&mut benches, rounds);
        println!(
            "{:<7} {:>7} {:>11.0} {:>11.0} {:>11.0} {:>8.2} {:>8.2} {:>8.2}",
            name,
            body.len(),
            m[0],
            m[1],
            m[2],
            m[1] / m[0],
            m[2] / m[0],
            m[3] / m[0],
        );
    }
}

/// `validate_body` of the raw form body, asserting the verdict.
fn validating<'a>(
    validator: &'a Validator,
    body: &'a str,
    signature: &'a str,
    valid: bool,
) -> impl FnMut() + 'a {
    move || {
        let verdict = validator.validate_body(
            black_box(URL),
            FORM,
            black_box(body.as_bytes()),
            black_box(signature),
        );
        assert_eq!(verdict.is_ok(), valid);
    }
}
