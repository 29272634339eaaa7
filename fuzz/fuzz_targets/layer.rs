//! The layer on arbitrary method, URI, headers and body: never panics, never returns `Err`,
//! and never hands on a request whose signature the core would refuse. Some requests are
//! signed correctly so the accepting path runs too; some layers require HTTP authentication
//! (Basic, or Digest answered from the layer's own challenge) and guard against replays, and
//! then the same request is sent again: a copy of a handled request never reaches the handler.
#![no_main]

use std::convert::Infallible;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower::{ServiceBuilder, ServiceExt};
use twilio_webhook::http_auth::{Credentials, HttpAuth, basic_authorization, digest_authorization};
use twilio_webhook::middleware::{Rejection, ReplayGuard, TwilioWebhookLayer};
use twilio_webhook::{Validator, Webhook, compute_signature};

const TOKEN: &str = "12345";
const BASE: &str = "https://hooks.example.com";

#[derive(Arbitrary, Debug)]
struct Input {
    method: String,
    path_and_query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    form: bool,
    sign: bool,
    report_only: bool,
    auth: Auth,
    /// Whether the request carries the right credentials (when the layer requires them).
    credentials: bool,
    guard: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    Basic,
    Digest,
}

static PAIR: LazyLock<Credentials> = LazyLock::new(|| Credentials::new("twilio", "s3cret").unwrap());

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
});

fuzz_target!(|input: Input| {
    let Ok(method) = http::Method::from_bytes(input.method.as_bytes()) else {
        return;
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(input.path_and_query.as_str());
    for (name, value) in &input.headers {
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    if input.form {
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
    }
    if input.sign {
        if let Ok(probe) = Request::builder()
            .uri(input.path_and_query.as_str())
            .body(())
        {
            let pq = probe.uri().path_and_query().map_or("/", |pq| pq.as_str());
            let url = format!("{BASE}{pq}");
            let params = twilio_webhook_fuzz::decode_form(&input.body).unwrap_or_default();
            let params = if input.form { params } else { Vec::new() };
            builder = builder.header(
                "x-twilio-signature",
                compute_signature(TOKEN, &url, &params),
            );
        }
    }
    let Ok(mut request) = builder.body(Full::new(Bytes::from(input.body.clone()))) else {
        return;
    };
    let pq = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();

    let mut layer = TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url(BASE)
        .unwrap();
    if input.report_only {
        layer = layer.report_only();
    }
    let auth = match input.auth {
        Auth::None => None,
        Auth::Basic => Some(HttpAuth::basic([PAIR.clone()]).unwrap()),
        Auth::Digest => Some(
            HttpAuth::digest([PAIR.clone()])
                .unwrap()
                .nonce_secret([9u8; 32])
                .unwrap(),
        ),
    };
    if let Some(auth) = &auth {
        layer = layer.http_auth(auth.clone());
        if input.credentials {
            let value = match input.auth {
                Auth::Digest => {
                    // What Twilio does: answer the layer's own challenge.
                    let refused = auth.check(None, request.method().as_str(), &pq).unwrap_err();
                    let challenge = &refused.challenges()[0];
                    digest_authorization(challenge, &PAIR, request.method().as_str(), &pq, "0a4f113b")
                        .unwrap()
                }
                _ => basic_authorization(&PAIR),
            };
            request.headers_mut().remove("authorization");
            if let Ok(value) = value.parse() {
                request.headers_mut().insert("authorization", value);
            }
        }
    }
    if input.guard {
        layer = layer.replay_guard(ReplayGuard::in_memory());
    }
    let headers = request.headers().clone();
    let reached = std::sync::Arc::new(AtomicBool::new(false));
    let verified = std::sync::Arc::new(AtomicBool::new(false));
    let (r, v) = (reached.clone(), verified.clone());
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(move |req: Request<Full<Bytes>>| {
                r.store(true, Ordering::SeqCst);
                v.store(
                    req.extensions().get::<twilio_webhook::Verified>().is_some(),
                    Ordering::SeqCst,
                );
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
            });
    let copy = Request::from_parts(
        {
            let (parts, _) = Request::builder()
                .method(request.method().clone())
                .uri(request.uri().clone())
                .body(())
                .unwrap()
                .into_parts();
            let mut parts = parts;
            parts.headers = request.headers().clone();
            parts
        },
        Full::new(Bytes::from(input.body.clone())),
    );
    let response = RUNTIME
        .block_on(service.clone().oneshot(request))
        .expect("the layer never returns Err");
    let authenticated = response.status() != 401;
    if auth.is_some() && !input.credentials {
        assert!(!reached.load(Ordering::SeqCst), "passed on without credentials");
    }
    if auth.is_some() && reached.load(Ordering::SeqCst) {
        assert!(authenticated);
    }

    if reached.load(Ordering::SeqCst) && !input.report_only {
        assert_eq!(response.status(), 200);
        // Independently: the core accepts what the layer let through.
        let single = |name: &str| {
            let mut all = headers.get_all(name).iter();
            match (all.next(), all.next()) {
                (Some(v), None) => v.to_str().ok(),
                _ => None,
            }
        };
        let url = format!("{BASE}{pq}");
        let verdict = Validator::new(TOKEN).verify(
            &Webhook::new(&url)
                .content_type(single("content-type"))
                .body(&input.body)
                .signature(single("x-twilio-signature"))
                .signature_settings(single("x-twilio-webhooks-signature-settings")),
        );
        assert!(verdict.is_ok(), "passed on, but the core says {verdict:?}");
        assert!(verified.load(Ordering::SeqCst));
    }
    if !reached.load(Ordering::SeqCst) {
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    // The same request again: with the guard, a copy of one the handler answered 2xx is a
    // duplicate, answered by the layer.
    let handled = reached.load(Ordering::SeqCst) && verified.load(Ordering::SeqCst);
    reached.store(false, Ordering::SeqCst);
    let again = RUNTIME
        .block_on(service.oneshot(copy))
        .expect("the layer never returns Err");
    if input.guard && handled && response.status().is_success() {
        assert!(!reached.load(Ordering::SeqCst), "a copy reached the handler");
        assert_eq!(again.status(), 200);
        assert_eq!(
            again.extensions().get::<Rejection>(),
            Some(&Rejection::Duplicate)
        );
    }
});
