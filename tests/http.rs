//! The layer in a real axum server over TCP on 127.0.0.1, called with a hyper client.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::routing::{get, post};
use axum::{Extension, Router};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::{chunked, form_body, sha256_hex};
use twilio_webhook::middleware::{TwilioWebhookLayer, Unverified};
use twilio_webhook::{Validator, Verified, compute_signature};

const TOKEN: &str = "0e1d2c3b4a5968778695a4b3c2d1e0f9";
const FORM: &str = "application/x-www-form-urlencoded";

/// What the handlers were given.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Params>>>);

type Params = Vec<(String, String)>;

async fn sms(
    State(seen): State<Seen>,
    verified: Option<Extension<Verified>>,
    unverified: Option<Extension<Unverified>>,
    Form(params): Form<Vec<(String, String)>>,
) -> String {
    seen.0.lock().unwrap().push(params);
    match (verified, unverified) {
        (Some(_), _) => "verified".into(),
        (None, Some(Extension(Unverified(error)))) => format!("unverified: {error}"),
        (None, None) => "unmarked".into(),
    }
}

fn layer_for(addr: SocketAddr) -> TwilioWebhookLayer {
    TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url(&format!("http://{addr}"))
        .unwrap()
}

async fn send<B>(request: Request<B>) -> (StatusCode, String)
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn post_form(url: &str, signed_url: &str, params: &[(&str, &str)]) -> Request<Full<Bytes>> {
    Request::post(url)
        .header("content-type", FORM)
        .header(
            "x-twilio-signature",
            compute_signature(TOKEN, signed_url, params),
        )
        .body(Full::new(Bytes::from(form_body(params))))
        .unwrap()
}

const PARAMS: &[(&str, &str)] = &[
    ("MessageSid", "SM1"),
    ("From", "+14155550123"),
    ("Body", "Café & crème = 100% ☕"),
    ("MediaUrl0", ""),
    ("To", "+1"),
    ("To", "+1"),
];

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_valid_form_webhook_in_a_nested_router_reaches_the_form_extractor_intact() {
    let (addr, seen) = serve_default().await;
    let url = format!("http://{addr}/twilio/sms");
    let (status, body) = send(post_form(&url, &url, PARAMS)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "verified"));
    // The handler sees every pair, in wire order, repeats and empty values included.
    assert_eq!(seen.0.lock().unwrap().as_slice(), [owned(PARAMS)]);
}

async fn serve_default() -> (SocketAddr, Seen) {
    serve_with(layer_for).await
}

/// Serves a layer inside `Router::nest("/twilio", ...)`. Binds first: the public URL needs
/// the port, known only once bound.
async fn serve_with(make: impl FnOnce(SocketAddr) -> TwilioWebhookLayer) -> (SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let webhooks = Router::new()
        .route("/sms", post(sms))
        .route("/voice", get(|| async { "<Response/>" }))
        .route(
            "/events",
            post(|body: Bytes| async move { format!("{} bytes", body.len()) }),
        )
        .layer(make(addr))
        .with_state(seen.clone());
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest("/twilio", webhooks);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test]
async fn forged_tampered_unsigned_and_misdirected_requests_get_403_and_reach_nothing() {
    let (addr, seen) = serve_default().await;
    let url = format!("http://{addr}/twilio/sms");
    let mut tampered = post_form(&url, &url, PARAMS);
    *tampered.body_mut() = Full::new(Bytes::from(form_body(&[("Body", "send $1000")])));
    let mut unsigned = post_form(&url, &url, PARAMS);
    unsigned.headers_mut().remove("x-twilio-signature");
    let mut forged = post_form(&url, &url, PARAMS);
    let other_token = compute_signature("another-token", &url, PARAMS);
    forged
        .headers_mut()
        .insert("x-twilio-signature", other_token.parse().unwrap());
    let wrong_port = post_form(&url, "http://127.0.0.1:1/twilio/sms", PARAMS);
    let wrong_path = post_form(&url, &format!("http://{addr}/sms"), PARAMS);
    let trailing_slash = post_form(&url, &format!("http://{addr}/twilio/sms/"), PARAMS);
    for request in [
        tampered,
        unsigned,
        forged,
        wrong_port,
        wrong_path,
        trailing_slash,
    ] {
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body, "");
    }
    assert!(seen.0.lock().unwrap().is_empty());
    // Routes outside the layer are untouched.
    let health = Request::get(format!("http://{addr}/health"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(health).await, (StatusCode::OK, "ok".into()));
}

