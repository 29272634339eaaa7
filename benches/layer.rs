//! What the layer adds to a request, in process.
//!
//! Run: `cargo bench --bench layer`. An axum router whose handler extracts
//! `Form<Vec<(String, String)>>` and returns TwiML is called with the inbound-SMS webhook,
//! without and with `TwilioWebhookLayer`, interleaved in one run; it prints both medians, the
//! overhead in ns, and the overhead against the bare HMAC-SHA1 of the same signed bytes.
//!
//! Then, unless `--quick`, the same two routers served over loopback HTTP/1.1 and loaded by 16
//! keep-alive client tasks in the same process, in interleaved one-second rounds: requests per
//! second with and without the layer, and their ratio.

#[path = "../tests/support/mod.rs"]
mod fixtures;
mod support;

use axum::Router;
use axum::body::Body;
use axum::extract::Form;
use axum::routing::post;
use fixtures::{form_body, sms_params};
use http::Request;
use support::{Bench, hmac_floor, medians, rounds};
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

    // Each router is finalised with `with_state(())`, as `axum::serve` does once: without
    // it axum rebuilds a route from its handler (and applies the layer again) on every call.
    let bare = Router::new().route("/twilio/sms", post(sms)).with_state(());
    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url("https://hooks.example.com")
        .unwrap();
    let guarded = Router::new()
        .route("/twilio/sms", post(sms))
        .layer(layer)
        .with_state(());

    let request = || {
        Request::post("/twilio/sms")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", body.len())
            .header("x-twilio-signature", signature.as_str())
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let signed = signed_string(url, &params);

    // A multi-tenant layer: an account it knows, and one it does not (refused 403). The two
    // must cost the same, or the time of a 403 says which accounts a platform serves.
    let account_sid = params
        .iter()
        .find(|(name, _)| name == "AccountSid")
        .map(|(_, value)| value.clone())
        .unwrap();
    let tenants = Router::new()
        .route("/twilio/sms", post(sms))
        .layer(
            TwilioWebhookLayer::with_key_source(
                twilio_webhook::middleware::AccountMap::new()
                    .insert(account_sid.clone(), Validator::new(TOKEN)),
            )
            .public_url("https://hooks.example.com")
            .unwrap(),
        )
        .with_state(());
    let strangers = Router::new()
        .route("/twilio/sms", post(sms))
        .layer(
            TwilioWebhookLayer::with_key_source(
                twilio_webhook::middleware::AccountMap::new()
                    .insert("AC00000000000000000000000000000000", Validator::new(TOKEN)),
            )
            .public_url("https://hooks.example.com")
            .unwrap(),
        )
        .with_state(());
    let mut benches = [
        hmac_floor(TOKEN, signed.as_bytes()),
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
        // What a prober sends: a forged signature, to an account the platform serves.
        Bench::new("key source, known account", || {
            let mut forged = request();
            forged.headers_mut().insert(
                "x-twilio-signature",
                http::HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            );
            let response = runtime.block_on(tenants.clone().oneshot(forged)).unwrap();
            assert_eq!(response.status(), 403);
        }),
        // ... and to one it does not serve.
        Bench::new("key source, unknown account", || {
            let mut forged = request();
            forged.headers_mut().insert(
                "x-twilio-signature",
                http::HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            );
            let response = runtime.block_on(strangers.clone().oneshot(forged)).unwrap();
            assert_eq!(response.status(), 403);
        }),
    ];
    let rounds = rounds();
    let m = medians(&mut benches, rounds);
    let own = own_work(&body, &signature, rounds);
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
    println!(
        "  forged, known account      {:>8.0} ns  (403 after the account's MAC)",
        m[3]
    );
    println!(
        "  forged, unknown account    {:>8.0} ns  (403 after a stand-in MAC; difference {:+.0} ns)",
        m[4],
        m[4] - m[3]
    );
    println!(
        "the layer's own work, around a tower service polled directly (no runtime, no router), medians:"
    );
    println!("  service without the layer  {:>8.0} ns", own[0]);
    println!("  service with the layer     {:>8.0} ns", own[1]);
    println!("  validate_body alone        {:>8.0} ns", own[2]);
    println!(
        "  the layer's own work       {:>8.0} ns  (with - without - validate_body)",
        own[1] - own[0] - own[2]
    );
    if rounds > 3 {
        loopback(&params);
    }
}

