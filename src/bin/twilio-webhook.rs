//! `twilio-webhook`: sign a webhook as Twilio would, or explain why a signature fails.
//!
//! Built on the crate's own code, so it cannot disagree with the library. The auth token comes
//! only from `TWILIO_AUTH_TOKEN` (an argument would land in shell history) and is never
//! printed, nor is any password in a URL's `user:password@` (shown as `***@`). Exit status: 0
//! valid (or signed), 1 invalid, 2 usage error.

use std::collections::BTreeSet;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use subtle::ConstantTimeEq;
use twilio_webhook::middleware::TwilioWebhookLayer;
use twilio_webhook::{
    DEFAULT_MAX_PARAMS, UrlVariant, ValidationError, Validator, Webhook, body_sha256,
    compute_shared_key_signature, compute_signature, form_body, form_params_with_limit,
    redact_userinfo, url_variants, url_with_body_sha256,
};

/// Sign Twilio webhooks, and explain why a signature does not match.
///
/// The auth token is read from the TWILIO_AUTH_TOKEN environment variable only (never an
/// argument: shell history keeps those), and is never printed. A shared key's secret, for
/// webhooks signed with HMAC-SHA256, is read from TWILIO_SHARED_KEY_SECRET.
#[derive(Parser)]
#[command(name = "twilio-webhook", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the X-Twilio-Signature Twilio would send, alone on one line.
    ///
    /// Example: curl -H "X-Twilio-Signature: $(twilio-webhook sign --url "$URL" --param
    /// Body=hi)" -d Body=hi "$URL"
    Sign(Request),
    /// Check a captured request and explain the verdict: the URLs tried, the string signed,
    /// and, when nothing matches, which near-miss URL Twilio signed instead and why.
    ///
    /// Exit status 0 when valid, 1 when not, 2 on a usage error.
    Check(Check),
}

#[derive(Args)]
struct Request {
    /// The full URL Twilio requested (scheme, host, port, path, query).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// A form parameter, decoded, as NAME=VALUE; repeat for each (order does not matter).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A file holding the raw body (a JSON webhook, or a form body as received).
    #[arg(long, value_name = "FILE")]
    body: Option<String>,
    /// The body's Content-Type (with --body).
    #[arg(long, value_name = "TYPE", requires = "body")]
    content_type: Option<String>,
    /// Sign or check with the webhook shared key of this id (HMAC-SHA256), whose secret is in
    /// TWILIO_SHARED_KEY_SECRET.
    #[arg(long, value_name = "ID")]
    shared_key_id: Option<String>,
}

#[derive(Args)]
struct Check {
    #[command(flatten)]
    given: Request,
    /// The X-Twilio-Signature header received.
    #[arg(
        long,
        value_name = "SIGNATURE",
        required_unless_present = "raw_request"
    )]
    signature: Option<String>,
    /// A raw HTTP/1.1 request as captured on the wire (request line, headers, body): the
    /// signature, content type and body are read from it.
    #[arg(
        long = "request",
        value_name = "FILE",
        conflicts_with_all = ["url", "signature", "params", "body"],
        requires = "public_url"
    )]
    raw_request: Option<String>,
    /// With --request: the public base URL configured in Twilio (e.g. https://hooks.example.com),
    /// joined to the request-target as the middleware does.
    #[arg(long, value_name = "BASE", requires = "raw_request")]
    public_url: Option<String>,
}

/// A usage error: the message says what to do; exit status 2.
struct Usage(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sign(request) => sign(&request),
        Command::Check(check) => run_check(&check),
    };
    match result {
        Ok(code) => code,
        Err(Usage(message)) => {
            eprintln!("twilio-webhook: {message}");
            ExitCode::from(2)
        }
    }
}

/// The key from the environment, never from an argument.
enum Key {
    AuthToken(String),
    SharedKey { id: String, secret: String },
}

