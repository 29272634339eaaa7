//! `validate_body` on a typical webhook makes no heap allocation.
//!
//! A counting global allocator sees every allocation in this test binary; the counted section
//! runs on one thread and the counter is per-thread, so the test harness does not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

mod support;

use support::{form_body, sms_params};
use twilio_webhook::{Validator, compute_signature};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated and not yet freed by this thread, and the most it reached.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn live_bytes(change: isize) {
    let live = LIVE.with(|n| {
        n.set(n.get() + change);
        n.get()
    });
    PEAK.with(|p| p.set(p.get().max(live)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        live_bytes(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live_bytes(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        live_bytes(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The most heap `f` held at once, in bytes, beyond what was live before it.
fn peak_bytes_during(f: impl FnOnce()) -> usize {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    f();
    (PEAK.with(Cell::get) - before) as usize
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// The inbound-SMS webhook, with `extra` media parameters.
fn sms(extra: usize) -> Vec<(String, String)> {
    let mut params = sms_params();
    // Non-ASCII escapes take the decoded-UTF-8 check: it allocates nothing either.
    params.push(("Note".into(), "café ☕".into()));
    for i in 0..extra {
        params.push((
            format!("MediaUrl{i}"),
            format!("https://api.twilio.com/m/{i}"),
        ));
    }
    params
}

#[test]
fn validate_body_allocates_nothing_for_an_sms_webhook_up_to_64_params() {
    let validator = Validator::new("7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60");
    let url = "https://api.example.com/twilio/sms?route=main";
    for extra in [0, 12, 43] {
        let params = sms(extra);
        let body = form_body(&params);
        let good = compute_signature("7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60", url, &params);
        let bad = compute_signature("another", url, &params);
        let form = Some("application/x-www-form-urlencoded");

        let mut verdict = Err(twilio_webhook::ValidationError::MissingSignature);
        let n = allocations_during(|| {
            verdict = validator.validate_body(url, form, body.as_bytes(), &good)
        });
        assert_eq!(verdict, Ok(()));
        assert_eq!(n, 0, "valid, {} params", params.len());

        let n = allocations_during(|| {
            verdict = validator.validate_body(url, form, body.as_bytes(), &bad)
        });
        assert!(verdict.is_err());
        assert_eq!(n, 0, "rejected, {} params", params.len());

        let n = allocations_during(|| verdict = validator.validate(url, &params, &good));
        assert_eq!(verdict, Ok(()));
        assert_eq!(n, 0, "validate, {} params", params.len());
    }
}

#[test]
fn memory_per_request_is_bounded_whatever_the_body() {
    let validator = Validator::new("7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60");
    let url = "https://api.example.com/twilio/sms";
    let form = Some("application/x-www-form-urlencoded");
    let signature = compute_signature("7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60", url, &[("a", "1")]);
    // 1 MiB of `a&`: half a million parameters, refused after the first thousand.
    let flood = "a&".repeat(512 * 1024);
    let peak = peak_bytes_during(|| {
        let verdict = validator.validate_body(url, form, flood.as_bytes(), &signature);
        assert!(verdict.is_err());
    });
    println!("1 MiB of a&: peak {peak} bytes of heap");
    assert!(peak <= 4 * 1024 * 128, "peak {peak} bytes");
    // The largest body accepted: a thousand parameters. Memory stays within 4x of it plus the
    // fixed parameter table.
    let params: Vec<(String, String)> = (0..1000)
        .map(|i| {
            (
                format!("MediaUrl{i}"),
                format!("https://api.twilio.com/m/{i}%20x"),
            )
        })
        .collect();
    let body = form_body(&params);
    let signature = compute_signature("7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60", url, &params);
    let peak = peak_bytes_during(|| {
        assert_eq!(
            validator.validate_body(url, form, body.as_bytes(), &signature),
            Ok(())
        );
    });
    println!(
        "{} bytes, 1000 params: peak {peak} bytes of heap",
        body.len()
    );
    assert!(
        peak <= 4 * body.len(),
        "peak {peak} for {} bytes",
        body.len()
    );
}

#[test]
fn validate_body_allocates_nothing_for_an_mms_with_34_media() {
    // About 100 parameters and 9.6 KiB of form body, names sharing long prefixes.
    let params = support::media_webhook();
    assert!(params.len() >= 100);
    let body = form_body(&params);
    let url = "https://api.example.com/twilio/sms";
    let signature = compute_signature("7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60", url, &params);
    let validator = Validator::new("7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60");
    let form = Some("application/x-www-form-urlencoded");
    let mut verdict = Err(twilio_webhook::ValidationError::MissingSignature);
    let n = allocations_during(|| {
        verdict = validator.validate_body(url, form, body.as_bytes(), &signature);
    });
    assert_eq!(verdict, Ok(()));
    assert_eq!(n, 0, "{} params, {} bytes", params.len(), body.len());
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);
}

/// What the layer adds per request, in allocations, over the same service without it.
#[cfg(feature = "tower")]
#[test]
fn the_layer_adds_a_fixed_handful_of_allocations_per_request() {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Full;
    use tower::ServiceBuilder;
    use twilio_webhook::middleware::TwilioWebhookLayer;

    let request = signed_sms(Full::new);
    let handler = |_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut bare = tower::service_fn(handler);
    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url("https://hooks.example.com")
        .unwrap();
    let mut guarded = ServiceBuilder::new().layer(layer).service_fn(handler);

    let bare = allocations_per_request(&runtime, &mut bare, &request);
    let guarded = allocations_per_request(&runtime, &mut guarded, &request);
    println!("allocations per request: bare {bare}, with the layer {guarded}");
    // The `Verified` extension: the extensions map's box, its table and the entry. Nothing per
    // parameter or per byte: the body is checked where it lies.
    assert!(guarded - bare <= 3, "bare {bare}, with the layer {guarded}");
}

/// The same through an axum router, as most users run it (finalised with `with_state`, as
/// `axum::serve` does). Six more than without the layer (callgrind's callers of `malloc`):
/// - the `Verified` extension's entry, and the extensions table growing to hold a fourth
///   entry (axum put three there);
/// - the clone of the inner route the layer keeps while it reads the body (axum's route is a
///   boxed service, so a clone is an allocation);
/// - axum boxing the layer's buffered request body into its own `Body`, and the layer's
///   response body on the way out;
/// - axum boxing the future of the route the layer wraps.
///
/// None is per parameter or per byte; the body is checked where it lies.
#[cfg(all(feature = "tower", feature = "axum"))]
#[test]
fn through_an_axum_router_the_layer_adds_six_allocations() {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use twilio_webhook::middleware::TwilioWebhookLayer;

    let request = signed_sms(Body::from);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let router = || Router::new().route("/sms", post(|| async { "<Response/>" }));
    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url("https://hooks.example.com")
        .unwrap();
    let mut bare = router().with_state(());
    let mut guarded = router().layer(layer).with_state(());
    let bare = allocations_per_request(&runtime, &mut bare, &request);
    let guarded = allocations_per_request(&runtime, &mut guarded, &request);
    println!("allocations per request through axum: bare {bare}, with the layer {guarded}");
    assert!(guarded - bare <= 6, "bare {bare}, with the layer {guarded}");
}

/// The auth token the layer tests sign with.
#[cfg(feature = "tower")]
const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";

/// A maker of the inbound-SMS webhook to `https://hooks.example.com/sms`, signed with
/// [`TOKEN`], its body wrapped by `body` (`Full::new`, axum's `Body::from`).
#[cfg(feature = "tower")]
fn signed_sms<B>(body: impl Fn(bytes::Bytes) -> B) -> impl Fn() -> http::Request<B> {
    let params = sms_params();
    let form = bytes::Bytes::from(form_body(&params));
    let signature = compute_signature(TOKEN, "https://hooks.example.com/sms", &params);
    move || {
        http::Request::post("/sms")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature.as_str())
            .body(body(form.clone()))
            .unwrap()
    }
}

/// Allocations made by one request through `service`, after one to warm up (lazy statics,
/// thread-locals).
#[cfg(feature = "tower")]
fn allocations_per_request<S, Req, B>(
    runtime: &tokio::runtime::Runtime,
    service: &mut S,
    request: &dyn Fn() -> http::Request<Req>,
) -> usize
where
    S: tower::Service<http::Request<Req>, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
{
    use tower::ServiceExt;
    let mut once = || {
        let request = request();
        let response = runtime.block_on(async {
            ServiceExt::<http::Request<Req>>::ready(service)
                .await
                .unwrap()
                .call(request)
                .await
                .unwrap()
        });
        assert_eq!(response.status(), 200);
    };
    once();
    allocations_during(once)
}

#[test]
fn http_authentication_that_passes_allocates_nothing() {
    use twilio_webhook::http_auth::{
        Credentials, HttpAuth, basic_authorization, digest_authorization,
    };
    let twilio = Credentials::new("twilio", "a long random password").unwrap();
    let basic = HttpAuth::basic([twilio.clone()]).unwrap();
    let header = basic_authorization(&twilio);
    let mut ok = false;
    let n = allocations_during(|| ok = basic.check(Some(&header), "POST", "/sms").is_ok());
    assert!(ok);
    assert_eq!(n, 0, "Basic");

    let digest = HttpAuth::digest([twilio.clone()]).unwrap();
    let challenge = digest.check(None, "POST", "/sms").unwrap_err();
    for offered in challenge.challenges() {
        let header = digest_authorization(offered, &twilio, "POST", "/sms", "0a4f113b").unwrap();
        let n = allocations_during(|| ok = digest.check(Some(&header), "POST", "/sms").is_ok());
        assert!(ok);
        assert_eq!(n, 0, "{offered}");
    }
}
