//! What the layer adds to a request, in process.
//!
//! Run: `cargo bench --bench layer`. An axum router whose handler extracts
//! `Form<Vec<(String, String)>>` and returns TwiML is called with the inbound-SMS webhook,
//! without and with `TwilioWebhookLayer`, interleaved in one run; it prints both medians, the
//! overhead in ns, and the overhead against the bare HMAC-SHA1 of the same signed bytes.

mod support;

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::extract::Form;
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use http::Request;
use sha1::Sha1;
use support::{Bench, form_body, medians, rounds, sms_params};
use tower::ServiceExt;
use twilio_webhook::middleware::TwilioWebhookLayer;
use twilio_webhook::{Validator, compute_signature, signed_string};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";

async fn sms(
    Form(params): Form<Vec<(String, String)>>,
) -> ([(&'static str, &'static str); 1], String) {
    let body = params
        .iter()
        .find(|(name, _)| name == "Body")
        .map_or("", |(_, value)| value.as_str());
    (
        [("content-type", "text/xml")],
        format!("<Response><Message>{}</Message></Response>", body.len()),
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let params = sms_params();
    let body = bytes::Bytes::from(form_body(&params));
    let url = "https://hooks.example.com/twilio/sms";
    let signature = compute_signature(TOKEN, url, &params);

    let bare = Router::new().route("/twilio/sms", post(sms));
    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url("https://hooks.example.com")
        .unwrap();
    let guarded = Router::new().route("/twilio/sms", post(sms)).layer(layer);

    let request = || {
        Request::post("/twilio/sms")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", body.len())
            .header("x-twilio-signature", signature.as_str())
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let signed = signed_string(url, &params);
    let prepared = Hmac::<Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();

    let mut benches = [
        Bench::new("floor", || {
            let mut mac = prepared.clone();
            mac.update(black_box(signed.as_bytes()));
            black_box(mac.finalize());
        }),
        Bench::new("without layer", || {
            let response = runtime.block_on(bare.clone().oneshot(request())).unwrap();
            assert_eq!(response.status(), 200);
        }),
        Bench::new("with layer", || {
            let response = runtime
                .block_on(guarded.clone().oneshot(request()))
                .unwrap();
            assert_eq!(response.status(), 200);
        }),
    ];
    let m = medians(&mut benches, rounds());
    let overhead = m[2] - m[1];
    println!(
        "inbound SMS webhook ({} B body), axum router in process, medians:",
        body.len()
    );
    println!("  bare HMAC-SHA1 floor       {:>8.0} ns", m[0]);
    println!("  router without the layer   {:>8.0} ns", m[1]);
    println!("  router with the layer      {:>8.0} ns", m[2]);
    println!(
        "  overhead of the layer      {:>8.0} ns  ({:.2}x the floor; with/without = {:.3})",
        overhead,
        overhead / m[0],
        m[2] / m[1]
    );
}
