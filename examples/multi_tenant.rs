//! One layer for many Twilio accounts: each subaccount's webhooks are checked with its own
//! auth token, chosen by the request's `AccountSid`.
//!
//! ```sh
//! cargo run --example multi_tenant
//! ```
//!
//! It listens on 127.0.0.1:3003 with two demo accounts in an `AccountMap`, and prints one
//! signed `curl` per account, plus one that claims an account while signed by the other
//! (refused: a request cannot borrow another account's key). For keys in a database, pass an
//! async closure to `TwilioWebhookLayer::with_key_source` instead (see `KeySource`).

use axum::Router;
use axum::extract::Form;
use axum::routing::post;
use twilio_webhook::middleware::{AccountMap, TwilioWebhookLayer};
use twilio_webhook::{Validator, compute_signature};

const PUBLIC_URL: &str = "http://127.0.0.1:3003";
/// Demo accounts: anyone can read these tokens.
const ACCOUNTS: [(&str, &str); 2] = [
    (
        "AC00000000000000000000000000000001",
        "demo-token-of-the-parent-account",
    ),
    (
        "AC00000000000000000000000000000002",
        "demo-token-of-a-subaccount",
    ),
];

async fn sms(Form(params): Form<Vec<(String, String)>>) -> String {
    let account = params
        .iter()
        .find(|(name, _)| name == "AccountSid")
        .map_or("", |(_, value)| value.as_str());
    format!("<Response><Message>verified for {account}</Message></Response>\n")
}

mod serve;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let accounts = ACCOUNTS
        .iter()
        .fold(AccountMap::new(), |map, (sid, token)| {
            map.insert(*sid, Validator::new(token))
        });
    let layer = TwilioWebhookLayer::with_key_source(accounts).public_url(PUBLIC_URL)?;
    // On the handlers: a wrong path stays 404 and a wrong method 405.
    let app = Router::new().route("/sms", post(sms).route_layer(layer));

    let url = format!("{PUBLIC_URL}/sms");
    println!("listening on {PUBLIC_URL}; try:\n");
    for (sid, token) in ACCOUNTS {
        let signature = compute_signature(token, &url, &[("AccountSid", sid)]);
        println!("  curl -i {url} -H 'X-Twilio-Signature: {signature}' -d 'AccountSid={sid}'");
    }
    let (claimed, _) = ACCOUNTS[0];
    let (_, other_token) = ACCOUNTS[1];
    let borrowed = compute_signature(other_token, &url, &[("AccountSid", claimed)]);
    println!(
        "  curl -i {url} -H 'X-Twilio-Signature: {borrowed}' -d 'AccountSid={claimed}'  # 403\n"
    );

    let listener = serve::listen("127.0.0.1:3003").await?;
    // Header-read timeout and connection age bounds: see examples/serve.
    serve::serve(listener, app, None, std::future::pending()).await?;
    Ok(())
}
