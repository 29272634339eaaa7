//! An axum app whose Twilio webhooks are protected by one layer. The main job of this crate.
//!
//! ```sh
//! cargo run --example server --features redis
//! ```
//!
//! Configuration, all optional (the defaults run on a fresh machine):
//! - `TWILIO_AUTH_TOKEN`: the account's primary auth token (default: a public demo token,
//!   with a warning: anyone can sign requests for it);
//! - `BIND`: the address to listen on (default `127.0.0.1:3000`);
//! - `PUBLIC_URL`: the base URL configured in Twilio's console, without credentials (default
//!   `http://` or `https://` and `BIND`);
//! - `TLS_CERT`, `TLS_KEY`: PEM certificate chain and private key: serve HTTPS (rustls);
//! - `BASIC_AUTH=user:password` or `DIGEST_AUTH=user:password`: require HTTP authentication
//!   in front of the signature, as Twilio performs it (configure the same credentials in the
//!   webhook URL in Twilio); `DIGEST_NONCE_SECRET` (32+ bytes) shares Digest nonces between
//!   instances; `DIGEST_ALGORITHMS` (default `SHA-256,MD5`) chooses the challenges offered;
//! - `REDIS_URL`: share the duplicate guard between instances through this Redis (e.g.
//!   `redis://127.0.0.1:6379`); without it, claims are kept in this process's memory;
//! - `REPLAY_FAIL_CLOSED=1`: when the guard's store fails, answer `503` (Twilio retries)
//!   instead of handling the webhook unchecked;
//! - `RUST_LOG`: log filter (default `info`), e.g. `twilio_webhook=debug`.
//!
//! Routes:
//! - `GET /health`: no signature needed;
//! - `POST /twilio/sms`: form webhook, replies TwiML `<Message>` echoing `Body`;
//! - `POST /twilio/voice`: form webhook, replies TwiML `<Say>`;
//! - `POST /twilio/events`: JSON webhook signed through `bodySHA256`, replies 204.
//!
//! At start it prints the URL to configure in Twilio and a `curl` command with a valid
//! signature for `/twilio/sms`. Try it, then change one character of the body or the header:
//! the answer becomes 403. Send the same request twice: the second answer is the empty
//! `<Response/>` of a duplicate, and the handler does not run again.

use std::net::SocketAddr;

use axum::extract::Form;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use twilio_webhook::http_auth::{Algorithm, Credentials, HttpAuth};
use twilio_webhook::middleware::{ReplayGuard, TwilioWebhookLayer};
use twilio_webhook::replay::RedisStore;
use twilio_webhook::{Validator, Verified, compute_signature};

mod serve;

