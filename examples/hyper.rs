//! A plain hyper 1.x server (no axum, no tower layer) that checks Twilio signatures by calling
//! `Validator::verify_request` itself: the "custom server" use of the core (feature `http`).
//!
//! ```sh
//! cargo run --example hyper
//! ```
//!
//! It listens on 127.0.0.1:3001, checks every request against `PUBLIC_URL` (default
//! `http://127.0.0.1:3001`) with `TWILIO_AUTH_TOKEN` (default: a public demo token), and prints
//! a signed `curl` command to try.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use twilio_webhook::{Validator, compute_signature};

mod serve;

const DEMO_AUTH_TOKEN: &str = "demo-auth-token-do-not-use-in-production";
const BODY_LIMIT: usize = 64 * 1024;
/// Twilio sends the whole request at once: a body still arriving after this is a slow client.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn handle(
    validator: &Validator,
    public_url: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    // The URL Twilio requested: the configured base and the path and query as received.
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let url = format!("{public_url}{path_and_query}");
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, BODY_LIMIT).collect());
    let Ok(body) = read.await else {
        return status(StatusCode::REQUEST_TIMEOUT, "");
    };
    let body = match body {
        Ok(body) => body.to_bytes(),
        // Too large is 413; a client that went away or sent a broken body is 400.
        Err(error) if error.is::<LengthLimitError>() => {
            return status(StatusCode::PAYLOAD_TOO_LARGE, "");
        }
        Err(_) => return status(StatusCode::BAD_REQUEST, ""),
    };
    // The signature, shared-key settings and content type are read from the headers by the
    // core itself (each at most once, as the layer does).
    let verdict = validator.verify_request(&url, &parts, &body);
    match verdict {
        Ok(_) => status(
            StatusCode::OK,
            "<Response><Message>verified</Message></Response>",
        ),
        Err(error) => {
            // The path only (the base is configuration, and may not be shown), cut short: it
            // is chosen by whoever sent the request.
            let path: String = path_and_query.chars().take(100).collect();
            eprintln!("rejected {} {path}: {error}", parts.method);
            status(StatusCode::FORBIDDEN, "")
        }
    }
}

fn status(code: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = code;
    response
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("TWILIO_AUTH_TOKEN").unwrap_or_else(|_| DEMO_AUTH_TOKEN.into());
    let public_url = std::env::var("PUBLIC_URL").unwrap_or_else(|_| "http://127.0.0.1:3001".into());
    let validator = Validator::new(&token);
    let listener = serve::listen("127.0.0.1:3001").await?;
    println!("listening on http://127.0.0.1:3001");
    if token == DEMO_AUTH_TOKEN {
        let url = format!("{public_url}/sms");
        let signature = compute_signature(&token, &url, &[("Body", "hello")]);
        println!("try:\n  curl -i {url} -H 'X-Twilio-Signature: {signature}' -d 'Body=hello'\n");
    }

    let shared = std::sync::Arc::new((validator, public_url));
    let service = tower::service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(&shared.0, &shared.1, request).await) }
    });
    // hyper-util's server with a header-read timeout and a connection age bound: see
    // examples/serve. The body is bounded by BODY_LIMIT and BODY_TIMEOUT above.
    serve::serve(listener, service, None, std::future::pending()).await?;
    Ok(())
}
