//! A plain hyper 1.x server (no axum, no tower layer) that checks Twilio signatures by calling
//! `Validator::validate_body` itself: the "custom server" use of the core.
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
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use twilio_webhook::{Validator, compute_signature};

const DEMO_AUTH_TOKEN: &str = "demo-auth-token-do-not-use-in-production";
const BODY_LIMIT: usize = 64 * 1024;

async fn handle(
    validator: &Validator,
    public_url: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    // The URL Twilio requested: the configured base and the path and query as received.
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let url = format!("{public_url}{path_and_query}");
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let body = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return status(StatusCode::PAYLOAD_TOO_LARGE, ""),
    };
    let verdict = validator.validate_body(
        &url,
        header("content-type"),
        &body,
        header("x-twilio-signature").unwrap_or(""),
    );
    match verdict {
        Ok(()) => status(
            StatusCode::OK,
            "<Response><Message>verified</Message></Response>",
        ),
        Err(error) => {
            eprintln!("rejected {url}: {error}");
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://127.0.0.1:3001, checking against {public_url}");
    let url = format!("{public_url}/sms");
    let signature = compute_signature(&token, &url, &[("Body", "hello")]);
    println!("try:\n  curl -i {url} -H 'X-Twilio-Signature: {signature}' -d 'Body=hello'\n");

    let shared = std::sync::Arc::new((validator, public_url));
    loop {
        let (stream, _) = listener.accept().await?;
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared.0, &shared.1, request).await) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {error}");
            }
        });
    }
}