impl Key {
    fn from_env(shared_key_id: Option<&str>) -> Result<Self, Usage> {
        let read = |name: &str| match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(value),
            Err(std::env::VarError::NotUnicode(_)) => Err(Usage(format!(
                "{name} is set but is not valid UTF-8: an auth token is 32 hexadecimal \
                 characters; export it again, as copied from the Twilio console"
            ))),
            Ok(_) | Err(std::env::VarError::NotPresent) => Err(Usage(format!(
                "{name} is not set: export it (the account's primary auth token; API key \
                 secrets cannot sign webhooks). It is never taken as an argument."
            ))),
        };
        Ok(match shared_key_id {
            Some(id) => Self::SharedKey {
                id: id.to_owned(),
                secret: read("TWILIO_SHARED_KEY_SECRET")?,
            },
            None => Self::AuthToken(read("TWILIO_AUTH_TOKEN")?),
        })
    }

    fn sign(&self, url: &str, params: &[(String, String)]) -> String {
        match self {
            Self::AuthToken(token) => compute_signature(token, url, params),
            Self::SharedKey { secret, .. } => compute_shared_key_signature(secret, url, params),
        }
    }

    fn validator(&self) -> Validator {
        match self {
            Self::AuthToken(token) => Validator::new(token),
            // A validator with only the shared key: an empty auth token is ignored.
            Self::SharedKey { id, secret } => Validator::new("").add_shared_key(id, secret),
        }
    }

    fn settings(&self) -> Option<String> {
        match self {
            Self::AuthToken(_) => None,
            Self::SharedKey { id, .. } => Some(format!("key={id},algorithm=HMAC_SHA256")),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::AuthToken(_) => "the auth token in TWILIO_AUTH_TOKEN (HMAC-SHA1)".to_owned(),
            Self::SharedKey { id, .. } => {
                format!("shared key {id} from TWILIO_SHARED_KEY_SECRET (HMAC-SHA256)")
            }
        }
    }
}

/// What is signed besides the URL.
struct Payload {
    content_type: Option<String>,
    body: Vec<u8>,
    /// Decoded form parameters (from --param, or a form body).
    params: Vec<(String, String)>,
}

impl Payload {
    fn from_args(request: &Request) -> Result<Self, Usage> {
        let mut params = Vec::new();
        for param in &request.params {
            let (name, value) = param
                .split_once('=')
                .ok_or_else(|| Usage(format!("--param {param:?}: expected NAME=VALUE")))?;
            params.push((name.to_owned(), value.to_owned()));
        }
        let body = match &request.body {
            Some(path) => std::fs::read(path).map_err(|e| Usage(format!("--body {path}: {e}")))?,
            None => Vec::new(),
        };
        if !params.is_empty() && !body.is_empty() {
            return Err(Usage("give --param or --body, not both".into()));
        }
        let mut payload = Self {
            content_type: request.content_type.clone(),
            body,
            params,
        };
        if payload.body.is_empty() && !payload.params.is_empty() {
            payload.content_type = Some("application/x-www-form-urlencoded".into());
            payload.body = form_body(&payload.params).into_bytes();
        } else if payload.is_form() {
            payload.decode_form()?;
        }
        Ok(payload)
    }

    /// The form body's parameters, with the validator's parameter limit applied while
    /// scanning, as the middleware applies it: a capture of a million pairs is refused after
    /// the limit, not decoded whole.
    fn decode_form(&mut self) -> Result<(), Usage> {
        self.params = form_params_with_limit(&self.body, DEFAULT_MAX_PARAMS)
            .map_err(|e| Usage(format!("the form body cannot be decoded: {e}")))?;
        Ok(())
    }

    fn is_form(&self) -> bool {
        self.content_type.as_deref().is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    }

    /// JSON and other bodies: Twilio signs the URL with `bodySHA256` appended, and no params.
    fn is_hashed(&self) -> bool {
        !self.is_form() && !self.body.is_empty()
    }

    fn signed_params(&self) -> &[(String, String)] {
        if self.is_hashed() { &[] } else { &self.params }
    }
}

fn sign(request: &Request) -> Result<ExitCode, Usage> {
    let key = Key::from_env(request.shared_key_id.as_deref())?;
    let payload = Payload::from_args(request)?;
    let mut url = request
        .url
        .clone()
        .ok_or_else(|| Usage("give --url: the full URL Twilio requests".into()))?;
    url_variants(&url).map_err(|e| Usage(format!("--url {:?}: {e}", redact_userinfo(&url))))?;
    if payload.is_hashed() {
        // A URL that already carries the body's hash is signed as it is.
        url = url_with_body_sha256(&url, &payload.body).map_err(|e| {
            Usage(format!(
                "--url {:?} carries a bodySHA256 that is not the body's ({}): {e}",
                redact_userinfo(&url),
                body_sha256(&payload.body)
            ))
        })?;
        eprintln!(
            "signed URL (send the request to it): {}",
            redact_userinfo(&url)
        );
    }
    println!("{}", key.sign(&url, payload.signed_params()));
    Ok(ExitCode::SUCCESS)
}

/// A request to check: URL, signature, settings, payload, and the `Host` it was sent to.
struct Captured {
    url: String,
    signature: String,
    settings: Option<String>,
    payload: Payload,
    host: Option<String>,
    target: Option<String>,
}

