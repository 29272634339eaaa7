//! The cost of validation against the floor, on webhooks as Twilio sends them.
//!
//! Run: `cargo bench --bench validate`. For each webhook, in one run, interleaved (so a burst
//! of load on a shared machine hits every row alike), the median of 41 rounds (and, after the
//! `|`, the fastest round: the figure load moves least) of:
//!
//! 1. the floor: HMAC-SHA1 over the exact signed bytes with a prepared key (a clone of a keyed
//!    `Hmac`), what any validator must at least do;
//! 2. the straightforward implementation: decode into owned `String`s, sort, concatenate, key
//!    the HMAC per call, compare (what most validators do);
//! 3. `validate_body` from the raw form body, valid signature;
//! 4. `validate_body` with a wrong signature (both URL candidates tried: as received, `:443`).
//!
//! The webhooks: a status callback (3 params), an inbound SMS with an emoji and `%2B` numbers
//! (20 params, ~560 B), an MMS with 34 media (`MediaUrl0..33`, `MediaContentType0..33`: long
//! shared name prefixes, escaped URLs; ~100 params, ~8.5 KiB), and a rotation of 300 different
//! SMS webhooks (values and parameter order vary), because one body on every call trains the
//! branch predictor and flatters the result.

#[path = "../tests/support/mod.rs"]
mod fixtures;
mod support;

use std::hint::black_box;

use base64::Engine as _;
use fixtures::{form_body, inbound_sms, inbound_sms_variant, media_webhook, tiny_params};
use hmac::{Hmac, KeyInit, Mac};
use support::{Bench, hmac_floor_rotating, rounds, summaries};
use twilio_webhook::{Validator, compute_signature, signed_string};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const URL: &str = "https://api.example.com/twilio/sms/inbound";
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

/// One webhook of a row: its body, its signed text, a good and a bad signature.
struct Case {
    body: String,
    signed: String,
    good: String,
    bad: String,
}

fn case(params: &[(String, String)]) -> Case {
    Case {
        body: form_body(params),
        signed: signed_string(URL, params),
        good: compute_signature(TOKEN, URL, params),
        bad: compute_signature("not-the-token", URL, params),
    }
}

fn main() {
    let rounds = rounds();
    println!(
        "{:<14} {:>7} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12} {:>12}",
        "webhook",
        "body B",
        "floor ns",
        "naive ns",
        "valid ns",
        "reject ns",
        "valid/f",
        "rej/f",
        "naive/f"
    );
    println!(
        "{:<14} {:>7} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12} {:>12}",
        "", "", "median", "median", "median", "median", "median|min", "median|min", "median|min"
    );
    let rotation: Vec<Case> = (1..=300).map(|n| case(&inbound_sms_variant(n))).collect();
    for (name, cases) in [
        ("status (3)", vec![case(&tiny_params())]),
        ("sms (20)", vec![case(&inbound_sms())]),
        ("media (~100)", vec![case(&media_webhook())]),
        ("sms rotation", rotation),
    ] {
        // BENCH_ONLY=media: one row, for a profiler.
        if std::env::var("BENCH_ONLY").is_ok_and(|only| !name.starts_with(only.as_str())) {
            continue;
        }
        let validator = Validator::new(TOKEN);
        let signed: Vec<&[u8]> = cases.iter().map(|c| c.signed.as_bytes()).collect();
        let mut benches = [
            hmac_floor_rotating(TOKEN, &signed),
            Bench::new(
                "naive",
                cycling(&cases, |c| {
                    assert!(straightforward(TOKEN, URL, c.body.as_bytes(), &c.good));
                }),
            ),
            Bench::new(
                "valid",
                cycling(&cases, |c| {
                    let verdict = validator.validate_body(
                        black_box(URL),
                        FORM,
                        black_box(c.body.as_bytes()),
                        black_box(&c.good),
                    );
                    assert!(verdict.is_ok());
                }),
            ),
            Bench::new(
                "reject",
                cycling(&cases, |c| {
                    let verdict = validator.validate_body(
                        black_box(URL),
                        FORM,
                        black_box(c.body.as_bytes()),
                        black_box(&c.bad),
                    );
                    assert!(verdict.is_err());
                }),
            ),
        ];
        let s = summaries(&mut benches, rounds);
        let body = cases.iter().map(|c| c.body.len()).sum::<usize>() / cases.len();
        let ratio = |i: usize| {
            format!(
                "{:.2}|{:.2}",
                s[i].median / s[0].median,
                s[i].min / s[0].min
            )
        };
        println!(
            "{:<14} {:>7} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>12} {:>12} {:>12}",
            name,
            body,
            s[0].median,
            s[1].median,
            s[2].median,
            s[3].median,
            ratio(2),
            ratio(3),
            ratio(1),
        );
    }
}

/// Runs `f` on each case in turn, one per call.
fn cycling<'a>(cases: &'a [Case], f: impl Fn(&Case) + 'a) -> impl FnMut() + 'a {
    let mut i = 0;
    move || {
        f(&cases[i]);
        i = if i + 1 == cases.len() { 0 } else { i + 1 };
    }
}

/// What most validators do: owned strings, a sort, a concatenation, the key per call.
fn straightforward(token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    params.sort();
    params.dedup();
    let mut text = url.to_owned();
    for (name, value) in &params {
        text.push_str(name);
        text.push_str(value);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    use subtle::ConstantTimeEq;
    bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
}