/// The layer's own work with nothing else around it: a `tower::service_fn` that answers at
/// once, with and without the layer, each future polled to its end with a no-op waker (the
/// body is one ready frame, so nothing waits), and `validate_body` on the same request, in
/// interleaved rounds. The difference, minus `validate_body`, is what the layer adds: reading
/// the URL and headers, the body buffer, the `Verified` extension, the response wrapping.
fn own_work(body: &bytes::Bytes, signature: &str, rounds: usize) -> Vec<f64> {
    use std::convert::Infallible;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use http_body_util::Full;
    use tower::{Service, ServiceBuilder};

    fn poll_once<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("nothing here waits"),
        }
    }
    let handler = |_: Request<Full<bytes::Bytes>>| async {
        Ok::<_, Infallible>(http::Response::new(Full::new(bytes::Bytes::new())))
    };
    let request = || {
        Request::post("/twilio/sms")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", body.len())
            .header("x-twilio-signature", signature)
            .body(Full::new(body.clone()))
            .unwrap()
    };
    let mut bare = tower::service_fn(handler);
    let mut guarded = ServiceBuilder::new()
        .layer(
            TwilioWebhookLayer::new(Validator::new(TOKEN))
                .unwrap()
                .public_url("https://hooks.example.com")
                .unwrap(),
        )
        .service_fn(handler);
    let validator = Validator::new(TOKEN);
    let url = "https://hooks.example.com/twilio/sms";
    let mut benches = [
        Bench::new("service without the layer", || {
            let response = poll_once(bare.call(request())).unwrap();
            assert_eq!(response.status(), 200);
        }),
        Bench::new("service with the layer", || {
            let response = poll_once(guarded.call(request())).unwrap();
            assert_eq!(response.status(), 200);
        }),
        Bench::new("validate_body", || {
            let verdict = validator.validate_body(
                std::hint::black_box(url),
                Some("application/x-www-form-urlencoded"),
                std::hint::black_box(body),
                std::hint::black_box(signature),
            );
            assert!(verdict.is_ok());
        }),
    ];
    medians(&mut benches, rounds)
}

/// Requests per second over loopback HTTP, with and without the layer.
fn loopback(params: &[(String, String)]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bare = serve(|_| None).await;
        let guarded = serve(|addr| {
            Some(
                TwilioWebhookLayer::new(Validator::new(TOKEN))
                    .unwrap()
                    .public_url(&format!("http://{addr}"))
                    .unwrap(),
            )
        })
        .await;
        let body = bytes::Bytes::from(form_body(params));
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            without.push(load(bare, &body, params).await);
            with.push(load(guarded, &body, params).await);
        }
        with.sort_by(f64::total_cmp);
        without.sort_by(f64::total_cmp);
        let (with, without) = (with[with.len() / 2], without[without.len() / 2]);
        println!("loopback HTTP/1.1, 16 keep-alive clients, medians of 7 one-second rounds:");
        println!("  without the layer          {without:>8.0} req/s");
        println!(
            "  with the layer             {with:>8.0} req/s  ({:.1}% of without)",
            100.0 * with / without
        );
    });
}

async fn serve(
    layer: impl FnOnce(std::net::SocketAddr) -> Option<TwilioWebhookLayer>,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/twilio/sms", post(sms));
    let router = match layer(addr) {
        Some(layer) => router.layer(layer),
        None => router,
    };
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Requests per second from 16 concurrent keep-alive clients during one second.
async fn load(addr: std::net::SocketAddr, body: &bytes::Bytes, params: &[(String, String)]) -> f64 {
    use http_body_util::{BodyExt, Full};
    let url = format!("http://{addr}/twilio/sms");
    let signature = compute_signature(TOKEN, &url, params);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (client, url, signature, body) =
                (client.clone(), url.clone(), signature.clone(), body.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while std::time::Instant::now() < deadline {
                    let request = Request::post(url.as_str())
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("x-twilio-signature", signature.as_str())
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let response = client.request(request).await.unwrap();
                    assert_eq!(response.status(), 200);
                    response.into_body().collect().await.unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64
}
