//! The `test-util` builders round-trip through the layer: signed, 200; one byte changed, 403.

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use twilio_webhook::http_auth::{Credentials, HttpAuth};
use twilio_webhook::middleware::TwilioWebhookLayer;
use twilio_webhook::test_util::{WebhookRequest, unverified, verified, verified_for_account};
use twilio_webhook::{ValidationError, Validator, Verified};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const BASE: &str = "https://hooks.example.com";

fn app(layer: TwilioWebhookLayer) -> Router {
    Router::new()
        .route("/sms", post(|| async { "ok" }))
        .route("/events", post(|| async { "ok" }))
        .route("/status", get(|| async { "ok" }))
        .layer(layer)
}

fn layer() -> TwilioWebhookLayer {
    TwilioWebhookLayer::new(Validator::new(TOKEN).add_shared_key("KS1234", "shared key secret"))
        .unwrap()
        .public_url(BASE)
        .unwrap()
}

async fn status(app: &Router, request: Request<Full<Bytes>>) -> StatusCode {
    app.clone().oneshot(request).await.unwrap().status()
}

/// The same request with one byte of its body (or, without a body, of its URI) changed.
async fn tampered(request: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let (mut parts, body) = request.into_parts();
    let mut bytes = body.collect().await.unwrap().to_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last = if *last == b'1' { b'2' } else { b'1' };
    } else {
        let uri = parts.uri.to_string();
        parts.uri = format!("{uri}x").parse().unwrap();
    }
    Request::from_parts(parts, Full::new(Bytes::from(bytes)))
}

async fn round_trip(app: &Router, request: WebhookRequest) {
    assert_eq!(status(app, request.clone().build()).await, StatusCode::OK);
    let changed = tampered(request.build()).await;
    assert_eq!(status(app, changed).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn every_shape_passes_signed_and_fails_with_one_byte_changed() {
    let app = app(layer());
    let shapes = [
        // A form POST, parameters in any order, a name repeated.
        WebhookRequest::post(&format!("{BASE}/sms"))
            .param("To", "+14155550100")
            .param("From", "+14155550123")
            .param("MediaUrl0", "https://api.twilio.com/m/1")
            .param("Body", "héllo & bye = 100%")
            .param("To", "+14155550101")
            .signed_with(TOKEN),
        // A GET with its parameters in the query.
        WebhookRequest::get(&format!("{BASE}/status?CallSid=CA1&CallStatus=completed"))
            .signed_with(TOKEN),
        // JSON: bodySHA256 appended and signed.
        WebhookRequest::json(&format!("{BASE}/events"), r#"{"status":"delivered","n":1}"#)
            .signed_with(TOKEN),
        // JSON to a URL with a query and connection overrides in its fragment: bodySHA256 goes
        // into the query, the fragment is neither sent nor signed.
        WebhookRequest::json(
            &format!("{BASE}/events?route=a#rc=2&rt=5000"),
            r#"{"status":"sent","n":1}"#,
        )
        .signed_with(TOKEN),
        // A webhook shared key (HMAC-SHA256).
        WebhookRequest::post(&format!("{BASE}/sms"))
            .param("Body", "shared key 1")
            .signed_with_shared_key("KS1234", "shared key secret"),
        // Delivered through a proxy to an internal host: the public URL is what counts.
        WebhookRequest::post(&format!("{BASE}/sms"))
            .param("Body", "proxied 1")
            .signed_with(TOKEN)
            .sent_to("internal:8080"),
    ];
    for request in shapes {
        round_trip(&app, request).await;
    }
}

#[tokio::test]
async fn credentials_basic_and_an_answer_to_a_digest_challenge() {
    let twilio = Credentials::new("twilio", "s3cret").unwrap();
    let basic = app(layer().http_auth(HttpAuth::basic([twilio.clone()]).unwrap()));
    let request = WebhookRequest::post(&format!("{BASE}/sms"))
        .param("Body", "basic 1")
        .signed_with(TOKEN);
    assert_eq!(
        status(&basic, request.clone().build()).await,
        StatusCode::UNAUTHORIZED
    );
    round_trip(&basic, request.basic_auth(&twilio)).await;

    let digest = app(layer().http_auth(HttpAuth::digest([twilio.clone()]).unwrap()));
    let request = WebhookRequest::post(&format!("{BASE}/sms?x=1"))
        .param("Body", "digest 1")
        .signed_with(TOKEN);
    let challenged = digest
        .clone()
        .oneshot(request.clone().build())
        .await
        .unwrap();
    assert_eq!(challenged.status(), StatusCode::UNAUTHORIZED);
    let challenge = challenged.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    round_trip(&digest, request.digest_auth(challenge, &twilio)).await;
}

#[tokio::test]
async fn an_axum_router_takes_the_request_as_is() {
    // Body type: `Full<Bytes>`, which axum's Router and hyper-style services accept.
    let request: Request<Full<Bytes>> = WebhookRequest::post(&format!("{BASE}/sms"))
        .param("Body", "hi")
        .signed_with(TOKEN)
        .build();
    let request = request.map(Body::new);
    assert_eq!(
        app(layer()).oneshot(request).await.unwrap().status(),
        StatusCode::OK
    );
}

#[test]
fn handlers_can_be_given_verified_and_unverified_without_the_layer() {
    fn handler(verified: Option<&Verified>) -> &'static str {
        match verified {
            Some(v) if v.account_sid.as_deref() == Some("AC1") => "account AC1",
            Some(_) => "verified",
            None => "refused",
        }
    }
    assert_eq!(handler(Some(&verified())), "verified");
    assert_eq!(handler(Some(&verified_for_account("AC1"))), "account AC1");
    assert_eq!(
        unverified(ValidationError::SignatureMismatch).0,
        ValidationError::SignatureMismatch
    );
}

#[tokio::test]
async fn json_to_a_url_that_already_carries_its_body_sha256_is_signed_as_twilio_signs_it() {
    let app = app(layer());
    let body = r#"{"status":"delivered","n":2}"#;
    let url = format!(
        "{BASE}/events?bodySHA256={}",
        twilio_webhook::body_sha256(body.as_bytes())
    );
    let request = WebhookRequest::json(&url, body).signed_with(TOKEN);
    // The URL Twilio calls, unchanged: one bodySHA256, and the signature Twilio computes over it.
    assert_eq!(request.signed_url(), url);
    let empty: [(&str, &str); 0] = [];
    assert_eq!(
        request.signature(),
        twilio_webhook::compute_signature(TOKEN, &url, &empty)
    );
    round_trip(&app, request).await;
}

#[test]
#[should_panic(expected = "does not match the bodySHA256")]
fn json_to_a_url_with_another_body_sha256_is_a_mistake_in_the_test() {
    let url = format!("{BASE}/events?bodySHA256={}", "0".repeat(64));
    let _ = WebhookRequest::json(&url, "{}").signed_with(TOKEN).build();
}

#[test]
fn authenticated_for_tests_names_its_user() {
    let who = twilio_webhook::http_auth::Authenticated::for_tests("twilio");
    assert_eq!(who.user(), "twilio");
}
