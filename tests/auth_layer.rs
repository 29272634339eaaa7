//! HTTP authentication through the layer: Twilio's 401 flow, before the body and the signature.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{ServiceBuilder, ServiceExt};
use twilio_webhook::http_auth::{
    Algorithm, AuthError, Authenticated, Credentials, HttpAuth, basic_authorization,
    digest_authorization,
};
use twilio_webhook::middleware::{
    Rejection, ReplayGuard, ResponseBody, TwilioWebhookLayer, Unverified,
};
use twilio_webhook::test_util::WebhookRequest;
use twilio_webhook::{Validator, Verified};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const PARAMS: &[(&str, &str)] = &[("From", "+14155550123"), ("Body", "hi")];
const SECRET: &[u8] = b"a nonce secret every replica shares, 32+ bytes";

fn twilio() -> Credentials {
    Credentials::new("twilio", "correct horse battery").unwrap()
}

fn layer(auth: HttpAuth) -> TwilioWebhookLayer {
    TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url("https://hooks.example.com")
        .unwrap()
        .http_auth(auth)
}

/// A signed webhook to `/sms?x=1`, with `authorization` if any.
fn webhook(authorization: Option<&str>, signature_token: &str) -> Request<Full<Bytes>> {
    // Twilio signs the URL without the credentials.
    let mut request = WebhookRequest::post("https://hooks.example.com/sms?x=1")
        .param(PARAMS[0].0, PARAMS[0].1)
        .param(PARAMS[1].0, PARAMS[1].1)
        .signed_with(signature_token)
        .build();
    if let Some(authorization) = authorization {
        request
            .headers_mut()
            .insert("authorization", authorization.parse().unwrap());
    }
    request
}

struct Seen {
    calls: AtomicUsize,
    user: std::sync::Mutex<Option<String>>,
    verified: AtomicBool,
    unverified: AtomicBool,
}

async fn call(
    layer: TwilioWebhookLayer<impl twilio_webhook::middleware::RejectionResponse>,
    request: Request<Full<Bytes>>,
) -> (Response<ResponseBody<Full<Bytes>>>, Arc<Seen>) {
    let seen = Arc::new(Seen {
        calls: AtomicUsize::new(0),
        user: Default::default(),
        verified: AtomicBool::new(false),
        unverified: AtomicBool::new(false),
    });
    let inner = Arc::clone(&seen);
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(move |request: Request<Full<Bytes>>| {
                inner.calls.fetch_add(1, Ordering::SeqCst);
                *inner.user.lock().unwrap() = request
                    .extensions()
                    .get::<Authenticated>()
                    .map(|a| a.user().to_owned());
                inner.verified.store(
                    request.extensions().get::<Verified>().is_some(),
                    Ordering::SeqCst,
                );
                inner.unverified.store(
                    request.extensions().get::<Unverified>().is_some(),
                    Ordering::SeqCst,
                );
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("handled")))) }
            });
    (service.oneshot(request).await.unwrap(), seen)
}

fn challenges<B>(response: &Response<B>) -> Vec<String> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn basic_twilio_flow_401_with_realm_then_the_same_request_with_credentials() {
    let auth = HttpAuth::basic([twilio()]).unwrap().realm("hooks").unwrap();
    let (response, seen) = call(layer(auth.clone()), webhook(None, TOKEN)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&response),
        ["Basic realm=\"hooks\", charset=\"UTF-8\""]
    );
    assert_eq!(
        response.extensions().get::<Rejection>(),
        Some(&Rejection::Unauthorized(AuthError::Missing))
    );
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);

    let header = basic_authorization(&twilio());
    let (response, seen) = call(layer(auth), webhook(Some(&header), TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.user.lock().unwrap().as_deref(), Some("twilio"));
    assert!(seen.verified.load(Ordering::SeqCst));
}

#[tokio::test]
async fn digest_twilio_flow_for_each_algorithm() {
    for (algorithms, index) in [
        (vec![Algorithm::Sha256, Algorithm::Md5], 0),
        (vec![Algorithm::Sha256, Algorithm::Md5], 1),
        (vec![Algorithm::Md5], 0),
    ] {
        let auth = HttpAuth::digest([twilio()])
            .unwrap()
            .algorithms(algorithms.clone())
            .unwrap()
            .nonce_secret(SECRET)
            .unwrap();
        let (response, seen) = call(layer(auth.clone()), webhook(None, TOKEN)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let offered = challenges(&response);
        assert_eq!(offered.len(), algorithms.len());
        assert!(
            offered
                .iter()
                .all(|c| c.contains("realm=\"twilio-webhook\""))
        );
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0);

        let header =
            digest_authorization(&offered[index], &twilio(), "POST", "/sms?x=1", "c0ffee").unwrap();
        // Another layer instance with the same secret: a retry on another replica.
        let (response, seen) = call(layer(auth), webhook(Some(&header), TOKEN)).await;
        assert_eq!(response.status(), StatusCode::OK, "{:?}", offered[index]);
        assert_eq!(seen.user.lock().unwrap().as_deref(), Some("twilio"));
    }
}