/// Anyone can read this token, so anyone can sign requests with it: for trying the example only.
const DEMO_AUTH_TOKEN: &str = "demo-auth-token-do-not-use-in-production";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let auth_token = std::env::var("TWILIO_AUTH_TOKEN").unwrap_or_else(|_| {
        eprintln!(
            "\n  WARNING: TWILIO_AUTH_TOKEN is not set; using the public DEMO token.\n  \
             Anyone can forge webhooks for it. Set TWILIO_AUTH_TOKEN to your account's \
             primary auth token.\n"
        );
        DEMO_AUTH_TOKEN.to_owned()
    });
    let bind: SocketAddr = std::env::var("BIND")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    let tls = match (std::env::var("TLS_CERT"), std::env::var("TLS_KEY")) {
        (Ok(cert), Ok(key)) => Some((serve::tls_acceptor(&cert, &key)?, cert)),
        (Err(_), Err(_)) => None,
        _ => return Err("set both TLS_CERT and TLS_KEY, or neither".into()),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Bound first, so that `BIND=127.0.0.1:0` (any free port) gives a public URL that works.
    let listener = serve::listen(bind).await?;
    let local = listener.local_addr()?;
    let public_url = std::env::var("PUBLIC_URL").unwrap_or_else(|_| format!("{scheme}://{local}"));
    let http_auth = http_auth()?;

    let guard = match std::env::var("REDIS_URL") {
        Ok(redis_url) => {
            let client = redis::Client::open(redis_url.as_str())?;
            // Answers within the guard's store timeout (1 s), and a reconnect at most a
            // quarter second after Redis is back (the default backoff waits up to 3.2 s):
            // claims that could not be completed during an outage land well within their
            // lease.
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(std::time::Duration::from_millis(500)))
                .set_response_timeout(Some(std::time::Duration::from_millis(500)))
                .set_max_delay(std::time::Duration::from_millis(250));
            let connection = redis::aio::ConnectionManager::new_with_config(client, config).await?;
            println!("duplicate guard: Redis at {}", redact_userinfo(&redis_url));
            ReplayGuard::new(RedisStore::new(connection))
        }
        Err(_) => {
            println!("duplicate guard: in memory (set REDIS_URL to share it between instances)");
            ReplayGuard::in_memory()
        }
    };
    let guard = match std::env::var("REPLAY_FAIL_CLOSED").as_deref() {
        Ok("1") => guard.fail_closed(),
        _ => guard,
    };
    let app = app(
        &auth_token,
        &public_url,
        guard,
        http_auth.as_ref().map(|c| c.auth.clone()),
    )?;
    println!("listening on {scheme}://{local}");
    println!("Twilio webhooks are checked against {public_url}/twilio/...\n");
    print_banner(
        &auth_token,
        &public_url,
        http_auth.as_ref(),
        tls.as_ref().map(|(_, cert)| cert.as_str()),
    );
    // Not `axum::serve`: it has neither a header-read timeout, which a public endpoint needs,
    // nor TLS.
    serve::serve(listener, app, tls.map(|(acceptor, _)| acceptor), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// HTTP authentication from `BASIC_AUTH` or `DIGEST_AUTH`, with the `user:password` pair it
/// came from (the banner shows the password only with the demo token).
struct AuthConfig {
    auth: HttpAuth,
    pair: String,
}

fn http_auth() -> Result<Option<AuthConfig>, Box<dyn std::error::Error>> {
    let config = match (std::env::var("BASIC_AUTH"), std::env::var("DIGEST_AUTH")) {
        (Ok(_), Ok(_)) => return Err("set BASIC_AUTH or DIGEST_AUTH, not both".into()),
        (Ok(pair), Err(_)) => {
            let credentials = Credentials::parse(&pair).map_err(|e| format!("BASIC_AUTH: {e}"))?;
            AuthConfig {
                auth: HttpAuth::basic([credentials])?,
                pair,
            }
        }
        (Err(_), Ok(pair)) => {
            let credentials = Credentials::parse(&pair).map_err(|e| format!("DIGEST_AUTH: {e}"))?;
            let mut auth = HttpAuth::digest([credentials])?;
            if let Ok(secret) = std::env::var("DIGEST_NONCE_SECRET") {
                auth = auth.nonce_secret(secret)?;
            }
            if let Ok(names) = std::env::var("DIGEST_ALGORITHMS") {
                let algorithms = names
                    .split(',')
                    .map(|name| match name.trim() {
                        "SHA-256" => Ok(Algorithm::Sha256),
                        "MD5" => Ok(Algorithm::Md5),
                        other => Err(format!("DIGEST_ALGORITHMS: unknown {other:?}")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                auth = auth.algorithms(algorithms)?;
            }
            AuthConfig { auth, pair }
        }
        (Err(_), Err(_)) => return Ok(None),
    };
    Ok(Some(config))
}

fn app(
    auth_token: &str,
    public_url: &str,
    guard: ReplayGuard,
    http_auth: Option<HttpAuth>,
) -> Result<Router, Box<dyn std::error::Error>> {
    let mut twilio = TwilioWebhookLayer::new(Validator::new(auth_token))?
        .public_url(public_url)?
        .replay_guard(guard);
    if let Some(auth) = http_auth {
        twilio = twilio.http_auth(auth);
    }
    // The layer on each webhook's handlers: a wrong path stays 404 and a wrong method 405.
    let webhooks = Router::new()
        .route("/sms", post(sms).route_layer(twilio.clone()))
        .route("/voice", post(voice).route_layer(twilio.clone()))
        .route("/events", post(events).route_layer(twilio));
    Ok(Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest("/twilio", webhooks))
}

async fn sms(verified: Verified, Form(params): Form<Vec<(String, String)>>) -> impl IntoResponse {
    let body = param(&params, "Body");
    tracing::info!(url_variant = %verified.url_variant, "verified SMS webhook");
    twiml(format!(
        "<Response><Message>You said: {}</Message></Response>",
        xml_escape(body)
    ))
}

async fn voice(Form(params): Form<Vec<(String, String)>>) -> impl IntoResponse {
    let from = param(&params, "From");
    twiml(format!(
        "<Response><Say>Hello {}, this call was verified.</Say></Response>",
        xml_escape(from)
    ))
}

async fn events(Json(event): Json<serde_json::Value>) -> StatusCode {
    tracing::info!(%event, "verified JSON webhook");
    StatusCode::NO_CONTENT
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

fn twiml(xml: String) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{xml}"),
    )
}

/// `redis://user:password@host` shown as `redis://***@host`.
fn redact_userinfo(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &url[at..]),
        _ => url.to_owned(),
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The URL to configure in Twilio, and a request Twilio could have sent. The signature and
/// the password are shown only for the demo token: with a real one, they are secrets.
fn print_banner(
    auth_token: &str,
    public_url: &str,
    http_auth: Option<&AuthConfig>,
    tls_cert: Option<&str>,
) {
    let demo = auth_token == DEMO_AUTH_TOKEN;
    let url = format!("{public_url}/twilio/sms");
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", &url));
    let (twilio_url, curl_auth) = match http_auth {
        Some(AuthConfig { auth, pair }) => {
            let (user, password) = pair.split_once(':').unwrap_or((pair, ""));
            let password = if demo { password } else { "<password>" };
            let flag = if auth.scheme() == "Digest" {
                "--digest"
            } else {
                "--basic"
            };
            (
                format!("{scheme}://{user}:{password}@{rest}"),
                format!(" {flag} -u '{user}:{password}'"),
            )
        }
        None => (url.clone(), String::new()),
    };
    println!("Configure this webhook URL in Twilio:\n\n  {twilio_url}\n");
    if !demo {
        return;
    }
    let params = [("From", "+15005550006"), ("Body", "Hello <from> curl")];
    let signature = compute_signature(auth_token, &url, &params);
    let cacert = tls_cert.map_or(String::new(), |cert| format!(" --cacert {cert}"));
    println!(
        "Try a signed request (change a byte of it and get 403; send it twice and the second \
         answer is the empty <Response/> of a duplicate):\n"
    );
    println!(
        "  curl -i{cacert}{curl_auth} {url} \\\n    -H 'X-Twilio-Signature: {signature}' \\\n    \
         --data-urlencode 'From=+15005550006' --data-urlencode 'Body=Hello <from> curl'\n"
    );
}