fn run_check(check: &Check) -> Result<ExitCode, Usage> {
    let captured = match &check.raw_request {
        Some(path) => {
            let base = check
                .public_url
                .as_deref()
                .expect("clap requires --public-url");
            // Exactly what the layer refuses, with its message.
            let _layer =
                TwilioWebhookLayer::new(Validator::new("any key: only the URL is checked"))
                    .and_then(|layer| layer.public_url(base))
                    .map_err(|e| Usage(format!("--public-url: {e}")))?;
            read_request(path, base)?
        }
        None => Captured {
            url: check
                .given
                .url
                .clone()
                .ok_or_else(|| Usage("give --url (or --request and --public-url)".into()))?,
            signature: check.signature.clone().expect("clap requires --signature"),
            settings: None,
            payload: Payload::from_args(&check.given)?,
            host: None,
            target: None,
        },
    };
    let shared_key_id = check.given.shared_key_id.clone().or_else(|| {
        captured
            .settings
            .as_deref()
            .and_then(|s| s.split(',').find_map(|kv| kv.trim().strip_prefix("key=")))
            .map(str::to_owned)
    });
    let key = Key::from_env(shared_key_id.as_deref())?;
    Ok(explain(&key, &captured))
}

/// Prints the verdict and how it was reached; the exit status.
fn explain(key: &Key, captured: &Captured) -> ExitCode {
    let payload = &captured.payload;
    let settings = captured.settings.clone().or_else(|| key.settings());
    // The verdict is the library's own.
    let verdict = key.validator().verify(
        &Webhook::new(&captured.url)
            .content_type(payload.content_type.as_deref())
            .body(&payload.body)
            .signature(Some(&captured.signature))
            .signature_settings(settings.as_deref()),
    );

    println!("key: {}", key.describe());
    println!("URL received: {}", redact_userinfo(&captured.url));
    println!("string to sign: the URL, then{}", shape(payload));
    let candidates = match url_variants(&captured.url) {
        Ok(candidates) => candidates,
        Err(error) => {
            println!("\nINVALID: the URL cannot be the one Twilio requested: {error}");
            return ExitCode::from(1);
        }
    };
    println!("\nURLs the validator tries, in order:");
    let params = payload.signed_params();
    let mut matched = None;
    for (variant, url) in &candidates {
        let hit = matches(key, url, params, &captured.signature);
        println!(
            "  {:<32} {:<52} {}",
            variant.to_string(),
            redact_userinfo(url),
            if hit { "MATCH" } else { "no match" }
        );
        if hit && matched.is_none() {
            matched = Some(*variant);
        }
    }
    if payload.is_hashed() {
        println!(
            "body: {} bytes, SHA-256 {} (must equal the URL's bodySHA256)",
            payload.body.len(),
            body_sha256(&payload.body)
        );
    }

    match verdict {
        Ok(verified) => {
            println!(
                "\nVALID: signed over the URL {} with {}.",
                verified.url_variant,
                key.describe()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("\nINVALID: {error}");
            if matched.is_none() && is_mismatch(&error) {
                diagnose(key, captured, &candidates);
            }
            ExitCode::from(1)
        }
    }
}

fn is_mismatch(error: &ValidationError) -> bool {
    matches!(error, ValidationError::SignatureMismatch)
}

/// Near-miss URLs the validator never accepts, tried to name the likely cause.
fn diagnose(key: &Key, captured: &Captured, candidates: &[(UrlVariant, String)]) {
    let url = &captured.url;
    let params = captured.payload.signed_params();
    let mut near: Vec<(String, String)> = Vec::new();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let other_scheme = match scheme.to_ascii_lowercase().as_str() {
        "https" => Some("http"),
        "http" => Some("https"),
        "wss" => Some("ws"),
        "ws" => Some("wss"),
        _ => None,
    };
    if let Some(other) = other_scheme {
        let cause = if other.ends_with('s') {
            format!(
                "your proxy or tunnel terminates TLS: Twilio signed {other}://…, the server saw \
                 {scheme}://. Give the layer public_url(\"{other}://…\")"
            )
        } else {
            format!(
                "the webhook URL configured in Twilio is {other}://…, not {scheme}://: use the \
                 scheme Twilio is configured with"
            )
        };
        near.push((format!("{other}://{rest}"), cause));
    }
    if let (Some(host), Some(target)) = (&captured.host, &captured.target) {
        for scheme in ["https", "http"] {
            let candidate = format!("{scheme}://{host}{target}");
            if candidate != *url {
                near.push((
                    candidate,
                    format!(
                        "Twilio signed the host your server saw ({host}): the public URL given \
                         differs from the webhook URL configured in Twilio"
                    ),
                ));
            }
        }
    }
    let (before_query, query) = match url.find(['?', '#']) {
        Some(at) => url.split_at(at),
        None => (url.as_str(), ""),
    };
    if let Some(stripped) = before_query.strip_suffix('/') {
        near.push((
            format!("{stripped}{query}"),
            "Twilio's webhook URL has no trailing slash, the request had one".into(),
        ));
    } else {
        near.push((
            format!("{before_query}/{query}"),
            "Twilio's webhook URL ends with '/', the request did not".into(),
        ));
    }
    if let Some(query_start) = url.find('?') {
        near.push((
            url[..query_start].to_owned(),
            "the query string was added after Twilio signed (by a proxy, or the URL configured \
             in Twilio has none)"
                .into(),
        ));
    }

    let mut seen: BTreeSet<String> = candidates.iter().map(|(_, u)| u.clone()).collect();
    println!("\nNear-miss URLs (diagnostic only: the validator never accepts these):");
    let mut found = false;
    for (candidate, cause) in near {
        if !seen.insert(candidate.clone()) {
            continue;
        }
        // Each with its own port and userinfo forms, as Twilio may have signed any.
        let forms = url_variants(&candidate).unwrap_or_default();
        let hit = forms
            .iter()
            .find(|(_, form)| matches(key, form, params, &captured.signature));
        println!(
            "  {:<60} {}",
            redact_userinfo(&candidate),
            if hit.is_some() { "MATCH" } else { "no match" }
        );
        if let Some((_, form)) = hit {
            println!(
                "\nLikely cause: {cause}.\nTwilio signed: {}",
                redact_userinfo(form)
            );
            found = true;
            break;
        }
    }
    if !found {
        println!(
            "\nNo URL variant matches: the key or the parameters differ. Check that \
             TWILIO_AUTH_TOKEN is the primary auth token of the account that sent the webhook \
             (a subaccount signs with its own; API key secrets cannot validate webhooks), and \
             that the body reached you unchanged (no proxy or framework re-encoding it)."
        );
    }
}

/// Whether `key` signs `url` and `params` as `signature`, compared in constant time.
fn matches(key: &Key, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let expected = key.sign(url, params);
    bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
}

/// The parameters part of the string to sign: names sorted, values shown.
fn shape(payload: &Payload) -> String {
    if payload.is_hashed() {
        return " nothing else (a non-form body: the URL carries bodySHA256)".to_owned();
    }
    if payload.params.is_empty() {
        return " nothing else (no form parameters)".to_owned();
    }
    let mut sorted = payload.params.clone();
    sorted.sort_by(|a, b| {
        a.0.as_bytes()
            .cmp(b.0.as_bytes())
            .then(a.1.as_bytes().cmp(b.1.as_bytes()))
    });
    sorted.dedup();
    let plural = if sorted.len() == 1 { "" } else { "s" };
    let mut out = format!(
        " {} parameter{plural}, sorted by name, each name then value, no separators:",
        sorted.len()
    );
    for (name, value) in sorted {
        out.push_str(&format!("\n  {name} {value:?}"));
    }
    out
}

/// A raw HTTP/1.1 request from a file; the URL is `base` joined to its request-target.
fn read_request(path: &str, base: &str) -> Result<Captured, Usage> {
    let raw = std::fs::read(path).map_err(|e| Usage(format!("--request {path}: {e}")))?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(&raw) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return Err(Usage(format!(
                "--request {path}: the headers do not end (no blank line after them)"
            )));
        }
        Err(e) => {
            return Err(Usage(format!(
                "--request {path}: not an HTTP/1.1 request: {e}"
            )));
        }
    };
    let header = |name: &str| -> Result<Option<String>, Usage> {
        let mut values = request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name));
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(h), None) => Ok(Some(String::from_utf8_lossy(h.value).into_owned())),
            (Some(_), Some(_)) => Err(Usage(format!(
                "--request {path}: {name} appears twice (the middleware refuses that too)"
            ))),
        }
    };
    let target = request.path.unwrap_or("/").to_owned();
    let signature = header("x-twilio-signature")?
        .ok_or_else(|| Usage(format!("--request {path}: no X-Twilio-Signature header")))?;
    if header("transfer-encoding")?.is_some() {
        return Err(Usage(format!(
            "--request {path}: chunked bodies are not read: give the body with --url and --body"
        )));
    }
    let mut body = raw[head_len..].to_vec();
    if let Some(length) = header("content-length")? {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| Usage(format!("--request {path}: bad Content-Length")))?;
        if length > body.len() {
            return Err(Usage(format!(
                "--request {path}: the capture is truncated: Content-Length says {length} \
                 bytes, the file holds {} after the headers; capture the whole request",
                body.len()
            )));
        }
        body.truncate(length);
    }
    let content_type = header("content-type")?;
    let mut payload = Payload {
        content_type,
        body,
        params: Vec::new(),
    };
    if payload.is_form() {
        payload.decode_form()?;
    }
    Ok(Captured {
        url: format!("{base}{target}"),
        signature,
        settings: header("x-twilio-webhooks-signature-settings")?,
        payload,
        host: header("host")?,
        target: Some(target),
    })
}
