//! The layer composes with the tower-http layers everyone stacks, in either order, on an axum
//! router: the rejection's body is the layer's own, never required to match the inner one.

mod support;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;
use twilio_webhook::middleware::TwilioWebhookLayer;
use twilio_webhook::{Validator, compute_signature};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";

fn twilio() -> TwilioWebhookLayer {
    TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url("https://hooks.example.com")
        .unwrap()
}

async fn sms() -> &'static str {
    "<Response/>"
}

fn signed() -> Request<Body> {
    let params = [("Body", "hello")];
    Request::post("/sms")
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "x-twilio-signature",
            compute_signature(TOKEN, "https://hooks.example.com/sms", &params),
        )
        .body(Body::from("Body=hello"))
        .unwrap()
}

fn forged() -> Request<Body> {
    Request::post("/sms")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body(Body::from("Body=hello"))
        .unwrap()
}

async fn check(app: Router) {
    let response = app.clone().oneshot(signed()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "<Response/>");
    let response = app.oneshot(forged()).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_layer_outside_trace_and_compression() {
    let app = Router::new().route("/sms", post(sms)).layer(
        ServiceBuilder::new()
            .layer(twilio())
            .layer(TraceLayer::new_for_http())
            .layer(CompressionLayer::new()),
    );
    check(app).await;
}

#[tokio::test]
async fn the_layer_inside_trace_and_compression() {
    let app = Router::new().route("/sms", post(sms)).layer(
        ServiceBuilder::new()
            .layer(TraceLayer::new_for_http())
            .layer(CompressionLayer::new())
            .layer(twilio()),
    );
    check(app).await;
}
