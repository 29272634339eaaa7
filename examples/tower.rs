//! The layer on a bare `tower::service_fn`, served by hyper through hyper-util: the use for
//! any tower stack that is not axum.
//!
//! ```sh
//! cargo run --example tower
//! ```
//!
//! It listens on 127.0.0.1:3002, checks requests against `http://127.0.0.1:3002` with a
//! public demo token, and prints a signed `curl` command to try.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::ServiceBuilder;
use twilio_webhook::middleware::TwilioWebhookLayer;
use twilio_webhook::{Validator, Verified, compute_signature};

mod serve;

const DEMO_AUTH_TOKEN: &str = "demo-auth-token-do-not-use-in-production";

/// Reached only by requests with a valid signature; the body is already buffered.
async fn handle(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let variant = request
        .extensions()
        .get::<Verified>()
        .map(|verified| verified.url_variant.to_string())
        .unwrap_or_default();
    let body = request.into_body().collect().await?.to_bytes();
    let reply = format!("verified ({variant}), {} bytes\n", body.len());
    Ok(Response::new(Full::new(Bytes::from(reply))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let public_url = "http://127.0.0.1:3002";
    let service = ServiceBuilder::new()
        .layer(TwilioWebhookLayer::new(Validator::new(DEMO_AUTH_TOKEN))?.public_url(public_url)?)
        .service_fn(handle);

    let listener = serve::listen("127.0.0.1:3002").await?;
    let url = format!("{public_url}/status");
    let signature = compute_signature(DEMO_AUTH_TOKEN, &url, &[("CallStatus", "completed")]);
    println!("listening on {public_url}; try:");
    println!("  curl -i {url} -H 'X-Twilio-Signature: {signature}' -d 'CallStatus=completed'\n");
    // hyper-util's server with a header-read timeout and a connection age bound: see
    // examples/serve.
    serve::serve(listener, service, None, std::future::pending()).await?;
    Ok(())
}
