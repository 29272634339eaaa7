//! What HTTP authentication costs per request, beside the signature floor.
//!
//! Run: `cargo bench --bench http_auth`. In one interleaved run: the bare HMAC-SHA1 of the
//! inbound-SMS webhook (the floor), a Basic check that passes, a Digest check that passes
//! (SHA-256 and MD5: three hashes each, and the nonce's HMAC), and the 401 path (a request
//! without credentials: the challenges, with a fresh nonce).

#[path = "../tests/support/mod.rs"]
mod fixtures;
mod support;

use std::hint::black_box;

use support::{Bench, hmac_floor, medians, rounds};
use twilio_webhook::http_auth::{
    Algorithm, Credentials, HttpAuth, basic_authorization, digest_authorization,
};

fn main() {
    let params = fixtures::sms_params();
    let url = "https://hooks.example.com/twilio/sms";
    let signed = twilio_webhook::signed_string(url, &params);
    let twilio = Credentials::new("twilio", "a long random password").unwrap();
    let basic = HttpAuth::basic([twilio.clone()]).unwrap();
    let basic_header = basic_authorization(&twilio);
    let digest = |algorithm| {
        let auth = HttpAuth::digest([twilio.clone()])
            .unwrap()
            .algorithms([algorithm])
            .unwrap();
        let challenge = auth.check(None, "POST", "/twilio/sms").unwrap_err();
        let header = digest_authorization(
            &challenge.challenges()[0],
            &twilio,
            "POST",
            "/twilio/sms",
            "f2/wE4q74E6zIJEtWaHKaf5wv",
        )
        .unwrap();
        (auth, header)
    };
    let (sha256, sha256_header) = digest(Algorithm::Sha256);
    let (md5, md5_header) = digest(Algorithm::Md5);

    let mut benches = [
        hmac_floor("7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60", signed.as_bytes()),
        Bench::new("Basic, passes", || {
            assert!(
                basic
                    .check(black_box(Some(&basic_header)), "POST", "/twilio/sms")
                    .is_ok()
            );
        }),
        Bench::new("Digest SHA-256, passes", || {
            assert!(
                sha256
                    .check(black_box(Some(&sha256_header)), "POST", "/twilio/sms")
                    .is_ok()
            );
        }),
        Bench::new("Digest MD5, passes", || {
            assert!(
                md5.check(black_box(Some(&md5_header)), "POST", "/twilio/sms")
                    .is_ok()
            );
        }),
        Bench::new("401: Basic challenge", || {
            assert!(basic.check(black_box(None), "POST", "/twilio/sms").is_err());
        }),
        Bench::new("401: Digest challenge", || {
            assert!(
                sha256
                    .check(black_box(None), "POST", "/twilio/sms")
                    .is_err()
            );
        }),
    ];
    let m = medians(&mut benches, rounds());
    println!("HTTP authentication, medians of one interleaved run:");
    for (bench, median) in benches.iter().zip(&m) {
        println!(
            "  {:<26} {:>8.0} ns  ({:.2}x the floor)",
            bench.name,
            median,
            median / m[0]
        );
    }
}