#[tokio::test]
async fn valid_credentials_with_a_bad_signature_are_403_and_report_only_relaxes_only_that() {
    let auth = HttpAuth::basic([twilio()]).unwrap();
    let good = basic_authorization(&twilio());
    let (response, seen) = call(layer(auth.clone()), webhook(Some(&good), "wrong token")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);

    let report_only = layer(auth.clone()).report_only();
    let (response, seen) = call(report_only.clone(), webhook(Some(&good), "wrong token")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(seen.unverified.load(Ordering::SeqCst));
    // Credentials stay enforced in report-only mode.
    let wrong = basic_authorization(&Credentials::new("twilio", "nope").unwrap());
    let (response, seen) = call(report_only, webhook(Some(&wrong), TOKEN)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn two_authorization_headers_are_401() {
    let auth = HttpAuth::basic([twilio()]).unwrap();
    let good = basic_authorization(&twilio());
    let mut request = webhook(Some(&good), TOKEN);
    request
        .headers_mut()
        .append("authorization", good.parse().unwrap());
    let (response, seen) = call(layer(auth), request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.extensions().get::<Rejection>(),
        Some(&Rejection::Unauthorized(AuthError::Repeated))
    );
    assert!(!challenges(&response).is_empty());
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_non_ascii_authorization_header_is_401_malformed_not_repeated() {
    let auth = HttpAuth::basic([twilio()]).unwrap();
    let mut request = webhook(None, TOKEN);
    request.headers_mut().insert(
        "authorization",
        http::HeaderValue::from_bytes("Basic dHdpbGlvOnPDqWNyZXQ= é".as_bytes()).unwrap(),
    );
    let (response, seen) = call(layer(auth), request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.extensions().get::<Rejection>(),
        Some(&Rejection::Unauthorized(AuthError::Malformed))
    );
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

/// A body that records whether anyone read it.
struct Watched(Arc<AtomicBool>, Option<Bytes>);

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0.store(true, Ordering::SeqCst);
        std::task::Poll::Ready(self.1.take().map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[tokio::test]
async fn the_body_of_an_unauthenticated_request_is_never_read() {
    let read = Arc::new(AtomicBool::new(false));
    let service = ServiceBuilder::new()
        .layer(layer(HttpAuth::basic([twilio()]).unwrap()).body_limit(8))
        .service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
    // Even a body over the limit is answered 401, not 413: nothing about it is looked at.
    let request = Request::post("/sms")
        .header("content-length", "100000")
        .body(Watched(Arc::clone(&read), Some(Bytes::from_static(b"a=1"))))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!read.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_custom_rejection_still_carries_the_challenges() {
    let custom = layer(HttpAuth::basic([twilio()]).unwrap()).rejection(|r: &Rejection| {
        let mut response = Response::new(format!("refused: {}", r.status()));
        *response.status_mut() = r.status();
        response
    });
    let (response, _) = call(custom, webhook(None, TOKEN)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&response).len(), 1);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "refused: 401 Unauthorized");
}

#[tokio::test]
async fn a_401_happens_before_the_replay_guard_so_the_retry_with_credentials_is_handled() {
    let auth = HttpAuth::basic([twilio()]).unwrap();
    let guarded = layer(auth).replay_guard(ReplayGuard::in_memory());
    let good = basic_authorization(&twilio());
    let (response, _) = call(guarded.clone(), webhook(None, TOKEN)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (response, seen) = call(guarded.clone(), webhook(Some(&good), TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    let (response, seen) = call(guarded, webhook(Some(&good), TOKEN)).await;
    assert_eq!(
        response.extensions().get::<Rejection>(),
        Some(&Rejection::Duplicate)
    );
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn debug_of_a_layer_with_credentials_shows_no_password() {
    let shown = format!("{:?}", layer(HttpAuth::digest([twilio()]).unwrap()));
    assert!(!shown.contains("correct horse"), "{shown}");
    assert!(shown.contains("twilio"));
}

#[tokio::test]
async fn an_answer_before_the_body_is_read_closes_an_http1_connection() {
    // The unread body leaves the connection unusable: a client that re-sends on it (curl
    // answering the challenge) must be told to open another.
    let auth = HttpAuth::basic([twilio()]).unwrap();
    let (response, _) = call(layer(auth.clone()), webhook(None, TOKEN)).await;
    assert_eq!(response.headers()["connection"], "close");
    let mut h2 = webhook(None, TOKEN);
    *h2.version_mut() = http::Version::HTTP_2;
    let (response, _) = call(layer(auth), h2).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("connection").is_none());
}
