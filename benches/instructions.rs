//! Instructions per call, counted by valgrind's callgrind through gungraun: exact and
//! repeatable whatever the load, so a change of a few percent shows (wall-clock medians on a
//! shared machine move by 2x).
//!
//! Run: `cargo bench --bench instructions` (needs valgrind and `gungraun-runner` of the same
//! version as the `gungraun` dev-dependency: `cargo install gungraun-runner --version 0.20.0`).
//!
//! Each payload is measured on a warm call (one call in `setup` first):
//! - `floor`: HMAC-SHA1 over the exact signed bytes with a prepared key;
//! - `validate_body`: the validator on the raw form body, valid signature;
//! - `reject`: the same with a wrong signature (both URL candidates tried);
//! - the SMS through an axum router, `bare` (no layer) and `layer` (with `TwilioWebhookLayer`);
//! - the SMS around a service that answers at once, without a router or a runtime, `bare`
//!   and `layer`.
//!
//! valgrind runs SHA-1 in software (about ten times the instructions of SHA-NI), so the
//! figures to compare are differences taken in one run: `validate_body - floor` is the
//! validator's own work, `layer - bare - validate_body` the layer's (through the router, with
//! axum's own work at the layer's boundary; around the service, the layer's alone).
//! `.ci/instructions` checks them against `benches/instructions.baseline`.

#[path = "../tests/support/mod.rs"]
mod fixtures;

use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use bytes::Bytes;
use fixtures::{form_body, inbound_sms, media_webhook, tiny_params};
use gungraun::{library_benchmark, library_benchmark_group, main};
use hmac::{Hmac, KeyInit, Mac};
use http::Request;
use http_body_util::Full;
use tower::ServiceExt;
use twilio_webhook::middleware::TwilioWebhookLayer;
use twilio_webhook::{Validator, compute_signature, signed_string};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const URL: &str = "https://hooks.example.com/twilio/sms";
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

/// One webhook: its form body, its signed text and its signature.
struct Payload {
    body: String,
    signed: String,
    signature: String,
    /// A signature by another token: every URL candidate is tried and fails.
    forged: String,
}

fn payload(name: &str) -> Payload {
    let params = match name {
        "status" => tiny_params(),
        "sms" => inbound_sms(),
        "media" => media_webhook(),
        other => panic!("no payload {other}"),
    };
    Payload {
        body: form_body(&params),
        signed: signed_string(URL, &params),
        signature: compute_signature(TOKEN, URL, &params),
        forged: compute_signature("not-the-token", URL, &params),
    }
}

fn floor_setup(name: &str) -> (Hmac<sha1::Sha1>, Payload) {
    let prepared = Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    let payload = payload(name);
    let mut warm = prepared.clone();
    warm.update(payload.signed.as_bytes());
    black_box(warm.finalize());
    (prepared, payload)
}

#[library_benchmark]
#[bench::status(args = ("status"), setup = floor_setup)]
#[bench::sms(args = ("sms"), setup = floor_setup)]
#[bench::media(args = ("media"), setup = floor_setup)]
fn floor((prepared, payload): (Hmac<sha1::Sha1>, Payload)) {
    let mut mac = prepared.clone();
    mac.update(black_box(payload.signed.as_bytes()));
    black_box(mac.finalize());
    // Freeing the setup's strings is not the call's work.
    std::mem::forget((prepared, payload));
}

fn validate_setup(name: &str) -> (Validator, Payload) {
    let validator = Validator::new(TOKEN);
    let payload = payload(name);
    assert!(
        validator
            .validate_body(URL, FORM, payload.body.as_bytes(), &payload.signature)
            .is_ok()
    );
    (validator, payload)
}

#[library_benchmark]
#[bench::status(args = ("status"), setup = validate_setup)]
#[bench::sms(args = ("sms"), setup = validate_setup)]
#[bench::media(args = ("media"), setup = validate_setup)]
fn validate_body((validator, payload): (Validator, Payload)) {
    let verdict = validator.validate_body(
        black_box(URL),
        FORM,
        black_box(payload.body.as_bytes()),
        black_box(&payload.signature),
    );
    assert!(verdict.is_ok());
    std::mem::forget((validator, payload));
}

