//! `strip_path_prefix`: a prefix the platform in front adds to the path Twilio requested (an
//! API Gateway stage) is removed before the URL is checked, outside Lambda too: with a public
//! URL or a derived one, inside `Router::nest`, and for Digest's `uri`.

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{Request, StatusCode};
use tower::ServiceExt;
use twilio_webhook::http_auth::{Credentials, HttpAuth, digest_authorization};
use twilio_webhook::middleware::{ConfigError, Rejection, Scheme, TwilioWebhookLayer};
use twilio_webhook::{Validator, compute_signature};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";

fn layer() -> TwilioWebhookLayer {
    TwilioWebhookLayer::new(Validator::new(TOKEN)).unwrap()
}

/// A form webhook to `path` on the server, signed for `signed_url` (what Twilio requested).
fn webhook(path: &str, signed_url: &str, body: &str) -> Request<Body> {
    let params = [("Body", body)];
    Request::post(path)
        .header("host", "internal.example:8080")
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "x-twilio-signature",
            compute_signature(TOKEN, signed_url, &params),
        )
        .body(Body::from(format!("Body={body}")))
        .unwrap()
}

/// A router answering every path under `/`, with `twilio` in front.
fn app(twilio: TwilioWebhookLayer) -> Router {
    Router::new()
        .fallback(post(|| async { "handled" }))
        .layer(twilio)
}

async fn status(app: &Router, request: Request<Body>) -> (StatusCode, Option<Rejection>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let rejection = response.extensions().get::<Rejection>().cloned();
    (response.status(), rejection)
}

#[test]
fn a_prefix_must_be_whole_segments_without_a_trailing_slash() {
    for bad in ["", "/", "prod", "/prod/", "/a//b", "/a?b", "/a#b", "/a b"] {
        match layer().strip_path_prefix(bad) {
            Err(ConfigError::InvalidPathPrefix { prefix, .. }) => assert_eq!(prefix, bad),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    for good in ["/prod", "/v1/prod", "/$default", "/stage-1"] {
        assert!(layer().strip_path_prefix(good).is_ok(), "{good}");
    }
    let message = layer().strip_path_prefix("/prod/").unwrap_err().to_string();
    assert!(message.contains("must not end with '/'"), "{message}");
}

#[tokio::test]
async fn a_rest_api_custom_domain_path_keeps_its_base_path_and_gains_the_stage() {
    // api.example.com/twilio -> stage prod: the function sees /prod/twilio/sms.
    let twilio = layer()
        .public_url("https://api.example.com")
        .unwrap()
        .strip_path_prefix("/prod")
        .unwrap();
    let app = app(twilio);
    let signed = "https://api.example.com/twilio/sms?x=1";
    let ok = status(&app, webhook("/prod/twilio/sms?x=1", signed, "hi")).await;
    assert_eq!(ok, (StatusCode::OK, None));
    let mut forged = webhook("/prod/twilio/sms?x=1", signed, "hi");
    *forged.body_mut() = Body::from("Body=ho");
    let (code, _) = status(&app, forged).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_http_api_mapping_whose_raw_path_lost_its_key() {
    // api.example.com/twilio -> stage prod, rawPath /prod/sms.
    let twilio = layer()
        .public_url("https://api.example.com/twilio")
        .unwrap()
        .strip_path_prefix("/prod")
        .unwrap();
    let app = app(twilio);
    let ok = status(
        &app,
        webhook("/prod/sms", "https://api.example.com/twilio/sms", "hi"),
    )
    .await;
    assert_eq!(ok, (StatusCode::OK, None));
    // Just the prefix: the public URL itself.
    let bare = status(
        &app,
        webhook("/prod", "https://api.example.com/twilio", "hi"),
    )
    .await;
    assert_eq!(bare, (StatusCode::OK, None));
    let query = status(
        &app,
        webhook("/prod?a=1", "https://api.example.com/twilio?a=1", "hi"),
    )
    .await;
    assert_eq!(query, (StatusCode::OK, None));
}

#[tokio::test]
async fn a_path_without_the_prefix_is_a_deployment_mistake_of_its_own() {
    let twilio = layer()
        .public_url("https://api.example.com")
        .unwrap()
        .strip_path_prefix("/prod")
        .unwrap();
    let app = app(twilio);
    for path in ["/twilio/sms", "/production/sms", "/pro", "/"] {
        let signed = format!("https://api.example.com{path}");
        let (code, rejection) = status(&app, webhook(path, &signed, "hi")).await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(rejection, Some(Rejection::PathPrefixMissing), "{path}");
    }
}

#[tokio::test]
async fn with_a_derived_url_the_prefix_goes_too() {
    let twilio = layer()
        .derive_url(Scheme::Http)
        .strip_path_prefix("/prod")
        .unwrap();
    let app = app(twilio);
    let ok = status(
        &app,
        webhook("/prod/sms", "http://internal.example:8080/sms", "hi"),
    )
    .await;
    assert_eq!(ok, (StatusCode::OK, None));
}

#[tokio::test]
async fn inside_router_nest_the_prefix_is_taken_from_the_full_path() {
    let twilio = layer()
        .public_url("https://api.example.com")
        .unwrap()
        .strip_path_prefix("/prod")
        .unwrap();
    let app = Router::new().nest(
        "/prod/twilio",
        Router::new().route("/sms", post(|| async { "handled" }).route_layer(twilio)),
    );
    let ok = status(
        &app,
        webhook(
            "/prod/twilio/sms",
            "https://api.example.com/twilio/sms",
            "hi",
        ),
    )
    .await;
    assert_eq!(ok, (StatusCode::OK, None));
}

#[tokio::test]
async fn digest_checks_the_uri_twilio_sent_without_the_prefix() {
    let pair = Credentials::new("twilio", "s3cret").unwrap();
    let auth = HttpAuth::digest([pair.clone()]).unwrap();
    let twilio = layer()
        .public_url("https://api.example.com")
        .unwrap()
        .strip_path_prefix("/prod")
        .unwrap()
        .http_auth(auth.clone());
    let app = app(twilio);
    let challenge = auth.check(None, "POST", "/twilio/sms").unwrap_err();
    // Twilio answers for the request-target it sent: /twilio/sms.
    let answer = digest_authorization(
        &challenge.challenges()[0],
        &pair,
        "POST",
        "/twilio/sms",
        "0a4f113b",
    )
    .unwrap();
    let mut request = webhook(
        "/prod/twilio/sms",
        "https://api.example.com/twilio/sms",
        "hi",
    );
    request
        .headers_mut()
        .insert("authorization", answer.parse().unwrap());
    assert_eq!(status(&app, request).await, (StatusCode::OK, None));
}
