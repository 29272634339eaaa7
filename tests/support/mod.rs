//! Fixtures shared by the tests and the benches: the webhooks, the vectors in tests/data/, and
//! bodies that arrive in pieces.

#![allow(dead_code)]

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::StreamBody;
use serde::Deserialize;

/// `application/x-www-form-urlencoded` encoding of `params`, in order.
pub fn form_body<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name.as_ref(), value.as_ref());
    }
    serializer.finish()
}

/// Lowercase hex SHA-256, as in `bodySHA256`.
pub fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The inbound-SMS webhook Twilio sends, in its wire order: 20 parameters, ~510 bytes.
pub fn sms_params() -> Vec<(String, String)> {
    [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", "SM8d2f4a6c9e1b3d5f7a9c2e4b6d8f0a1c"),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", "SM8d2f4a6c9e1b3d5f7a9c2e4b6d8f0a1c"),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", "Hello from Twilio! Reply STOP to opt out."),
        ("FromCountry", "US"),
        ("To", "+14155550100"),
        ("MessagingServiceSid", "MG1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b"),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", "SM8d2f4a6c9e1b3d5f7a9c2e4b6d8f0a1c"),
        ("AccountSid", "AC3f9a7c2e5b8d1f4a6c9e2b5d8f1a4c7e"),
        ("From", "+14155550123"),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A status callback: 3 parameters.
pub fn tiny_params() -> Vec<(String, String)> {
    vec![
        ("CallSid".into(), "CA1234567890ABCDE".into()),
        ("CallStatus".into(), "completed".into()),
        ("From".into(), "+14155550123".into()),
    ]
}

/// A large webhook: 100 parameters, about 8.5 KiB of body.
pub fn large_params() -> Vec<(String, String)> {
    (0..100)
        .map(|i| {
            (
                format!("Field{i:03}"),
                format!(
                    "value {i} with some text, a + sign and 70 more characters of payload: {}",
                    "x".repeat(i % 7)
                ),
            )
        })
        .collect()
}

/// A body that yields `items` one poll at a time, as a slow network would.
pub struct Chunks<T>(std::vec::IntoIter<T>);

impl<T> futures_core::Stream for Chunks<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
        Poll::Ready(self.0.next())
    }
}

impl<T> Unpin for Chunks<T> {}

/// `frames` as a streamed body (no `Content-Length`).
pub fn streamed<E>(
    frames: Vec<Result<Frame<Bytes>, E>>,
) -> StreamBody<Chunks<Result<Frame<Bytes>, E>>> {
    StreamBody::new(Chunks(frames.into_iter()))
}

/// `bytes` as a streamed body of `size`-byte chunks.
pub fn chunked(bytes: &[u8], size: usize) -> StreamBody<Chunks<Result<Frame<Bytes>, Infallible>>> {
    streamed(
        bytes
            .chunks(size)
            .map(|chunk| Ok(Frame::data(Bytes::copy_from_slice(chunk))))
            .collect(),
    )
}

/// tests/data/sdk-published.json
#[derive(Deserialize)]
pub struct Published {
    pub vectors: Vec<PublishedVector>,
}

#[derive(Deserialize)]
pub struct PublishedVector {
    pub source: String,
    pub token: String,
    pub url: String,
    pub params: Option<Vec<(String, String)>>,
    pub body: Option<String>,
    pub signature: String,
    pub expected_valid: bool,
    pub signed_string: String,
}

/// tests/data/conformance.json
#[derive(Deserialize)]
pub struct Conformance {
    pub cases: Vec<Case>,
}

#[derive(Deserialize)]
pub struct Case {
    pub name: String,
    pub auth_token: String,
    pub url: String,
    pub params: Option<Vec<(String, String)>>,
    pub form_body: Option<String>,
    pub raw_body: Option<String>,
    pub content_type: Option<String>,
    pub header_signature: Option<String>,
    pub signed_string: Option<String>,
    pub signature_settings_header: Option<String>,
    pub expected_valid: bool,
    pub tags: Vec<String>,
}