// A wrong signature: both URL candidates (as received, `:443`) are tried, so the work is
// two HMACs and the parsing, decoding and writing done once.
#[library_benchmark]
#[bench::status(args = ("status"), setup = validate_setup)]
#[bench::sms(args = ("sms"), setup = validate_setup)]
#[bench::media(args = ("media"), setup = validate_setup)]
fn reject((validator, payload): (Validator, Payload)) {
    let verdict = validator.validate_body(
        black_box(URL),
        FORM,
        black_box(payload.body.as_bytes()),
        black_box(&payload.forged),
    );
    assert!(verdict.is_err());
    std::mem::forget((validator, payload));
}

/// A router, a runtime to call it on, and the SMS request; one call made already.
struct Routed {
    runtime: tokio::runtime::Runtime,
    router: Router,
    request: Request<Body>,
}

fn request(payload: &Payload) -> Request<Body> {
    Request::post("/twilio/sms")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", payload.body.len())
        .header("x-twilio-signature", payload.signature.as_str())
        .body(Body::from(payload.body.clone()))
        .unwrap()
}

fn routed(with_layer: bool) -> Routed {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let payload = payload("sms");
    let mut router = Router::new().route("/twilio/sms", post(|| async { "<Response/>" }));
    if with_layer {
        let layer = TwilioWebhookLayer::new(Validator::new(TOKEN))
            .unwrap()
            .public_url("https://hooks.example.com")
            .unwrap();
        router = router.layer(layer);
    }
    // Finalised as `axum::serve` does once: without it axum rebuilds the route from its
    // handler (and applies the layer again) on every call, work no server does per request.
    let router = router.with_state(());
    let warm = runtime
        .block_on(router.clone().oneshot(request(&payload)))
        .unwrap();
    assert_eq!(warm.status(), 200);
    Routed {
        runtime,
        router,
        request: request(&payload),
    }
}

#[library_benchmark]
#[bench::bare(args = (false), setup = routed)]
#[bench::layer(args = (true), setup = routed)]
fn router(routed: Routed) {
    let Routed {
        runtime,
        router,
        request,
    } = routed;
    let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    // Tearing down the runtime and the router is not the request's work.
    std::mem::forget((runtime, router));
}

/// A service that answers at once, for the layer to wrap without a router around it.
#[derive(Clone)]
struct Answer;

impl tower::Service<Request<Full<Bytes>>> for Answer {
    type Response = http::Response<Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Full<Bytes>>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(Full::new(Bytes::new()))))
    }
}

/// One call of `Answer`, with or without the layer, on the SMS request: the future polled to
/// its end with a no-op waker (the body is one ready frame, so nothing waits). One call made
/// already.
struct Direct(Box<dyn FnMut() -> http::StatusCode>);

fn direct(with_layer: bool) -> Direct {
    use tower::Service;
    fn run<S: Service<Request<Full<Bytes>>, Response = http::Response<B>>, B>(
        service: &mut S,
        request: Request<Full<Bytes>>,
    ) -> http::StatusCode
    where
        S::Error: std::fmt::Debug,
    {
        let future = std::pin::pin!(service.call(request));
        match future.poll(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(response) => response.unwrap().status(),
            Poll::Pending => panic!("nothing here waits"),
        }
    }
    let payload = payload("sms");
    let request = move || {
        Request::post("/twilio/sms")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", payload.body.len())
            .header("x-twilio-signature", payload.signature.as_str())
            .body(Full::new(Bytes::from(payload.body.clone())))
            .unwrap()
    };
    let mut call: Box<dyn FnMut() -> http::StatusCode> = if with_layer {
        let layer = TwilioWebhookLayer::new(Validator::new(TOKEN))
            .unwrap()
            .public_url("https://hooks.example.com")
            .unwrap();
        let mut service = tower::Layer::layer(&layer, Answer);
        Box::new(move || run(&mut service, request()))
    } else {
        let mut service = Answer;
        Box::new(move || run(&mut service, request()))
    };
    assert_eq!(call(), 200);
    Direct(call)
}

#[library_benchmark]
#[bench::bare(args = (false), setup = direct)]
#[bench::layer(args = (true), setup = direct)]
fn service(direct: Direct) {
    let Direct(mut call) = direct;
    assert_eq!(call(), 200);
    std::mem::forget(call);
}

library_benchmark_group!(name = validation; benchmarks = floor, validate_body, reject);
library_benchmark_group!(name = through_a_router; benchmarks = router);
library_benchmark_group!(name = around_a_service; benchmarks = service);
main!(
    library_benchmark_groups = validation,
    through_a_router,
    around_a_service
);
