//! The layer in process (`ServiceExt::oneshot`): every builder option, every rejection kind.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use support::{chunked, form_body, sha256_hex, streamed};
use tower::{ServiceBuilder, ServiceExt};
use twilio_webhook::middleware::{
    ConfigError, Rejection, ResponseBody, Scheme, TwilioWebhookLayer, Unverified,
};
use twilio_webhook::{
    KeyUsed, UrlVariant, ValidationError, Validator, Verified, compute_signature,
};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const FORM: &str = "application/x-www-form-urlencoded";

/// What the inner service saw.
#[derive(Default)]
struct Seen {
    calls: AtomicUsize,
    body: std::sync::Mutex<Vec<u8>>,
    verified: std::sync::Mutex<Option<Verified>>,
    unverified: std::sync::Mutex<Option<Unverified>>,
}

async fn call(
    layer: TwilioWebhookLayer<impl twilio_webhook::middleware::RejectionResponse>,
    request: Request<Full<Bytes>>,
) -> (Response<ResponseBody<Full<Bytes>>>, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let inner_seen = Arc::clone(&seen);
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(move |request: Request<Full<Bytes>>| {
                let seen = Arc::clone(&inner_seen);
                async move {
                    seen.calls.fetch_add(1, Ordering::SeqCst);
                    *seen.verified.lock().unwrap() =
                        request.extensions().get::<Verified>().cloned();
                    *seen.unverified.lock().unwrap() =
                        request.extensions().get::<Unverified>().cloned();
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    *seen.body.lock().unwrap() = body.to_vec();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("handled"))))
                }
            });
    let response = service.oneshot(request).await.unwrap();
    (response, seen)
}

fn signed_form(url: &str, path: &str, params: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let body = form_body(params);
    Request::post(path)
        .header("host", "internal:8080")
        .header("content-type", FORM)
        .header("x-twilio-signature", compute_signature(TOKEN, url, params))
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn layer() -> TwilioWebhookLayer {
    TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url("https://hooks.example.com")
        .unwrap()
}

const PARAMS: &[(&str, &str)] = &[("From", "+14155550123"), ("Body", "Hi & bye = 100%")];

#[tokio::test]
async fn a_valid_form_webhook_reaches_the_handler_with_its_body_and_a_verified_mark() {
    let request = signed_form("https://hooks.example.com/sms?x=1", "/sms?x=1", PARAMS);
    let (response, seen) = call(layer(), request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        seen.body.lock().unwrap().as_slice(),
        b"From=%2B14155550123&Body=Hi+%26+bye+%3D+100%25"
    );
    let verified = seen.verified.lock().unwrap().clone().unwrap();
    assert_eq!(verified.url_variant, UrlVariant::AsReceived);
    assert_eq!(verified.key, KeyUsed::AuthToken { index: 0 });
}

#[tokio::test]
async fn a_forged_webhook_is_403_with_an_empty_body_and_the_reason_attached() {
    let mut request = signed_form("https://hooks.example.com/sms", "/sms", PARAMS);
    *request.body_mut() = Full::new(Bytes::from("From=%2B14155550123&Body=forged"));
    let (response, seen) = call(layer(), request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::SignatureMismatch)
    );
    assert_eq!(
        response.extensions().get::<Rejection>(),
        Some(&Rejection::Invalid(ValidationError::SignatureMismatch))
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty());
}

#[tokio::test]
async fn every_kind_of_bad_header_is_refused() {
    let good = compute_signature(TOKEN, "https://hooks.example.com/sms", PARAMS);
    for (signature, error) in [
        (None, ValidationError::MissingSignature),
        (Some(""), ValidationError::MissingSignature),
        (Some("not base64!"), ValidationError::MalformedSignature),
        (
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            ValidationError::SignatureMismatch,
        ),
    ] {
        let mut request = signed_form("https://hooks.example.com/sms", "/sms", PARAMS);
        request.headers_mut().remove("x-twilio-signature");
        if let Some(signature) = signature {
            request
                .headers_mut()
                .insert("x-twilio-signature", signature.parse().unwrap());
        }
        let (response, seen) = call(layer(), request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{signature:?}");
        assert_eq!(response.extensions().get::<ValidationError>(), Some(&error));
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    }
    // Two signature headers: which one was meant cannot be known.
    let mut request = signed_form("https://hooks.example.com/sms", "/sms", PARAMS);
    request
        .headers_mut()
        .append("x-twilio-signature", good.parse().unwrap());
    let (response, _) = call(layer(), request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Said as what it is, not as "not a Base64-encoded HMAC".
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::RepeatedHeader)
    );
    // Two Content-Type headers too.
    let mut request = signed_form("https://hooks.example.com/sms", "/sms", PARAMS);
    request
        .headers_mut()
        .append("content-type", "text/plain".parse().unwrap());
    let (response, _) = call(layer(), request).await;
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::RepeatedHeader)
    );
}

