//! The crate against the reference implementation of SPEC §1–3 in `src/lib.rs`: the same
//! verdict on every request. Half the requests are signed by the reference for one of the
//! candidate URLs it derives, so accepting paths are exercised, not only refusals.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twilio_webhook::Validator;
use twilio_webhook_fuzz as reference;

#[derive(Arbitrary, Debug)]
struct Input {
    scheme: u8,
    userinfo: Option<String>,
    host: u8,
    port: Option<u16>,
    path: String,
    query: Option<String>,
    fragment: Option<String>,
    body: Body,
    /// Which candidate the reference signs (modulo their number); `None`: a random signature.
    signed_candidate: Option<u8>,
    random_signature: String,
    wrong_token: bool,
}

#[derive(Arbitrary, Debug)]
enum Body {
    Form {
        params: Vec<(String, String)>,
        escape_more: bool,
    },
    RawForm(Vec<u8>),
    Json {
        body: Vec<u8>,
        hash_in_url: bool,
        tamper: bool,
    },
    Empty,
    Other(Vec<u8>),
}

const TOKEN: &str = "12345";

fuzz_target!(|input: Input| {
    let scheme = ["https", "http", "wss", "ws", "HTTPS", "ftp"][input.scheme as usize % 6];
    let host = ["example.com", "Example.com", "[::1]", "h", "10.0.0.1"][input.host as usize % 5];
    // Keep the generated parts inside the URL's own part: no '#' or '?' in the path, no '@'
    // or ':' trouble in userinfo beyond what the spec allows.
    let clean = |s: &str, banned: &[char]| {
        s.chars()
            .filter(|c| !banned.contains(c))
            .collect::<String>()
    };
    let mut url = format!("{scheme}://");
    if let Some(userinfo) = &input.userinfo {
        url += &clean(userinfo, &['/', '?', '#', '@', '[', ']']);
        url += "@";
    }
    url += host;
    if let Some(port) = input.port {
        url += &format!(":{port}");
    }
    let path = clean(&input.path, &['?', '#']);
    if !path.is_empty() && !path.starts_with('/') {
        url += "/";
    }
    url += &path;
    let (content_type, body, mut signed_params): (Option<&str>, Vec<u8>, Vec<(String, String)>) =
        match &input.body {
            Body::Form {
                params,
                escape_more,
            } => (
                Some("application/x-www-form-urlencoded"),
                reference::encode_form(params, *escape_more).into_bytes(),
                params.clone(),
            ),
            Body::RawForm(raw) => (
                Some("application/x-www-form-urlencoded; charset=utf-8"),
                raw.clone(),
                reference::decode_form(raw).unwrap_or_default(),
            ),
            Body::Json { body, .. } => (Some("application/json"), body.clone(), Vec::new()),
            Body::Empty => (None, Vec::new(), Vec::new()),
            Body::Other(raw) => (Some("text/plain"), raw.clone(), Vec::new()),
        };
    let mut query = input.query.as_deref().map(|q| clean(q, &['#']));
    if let Body::Json {
        body,
        hash_in_url,
        tamper,
    } = &input.body
    {
        if *hash_in_url {
            use sha2::Digest;
            let mut hex: String = sha2::Sha256::digest(body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if *tamper {
                hex.replace_range(0..1, if hex.starts_with('0') { "1" } else { "0" });
            }
            let q = query.get_or_insert_with(String::new);
            if !q.is_empty() {
                q.push('&');
            }
            *q += &format!("bodySHA256={hex}");
        }
    }
    if let Some(q) = &query {
        url += "?";
        url += q;
    }
    if let Some(fragment) = &input.fragment {
        url += "#";
        url += fragment;
    }
    if signed_params.len() > twilio_webhook::DEFAULT_MAX_PARAMS {
        return;
    }
    // A URL with bodySHA256 signs the URL alone.
    if !reference::body_sha256_values(&url).is_empty() {
        signed_params.clear();
    }

    let signature = match (input.signed_candidate, reference::candidates(&url)) {
        (Some(pick), Some(candidates)) => {
            let target = &candidates[pick as usize % candidates.len()];
            let token = if input.wrong_token { "54321" } else { TOKEN };
            reference::sign(token, target, &signed_params)
        }
        _ => input.random_signature.clone(),
    };

    let expected = reference::verify(TOKEN, &url, content_type, &body, &signature);
    let got = Validator::new(TOKEN).validate_body(&url, content_type, &body, &signature);
    assert_eq!(
        got.is_ok(),
        expected,
        "url {url:?} content type {content_type:?} body {body:?}: crate says {got:?}"
    );
});