#[tokio::test]
async fn json_and_get_webhooks_pass() {
    let (addr, _) = serve_default().await;
    let body = br#"{"event":"call.completed","note":"naive cafe"}"#;
    let hash = sha256_hex(body);
    let url = format!("http://{addr}/twilio/events?bodySHA256={hash}");
    let signature = compute_signature(TOKEN, &url, &[]);
    let request = Request::post(&url)
        .header("content-type", "application/json")
        .header("x-twilio-signature", &signature)
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    assert_eq!(
        send(request).await,
        (StatusCode::OK, format!("{} bytes", body.len()))
    );
    let request = Request::post(&url)
        .header("content-type", "application/json")
        .header("x-twilio-signature", &signature)
        .body(Full::new(Bytes::from_static(br#"{"event":"forged"}"#)))
        .unwrap();
    assert_eq!(send(request).await.0, StatusCode::FORBIDDEN);

    let url = format!("http://{addr}/twilio/voice?CallSid=CA1&From=%2B14155550123");
    let request = Request::get(&url)
        .header("x-twilio-signature", compute_signature(TOKEN, &url, &[]))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(request).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_reaches_nothing() {
    let (addr, seen) = serve_with(|addr| layer_for(addr).body_limit(64)).await;
    let url = format!("http://{addr}/twilio/sms");
    let big = "x".repeat(1000);
    let params = [("Body", big.as_str())];
    assert_eq!(
        send(post_form(&url, &url, &params)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Streamed without a Content-Length, in small chunks: refused once past the limit.
    let request = Request::post(&url)
        .header("content-type", FORM)
        .header(
            "x-twilio-signature",
            compute_signature(TOKEN, &url, &params),
        )
        .body(chunked(form_body(&params).as_bytes(), 10))
        .unwrap();
    assert_eq!(send(request).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(seen.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_body_sent_in_many_small_chunks_is_verified_whole() {
    let (addr, seen) = serve_default().await;
    let url = format!("http://{addr}/twilio/sms");
    let request = Request::post(&url)
        .header("content-type", FORM)
        .header("x-twilio-signature", compute_signature(TOKEN, &url, PARAMS))
        .body(chunked(form_body(PARAMS).as_bytes(), 5))
        .unwrap();
    assert_eq!(send(request).await, (StatusCode::OK, "verified".into()));
    assert_eq!(seen.0.lock().unwrap().as_slice(), [owned(PARAMS)]);
}

#[tokio::test]
async fn public_url_with_a_path_prefix_behind_a_proxy() {
    // Twilio calls https://example.com/api/twilio/sms; a proxy strips /api and TLS.
    let (addr, _) = serve_with(|_| {
        TwilioWebhookLayer::new(Validator::new(TOKEN))
            .unwrap()
            .public_url("https://example.com/api")
            .unwrap()
    })
    .await;
    let request = post_form(
        &format!("http://{addr}/twilio/sms"),
        "https://example.com/api/twilio/sms",
        PARAMS,
    );
    assert_eq!(send(request).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_spoofed_forwarded_host_changes_nothing_unless_the_proxy_is_trusted() {
    let spoof = |addr: SocketAddr| {
        let mut request = post_form(
            &format!("http://{addr}/twilio/sms"),
            "https://hooks.example.com/twilio/sms",
            PARAMS,
        );
        let headers = request.headers_mut();
        headers.insert("x-forwarded-host", "hooks.example.com".parse().unwrap());
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        request
    };
    let (addr, _) = serve_with(|_| TwilioWebhookLayer::new(Validator::new(TOKEN)).unwrap()).await;
    assert_eq!(send(spoof(addr)).await.0, StatusCode::FORBIDDEN);

    let (addr, _) = serve_with(|_| {
        TwilioWebhookLayer::new(Validator::new(TOKEN))
            .unwrap()
            .trust_forwarded_headers()
    })
    .await;
    assert_eq!(send(spoof(addr)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn http2_requests_carry_the_authority_in_the_uri_not_host() {
    let (addr, _) = serve_with(|_| {
        TwilioWebhookLayer::new(Validator::new(TOKEN))
            .unwrap()
            .derive_url(twilio_webhook::middleware::Scheme::Http)
    })
    .await;
    let url = format!("http://{addr}/twilio/sms");
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let response = client.request(post_form(&url, &url, PARAMS)).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn report_only_passes_the_request_on_marked_unverified() {
    let (addr, seen) = serve_with(|addr| layer_for(addr).report_only()).await;
    let url = format!("http://{addr}/twilio/sms");
    let mut request = post_form(&url, &url, PARAMS);
    request.headers_mut().remove("x-twilio-signature");
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("unverified: "), "{body}");
    assert_eq!(seen.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn route_layer_guards_matched_routes_and_leaves_404s_alone() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/sms", post(|| async { "ok" }))
        .route_layer(layer_for(addr));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let url = format!("http://{addr}/sms");
    assert_eq!(send(post_form(&url, &url, PARAMS)).await.0, StatusCode::OK);
    let mut unsigned = post_form(&url, &url, PARAMS);
    unsigned.headers_mut().remove("x-twilio-signature");
    assert_eq!(send(unsigned).await.0, StatusCode::FORBIDDEN);
    let missing = format!("http://{addr}/nowhere");
    assert_eq!(
        send(post_form(&missing, &missing, PARAMS)).await.0,
        StatusCode::NOT_FOUND
    );
}