#[tokio::test]
async fn wrong_path_wrong_port_and_trailing_slash_are_refused() {
    for path in ["/sms/", "/other", "/sms?x=1", "/SMS"] {
        let request = signed_form("https://hooks.example.com/sms", path, PARAMS);
        let (response, _) = call(layer(), request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let request = signed_form("https://hooks.example.com:8443/sms", "/sms", PARAMS);
    let (response, _) = call(layer(), request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The default port is tried both ways, as Twilio's SDKs do.
    let request = signed_form("https://hooks.example.com:443/sms", "/sms", PARAMS);
    let (response, seen) = call(layer(), request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        seen.verified.lock().unwrap().as_ref().unwrap().url_variant,
        UrlVariant::PortToggled
    );
}

#[tokio::test]
async fn public_url_with_a_path_prefix() {
    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url("https://example.com/api")
        .unwrap();
    let request = signed_form("https://example.com/api/twilio/sms", "/twilio/sms", PARAMS);
    let (response, _) = call(layer, request).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn derived_url_uses_host_and_the_configured_scheme() {
    let https = TwilioWebhookLayer::new(Validator::new(TOKEN)).unwrap();
    let request = signed_form("https://internal:8080/sms", "/sms", PARAMS);
    assert_eq!(call(https, request).await.0.status(), StatusCode::OK);

    let http = TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .derive_url(Scheme::Http);
    let request = signed_form("https://internal:8080/sms", "/sms", PARAMS);
    assert_eq!(
        call(http.clone(), request).await.0.status(),
        StatusCode::FORBIDDEN
    );
    let request = signed_form("http://internal:8080/sms", "/sms", PARAMS);
    assert_eq!(call(http, request).await.0.status(), StatusCode::OK);
}

#[tokio::test]
async fn forwarded_headers_change_nothing_unless_trusted() {
    let spoofed = |layer| async move {
        let mut request = signed_form("https://hooks.example.com/sms", "/sms", PARAMS);
        request
            .headers_mut()
            .insert("x-forwarded-host", "hooks.example.com".parse().unwrap());
        request
            .headers_mut()
            .insert("x-forwarded-proto", "https".parse().unwrap());
        call(layer, request).await.0.status()
    };
    let untrusting = TwilioWebhookLayer::new(Validator::new(TOKEN)).unwrap();
    assert_eq!(spoofed(untrusting).await, StatusCode::FORBIDDEN);
    let trusting = TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .trust_forwarded_headers();
    assert_eq!(spoofed(trusting).await, StatusCode::OK);
}

#[tokio::test]
async fn json_webhooks_are_checked_through_body_sha256() {
    let body = br#"{"CallSid":"CA123","Status":"completed"}"#;
    let hash = sha256_hex(body);
    let path = format!("/events?bodySHA256={hash}");
    let url = format!("https://hooks.example.com{path}");
    let signature = compute_signature(TOKEN, &url, &[]);
    let request = |body: &'static [u8]| {
        Request::post(path.as_str())
            .header("content-type", "application/json")
            .header("x-twilio-signature", signature.as_str())
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    };
    let (response, seen) = call(layer(), request(body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.body.lock().unwrap().as_slice(), body);

    let (response, seen) = call(layer(), request(br#"{"CallSid":"CA666"}"#)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::BodyHashMismatch)
    );
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn get_webhooks_sign_the_url_with_its_query() {
    let url = "https://hooks.example.com/voice?CallSid=CA1&From=%2B1415";
    let request = Request::get("/voice?CallSid=CA1&From=%2B1415")
        .header("x-twilio-signature", compute_signature(TOKEN, url, &[]))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(call(layer(), request).await.0.status(), StatusCode::OK);
}

#[tokio::test]
async fn websocket_upgrades_are_checked_over_wss() {
    let signature = compute_signature(TOKEN, "wss://hooks.example.com/media", &[]);
    let request = Request::get("/media")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("x-twilio-signature", signature.as_str())
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(call(layer(), request).await.0.status(), StatusCode::OK);
    // The same signature on a plain GET (https://) does not verify.
    let request = Request::get("/media")
        .header("x-twilio-signature", signature.as_str())
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(
        call(layer(), request).await.0.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_oversized_body_is_413_before_or_while_reading() {
    let layer = layer().body_limit(16);
    // Declared too large: refused from the header, the body is never read.
    let request = signed_form("https://hooks.example.com/sms", "/sms", PARAMS);
    let (response, seen) = call(layer.clone(), request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.extensions().get::<Rejection>(),
        Some(&Rejection::PayloadTooLarge { limit: 16 })
    );
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);

    // No Content-Length (streamed): refused once the limit is crossed.
    let chunks: Vec<Result<http_body::Frame<Bytes>, Infallible>> = (0..10)
        .map(|_| Ok(http_body::Frame::data(Bytes::from_static(b"abcdef"))))
        .collect();
    let request = Request::post("/sms")
        .header("content-type", FORM)
        .body(streamed(chunks))
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// A body error while reading is a 400, and the handler is not called.
#[tokio::test]
async fn an_unreadable_body_is_400() {
    let chunks: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = vec![
        Ok(http_body::Frame::data(Bytes::from_static(b"From=1"))),
        Err(std::io::Error::other("connection reset")),
    ];
    let request = Request::post("/sms")
        .header("content-type", FORM)
        .body(streamed(chunks))
        .unwrap();
    let called = Arc::new(AtomicUsize::new(0));
    let inner_called = Arc::clone(&called);
    let service =
        ServiceBuilder::new()
            .layer(layer())
            .service_fn(move |_: Request<Full<Bytes>>| {
                inner_called.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
            });
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.extensions().get::<Rejection>(),
        Some(&Rejection::BodyUnreadable)
    );
    assert_eq!(called.load(Ordering::SeqCst), 0);
}

/// A body that arrives in many small chunks is verified as a whole.
#[tokio::test]
async fn a_body_in_many_small_chunks_is_reassembled() {
    let body = form_body(PARAMS);
    let request = Request::post("/sms")
        .header("content-type", FORM)
        .header(
            "x-twilio-signature",
            compute_signature(TOKEN, "https://hooks.example.com/sms", PARAMS),
        )
        .body(chunked(body.as_bytes(), 3))
        .unwrap();
    let service = ServiceBuilder::new().layer(layer()).service_fn(
        |request: Request<Full<Bytes>>| async move {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            Ok::<_, Infallible>(Response::new(Full::new(body)))
        },
    );
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(echoed, body.as_bytes());
}

#[tokio::test]
async fn report_only_passes_failures_on_marked_unverified() {
    let layer = layer().report_only();
    let mut request = signed_form("https://hooks.example.com/sms", "/sms", PARAMS);
    request.headers_mut().remove("x-twilio-signature");
    let (response, seen) = call(layer.clone(), request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    assert!(seen.verified.lock().unwrap().is_none());
    assert_eq!(
        seen.unverified.lock().unwrap().clone(),
        Some(Unverified(ValidationError::MissingSignature))
    );
    // A valid request is still marked verified.
    let request = signed_form("https://hooks.example.com/sms", "/sms", PARAMS);
    let (_, seen) = call(layer, request).await;
    assert!(seen.verified.lock().unwrap().is_some());
    assert!(seen.unverified.lock().unwrap().is_none());
}

#[tokio::test]
async fn a_custom_rejection_response_replaces_the_default() {
    let layer = layer().rejection(|rejection: &Rejection| {
        let mut response = Response::new("<Response/>");
        *response.status_mut() = match rejection {
            Rejection::Invalid(ValidationError::MissingSignature) => StatusCode::UNAUTHORIZED,
            other => other.status(),
        };
        response
    });
    let mut request = signed_form("https://hooks.example.com/sms", "/sms", PARAMS);
    request.headers_mut().remove("x-twilio-signature");
    let (response, _) = call(layer, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The reason is attached to custom responses too.
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::MissingSignature)
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "<Response/>");
}

#[test]
fn configuration_mistakes_fail_when_the_layer_is_built() {
    assert_eq!(
        TwilioWebhookLayer::new(Validator::new(""))
            .err()
            .map(|e| e.to_string()),
        Some(ConfigError::NoUsableKey.to_string())
    );
    assert!(
        ConfigError::NoUsableKey
            .to_string()
            .contains("API key secret")
    );
    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN)).unwrap();
    assert_eq!(
        layer.clone().public_url("https://example.com/").err(),
        Some(ConfigError::PublicUrlTrailingSlash {
            url: "https://example.com/".into()
        })
    );
    assert_eq!(
        layer.public_url("hooks.example.com").err(),
        Some(ConfigError::InvalidPublicUrl {
            url: "hooks.example.com".into(),
            reason: twilio_webhook::InvalidUrl::MissingScheme
        })
    );
}

#[test]
fn debug_of_a_layer_never_shows_the_token() {
    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN)).unwrap();
    let shown = format!("{layer:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(shown.contains("redacted"));
}

#[tokio::test]
async fn a_missing_host_in_derive_mode_is_refused_not_guessed() {
    let request = Request::post("/sms")
        .header("content-type", FORM)
        .header(
            "x-twilio-signature",
            compute_signature(TOKEN, "https://localhost/sms", PARAMS),
        )
        .body(Full::new(Bytes::from("From=1")))
        .unwrap();
    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN)).unwrap();
    let (response, _) = call(layer, request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::InvalidUrl(
            twilio_webhook::InvalidUrl::EmptyHost
        ))
    );
}

#[tokio::test]
async fn unsigned_and_malformed_bodies_are_refused_by_the_layer() {
    let signature = compute_signature(TOKEN, "https://hooks.example.com/sms", PARAMS);
    for (content_type, body, error) in [
        (
            Some("application/json"),
            &br#"{"Body":"not covered by any signature"}"#[..],
            ValidationError::UnsignedBody,
        ),
        (None, b"From=%2B1", ValidationError::UnsignedBody),
        (
            Some(FORM),
            b"From=%ZZ",
            ValidationError::MalformedBody(twilio_webhook::MalformedBody::InvalidPercentEncoding),
        ),
        (
            Some(FORM),
            b"From=%FF",
            ValidationError::MalformedBody(twilio_webhook::MalformedBody::InvalidUtf8),
        ),
    ] {
        let mut request = Request::post("/sms").header("x-twilio-signature", signature.as_str());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request.body(Full::new(Bytes::from_static(body))).unwrap();
        let (response, seen) = call(layer(), request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{content_type:?}");
        assert_eq!(response.extensions().get::<ValidationError>(), Some(&error));
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    }
}

/// The service is usable wherever tower and axum need it to be.
#[test]
fn the_service_and_its_future_are_send_sync_and_clone() {
    fn assert_service<S: Clone + Send + Sync + 'static>(_: &S) {}
    fn assert_send<F: Send>(_: &F) {}
    let service =
        ServiceBuilder::new()
            .layer(layer())
            .service_fn(|_: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            });
    assert_service(&service);
    let mut clone = service.clone();
    let future = tower::Service::call(&mut clone, Request::new(Full::new(Bytes::new())));
    assert_send(&future);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Whatever the headers, path and body, the layer answers (never panics, never `Err`) and
    /// never lets an unsigned request through.
    #[test]
    fn arbitrary_requests_are_answered_and_never_passed_unsigned(
        path in "/[ -~]{0,30}",
        host in "[ -~]{0,30}",
        forwarded in "[ -~]{0,40}",
        content_type in "[ -~]{0,40}",
        signature in "[ -~]{0,50}",
        settings in "[ -~]{0,50}",
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        trust in proptest::prelude::any::<bool>(),
    ) {
        let Ok(uri) = path.parse::<http::Uri>() else { return Ok(()) };
        let mut builder = Request::post(uri);
        for (name, value) in [
            ("host", &host),
            ("forwarded", &forwarded),
            ("x-forwarded-host", &forwarded),
            ("content-type", &content_type),
            ("x-twilio-signature", &signature),
            ("x-twilio-webhooks-signature-settings", &settings),
        ] {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                builder = builder.header(name, value);
            }
        }
        let request = builder.body(Full::new(Bytes::from(body))).unwrap();
        let layer = if trust {
            TwilioWebhookLayer::new(Validator::new(TOKEN)).unwrap().trust_forwarded_headers()
        } else {
            layer()
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (response, seen) = runtime.block_on(call(layer, request));
        proptest::prop_assert!(response.status().is_client_error());
        proptest::prop_assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    }
}

/// A body that sends its first bytes and then nothing, like a client sending a byte a second.
struct Stalled(Option<Bytes>);

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        match self.0.take() {
            Some(bytes) => std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes)))),
            None => std::task::Poll::Pending,
        }
    }
}

