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

mod extractors {
    use super::*;
    use twilio_webhook::http_auth::{Authenticated, Credentials, HttpAuth, basic_authorization};
    use twilio_webhook::{Unverified, Verified};

    async fn verified(v: Verified) -> String {
        format!("{}", v.url_variant)
    }

    async fn maybe_unverified(u: Option<Unverified>) -> String {
        match u {
            Some(Unverified(error)) => format!("unverified: {error}"),
            None => "verified".into(),
        }
    }

    #[tokio::test]
    async fn verified_is_an_extractor_and_fails_closed_without_the_layer() {
        let app = Router::new()
            .route("/sms", post(verified))
            .route_layer(twilio())
            .route("/unguarded", post(verified));
        let response = app.clone().oneshot(signed()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "as received");
        // A route the layer does not cover: 500, never a pass.
        let unguarded = Request::post("/unguarded").body(Body::empty()).unwrap();
        let response = app.oneshot(unguarded).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn option_unverified_tells_report_only_failures_apart() {
        let app = Router::new()
            .route("/sms", post(maybe_unverified))
            .route_layer(twilio().report_only())
            .route("/unguarded", post(maybe_unverified));
        let text = |response: axum::response::Response| async move {
            String::from_utf8(
                response
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .to_vec(),
            )
            .unwrap()
        };
        let ok = app.clone().oneshot(signed()).await.unwrap();
        assert_eq!(text(ok).await, "verified");
        let forged = app.clone().oneshot(forged()).await.unwrap();
        assert_eq!(forged.status(), StatusCode::OK);
        assert!(text(forged).await.starts_with("unverified: "));
        let unguarded = Request::post("/unguarded").body(Body::empty()).unwrap();
        let response = app.oneshot(unguarded).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn the_layer_on_the_method_router_keeps_404_and_405() {
        let unsigned = |method: &str, path: &str| {
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap()
        };
        // The layer on the method router's routes: unknown paths and wrong methods are answered
        // by axum before it, as 404 and 405.
        let route_layer = Router::new().route("/sms", post(verified).route_layer(twilio()));
        let status = |app: &Router, m, p| {
            let app = app.clone();
            let request = unsigned(m, p);
            async move { app.oneshot(request).await.unwrap().status() }
        };
        assert_eq!(
            status(&route_layer, "POST", "/nope").await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(&route_layer, "GET", "/sms").await,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(&route_layer, "POST", "/sms").await,
            StatusCode::FORBIDDEN
        );
        // Router::route_layer keeps 404 only.
        let router_route_layer = Router::new()
            .route("/sms", post(verified))
            .route_layer(twilio());
        assert_eq!(
            status(&router_route_layer, "POST", "/nope").await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(&router_route_layer, "GET", "/sms").await,
            StatusCode::FORBIDDEN
        );
        // With Router::layer, a wrong path or method looks like a signature problem.
        let layer = Router::new().route("/sms", post(verified)).layer(twilio());
        assert_eq!(status(&layer, "POST", "/nope").await, StatusCode::FORBIDDEN);
        assert_eq!(status(&layer, "GET", "/sms").await, StatusCode::FORBIDDEN);
    }

    async fn maybe_verified(v: Option<Verified>) -> String {
        match v {
            Some(v) => format!("verified over {}", v.url_variant),
            None => "let through unverified".into(),
        }
    }

    async fn user(who: Authenticated) -> String {
        who.user().to_owned()
    }

    async fn maybe_user(who: Option<Authenticated>) -> String {
        who.map_or("no HTTP authentication".into(), |who| who.user().to_owned())
    }

    async fn text(response: axum::response::Response) -> (StatusCode, String) {
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn option_verified_is_an_extractor_none_in_report_only_and_500_without_the_layer() {
        let app = Router::new()
            .route("/sms", post(maybe_verified))
            .route_layer(twilio().report_only())
            .route("/unguarded", post(maybe_verified));
        let ok = text(app.clone().oneshot(signed()).await.unwrap()).await;
        assert_eq!(ok, (StatusCode::OK, "verified over as received".into()));
        let forged = text(app.clone().oneshot(forged()).await.unwrap()).await;
        assert_eq!(forged, (StatusCode::OK, "let through unverified".into()));
        let unguarded = Request::post("/unguarded").body(Body::empty()).unwrap();
        let response = app.oneshot(unguarded).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn authenticated_is_an_extractor_of_the_user_http_authentication_let_in() {
        let credentials = Credentials::new("twilio", "s3cret").unwrap();
        let with_auth = twilio().http_auth(HttpAuth::basic([credentials.clone()]).unwrap());
        let app = Router::new()
            .route("/sms", post(user))
            .route_layer(with_auth.clone())
            .route("/maybe", post(maybe_user).route_layer(with_auth))
            .route("/no-auth", post(user).route_layer(twilio()))
            .route("/maybe-no-auth", post(maybe_user).route_layer(twilio()))
            .route("/unguarded", post(maybe_user));
        let at = |path: &str, auth: bool| {
            let (mut parts, body) = signed().into_parts();
            parts.uri = path.parse().unwrap();
            // Signed for the path it goes to.
            let params = [("Body", "hello")];
            parts.headers.insert(
                "x-twilio-signature",
                compute_signature(TOKEN, &format!("https://hooks.example.com{path}"), &params)
                    .parse()
                    .unwrap(),
            );
            if auth {
                parts.headers.insert(
                    "authorization",
                    basic_authorization(&credentials).parse().unwrap(),
                );
            }
            Request::from_parts(parts, body)
        };
        let ok = text(app.clone().oneshot(at("/sms", true)).await.unwrap()).await;
        assert_eq!(ok, (StatusCode::OK, "twilio".into()));
        let ok = text(app.clone().oneshot(at("/maybe", true)).await.unwrap()).await;
        assert_eq!(ok, (StatusCode::OK, "twilio".into()));
        // Without credentials the layer answers 401 before any handler.
        let challenged = app.clone().oneshot(at("/sms", false)).await.unwrap();
        assert_eq!(challenged.status(), StatusCode::UNAUTHORIZED);
        // A layer without HTTP authentication: Authenticated fails closed, the Option is None.
        let missing = app.clone().oneshot(at("/no-auth", false)).await.unwrap();
        assert_eq!(missing.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let none = text(
            app.clone()
                .oneshot(at("/maybe-no-auth", false))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(none, (StatusCode::OK, "no HTTP authentication".into()));
        // No layer at all: 500 for the Option too.
        let unguarded = app.oneshot(at("/unguarded", true)).await.unwrap();
        assert_eq!(unguarded.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}

#[test]
fn the_service_gives_its_inner_service_back_as_tower_http_services_do() {
    use tower::Layer;

    #[derive(Clone, Debug, PartialEq)]
    struct Inner(u32);

    let mut service = twilio().layer(Inner(7));
    assert_eq!(service.get_ref(), &Inner(7));
    service.get_mut().0 = 8;
    assert_eq!(service.into_inner(), Inner(8));
}