impl Case {
    pub fn tagged(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The raw body as it arrived: the form body, else the raw (JSON) body, else empty.
    pub fn body(&self) -> &[u8] {
        self.form_body
            .as_deref()
            .or(self.raw_body.as_deref())
            .unwrap_or("")
            .as_bytes()
    }

    /// The shared key id of a `sharedkey` case (the `key=` of its settings header).
    pub fn shared_key_id(&self) -> Option<&str> {
        self.signature_settings_header
            .as_deref()?
            .split(',')
            .find_map(|entry| entry.strip_prefix("key="))
    }
}

pub fn published() -> Vec<PublishedVector> {
    let text = std::fs::read_to_string("tests/data/sdk-published.json").unwrap();
    serde_json::from_str::<Published>(&text).unwrap().vectors
}

pub fn conformance() -> Vec<Case> {
    let text = std::fs::read_to_string("tests/data/conformance.json").unwrap();
    serde_json::from_str::<Conformance>(&text).unwrap().cases
}

/// An inbound SMS as Twilio sends it: 20 parameters, an emoji in the body, `+` numbers that
/// arrive as `%2B`, about 560 bytes of form body.
pub fn inbound_sms() -> Vec<(String, String)> {
    inbound_sms_variant(0)
}

/// The `n`-th of a family of inbound SMS webhooks: values (sids, numbers, text, length) and the
/// wire order of the parameters vary with `n`, as in real traffic.
pub fn inbound_sms_variant(n: u64) -> Vec<(String, String)> {
    let mut state = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5151_5151;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let sid = |prefix: &str, x: u64| format!("{prefix}{x:016x}{:016x}", x.rotate_left(17));
    let message_sid = sid("SM", next());
    let from = format!("+1415555{:04}", next() % 10_000);
    let bodies = [
        "Hello from Twilio! 👋 Reply STOP to opt out.",
        "Can we move tomorrow's 10:30 meeting to 11? Thanks!",
        "ok 👍",
        "Your code is 482913. It expires in 10 minutes & can't be reused.",
        "Running 5 min late — traffic on 101 🚗💨 see you soon",
    ];
    let body = bodies[(next() % bodies.len() as u64) as usize].to_owned();
    let mut params: Vec<(String, String)> = [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", message_sid.as_str()),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", message_sid.as_str()),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", body.as_str()),
        ("FromCountry", "US"),
        ("To", "+14155550100"),
        ("MessagingServiceSid", "MG1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b"),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", message_sid.as_str()),
        ("AccountSid", "AC3f9a7c2e5b8d1f4a6c9e2b5d8f1a4c7e"),
        ("From", from.as_str()),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if n > 0 {
        // Another wire order (Fisher-Yates).
        for i in (1..params.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            params.swap(i, j);
        }
    }
    params
}

/// An MMS with media: about 100 parameters, `MediaUrl0..33` and `MediaContentType0..33`
/// sharing long name prefixes, URLs full of escapes, about 8.5 KiB of form body.
pub fn media_webhook() -> Vec<(String, String)> {
    let mut params = inbound_sms_variant(7);
    for (name, value) in params.iter_mut() {
        if name == "NumMedia" {
            *value = "34".into();
        }
    }
    let types = ["image/jpeg", "image/png", "video/mp4", "audio/amr"];
    for i in 0..34 {
        params.push((
            format!("MediaUrl{i}"),
            format!(
                "https://api.twilio.com/2010-04-01/Accounts/AC3f9a7c2e5b8d1f4a6c9e2b5d8f1a4c7e/\
                 Messages/MM{i:030}/Media/ME{i:030}?Filename=photo {i}.jpg"
            ),
        ));
        params.push((
            format!("MediaContentType{i}"),
            types[i % types.len()].to_owned(),
        ));
    }
    for i in 0..12 {
        params.push((
            format!("AddOns{i}"),
            format!("{{\"status\":\"successful\",\"n\":{i}}}"),
        ));
    }
    params
}
