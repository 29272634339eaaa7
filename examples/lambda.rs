//! Twilio webhooks on AWS Lambda: the layer, unchanged, in front of a handler that
//! `lambda_http::run` serves (API Gateway REST or HTTP API, a Function URL, or an ALB).
//!
//! Built and deployed as any Rust function (cargo-lambda style):
//!
//! ```sh
//! cargo lambda build --release --example lambda
//! ```
//!
//! It cannot run outside Lambda (it waits for the Lambda runtime API). Configuration, from the
//! function's environment:
//! - `TWILIO_AUTH_TOKEN` (required): the account's primary auth token;
//! - `PUBLIC_URL` (recommended): the base of the URL configured in Twilio, e.g.
//!   `https://api.example.com` (without it, the URL is derived from `Host`, over https);
//! - `STRIP_PATH_PREFIX`: the prefix the platform adds to the path Twilio requested, e.g.
//!   `/prod` for a REST API's stage behind a custom domain (see the README's "AWS Lambda"
//!   table);
//! - `HTTP_LISTENER=1`: an ALB HTTP listener (Twilio calls `http://`).
//!
//! Duplicates: the in-memory guard is per instance, and Lambda runs many; give it Redis
//! (`RedisStore`, feature `redis`) or implement `ReplayStore` for your database.

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::Full;
use tower::ServiceBuilder;
use twilio_webhook::middleware::{Scheme, TwilioWebhookLayer};
use twilio_webhook::{Validator, form_params};

/// Reached only by verified webhooks; the body is already buffered.
async fn sms(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, lambda_http::Error> {
    use http_body_util::BodyExt;
    let body = request.into_body().collect().await?.to_bytes();
    let params = form_params(&body).unwrap_or_default();
    let text = params
        .iter()
        .find(|(name, _)| name == "Body")
        .map_or(0, |(_, value)| value.chars().count());
    let twiml = format!("<Response><Message>Got {text} characters</Message></Response>");
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Full::new(Bytes::from(twiml)))?)
}

fn layer() -> Result<TwilioWebhookLayer, lambda_http::Error> {
    let token = std::env::var("TWILIO_AUTH_TOKEN")
        .map_err(|_| "TWILIO_AUTH_TOKEN is not set: the account's primary auth token")?;
    let mut twilio = TwilioWebhookLayer::new(Validator::new(token))?;
    twilio = match std::env::var("PUBLIC_URL") {
        Ok(base) => twilio.public_url(&base)?,
        Err(_) if std::env::var("HTTP_LISTENER").as_deref() == Ok("1") => {
            twilio.derive_url(Scheme::Http)
        }
        Err(_) => twilio,
    };
    if let Ok(prefix) = std::env::var("STRIP_PATH_PREFIX") {
        twilio = twilio.strip_path_prefix(&prefix)?;
    }
    Ok(twilio)
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // CloudWatch shows each rejection and why.
    tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .init();
    let service = ServiceBuilder::new().layer(layer()?).service_fn(sms);
    lambda_http::run(service).await
}