#[tokio::test]
async fn a_body_that_stalls_is_408_after_the_body_timeout() {
    let called = Arc::new(AtomicUsize::new(0));
    let inner_called = Arc::clone(&called);
    let service = ServiceBuilder::new()
        .layer(layer().body_timeout(std::time::Duration::from_millis(100)))
        .service_fn(move |_: Request<Full<Bytes>>| {
            inner_called.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        });
    let request = Request::post("/sms")
        .header("content-type", FORM)
        .body(Stalled(Some(Bytes::from_static(b"From=%2B1"))))
        .unwrap();
    let started = std::time::Instant::now();
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(10), service.oneshot(request))
            .await
            .expect("the layer gave up on the stalled body")
            .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(
        response.extensions().get::<Rejection>(),
        Some(&Rejection::BodyTimeout {
            after: std::time::Duration::from_millis(100)
        })
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));
    assert_eq!(called.load(Ordering::SeqCst), 0);
    assert_eq!(
        twilio_webhook::middleware::DEFAULT_BODY_TIMEOUT,
        std::time::Duration::from_secs(10)
    );
}

#[tokio::test]
async fn a_media_streams_handshake_signed_with_a_trailing_slash_passes() {
    // Twilio's docs: WSS handshakes may be signed with '/' appended to the path.
    let signature = compute_signature(TOKEN, "wss://hooks.example.com/media/", &[]);
    let request = Request::get("/media")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("x-twilio-signature", signature.as_str())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (response, seen) = call(layer(), request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        seen.verified.lock().unwrap().as_ref().unwrap().url_variant,
        twilio_webhook::UrlVariant::TrailingSlash
    );
    // An https request signed with the extra slash is not a WebSocket: refused.
    let signature = compute_signature(TOKEN, "https://hooks.example.com/sms/", &[]);
    let request = Request::get("/sms")
        .header("x-twilio-signature", signature.as_str())
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(
        call(layer(), request).await.0.status(),
        StatusCode::FORBIDDEN
    );
}

#[test]
fn a_public_url_with_credentials_is_a_config_error_and_debug_never_shows_them() {
    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN)).unwrap();
    assert_eq!(
        layer
            .clone()
            .public_url("https://twilio:hunter2@hooks.example.com")
            .err(),
        Some(ConfigError::PublicUrlHasCredentials {
            url: "https://***@hooks.example.com".into()
        })
    );
    // A closure rejection does not stop the layer from being Debug, and nothing secret shows.
    let layer = layer
        .public_url("https://hooks.example.com")
        .unwrap()
        .rejection(|r: &Rejection| {
            let mut response = Response::new(Bytes::new());
            *response.status_mut() = r.status();
            response
        });
    let shown = format!("{layer:?}");
    assert!(
        !shown.contains(TOKEN) && !shown.contains("hunter2"),
        "{shown}"
    );
    assert!(shown.contains("hooks.example.com"), "{shown}");
}
