//! A flood of forged requests produces kilobytes of logs, not megabytes: one event per reason
//! up to a rate, a count of the rest, attacker-chosen text cut short, and no secret ever.

mod support;

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Service, ServiceBuilder, ServiceExt};
use twilio_webhook::middleware::TwilioWebhookLayer;
use twilio_webhook::{Validator, compute_signature};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";

/// Every byte the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn ten_thousand_forged_requests_write_kilobytes_of_logs() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url("https://hooks.example.com")
        .unwrap();
    let mut service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(|_: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            });
    // The path an attacker chooses: 4 KiB, logged at most once per event and cut short.
    let long_path = format!("/sms/{}", "A".repeat(4096));
    let forged = compute_signature(
        "not the token",
        "https://hooks.example.com/sms",
        &[("a", "1")],
    );
    for i in 0..10_000 {
        let builder = Request::post(long_path.as_str())
            .header("content-type", "application/x-www-form-urlencoded");
        let request = match i % 4 {
            0 => builder.body(Full::new(Bytes::from_static(b"a=1"))),
            1 => builder
                .header("x-twilio-signature", forged.as_str())
                .body(Full::new(Bytes::from_static(b"a=1"))),
            2 => builder
                .header("x-twilio-signature", "not a signature")
                .body(Full::new(Bytes::from_static(b"a=1"))),
            _ => builder
                .header("x-twilio-signature", forged.as_str())
                .body(Full::new(Bytes::from_static(b"a=%zz"))),
        }
        .unwrap();
        let response = ServiceExt::<Request<Full<Bytes>>>::ready(&mut service)
            .await
            .unwrap()
            .call(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let events = logs.lines().count();
    eprintln!(
        "10 000 forged requests: {events} events, {} bytes of logs",
        logs.len()
    );
    assert!(
        logs.len() < 32 * 1024,
        "{} bytes in {events} events",
        logs.len()
    );
    // Each of the four reasons still said what happened, with the same fields.
    for reason in [
        "no X-Twilio-Signature",
        "does not match",
        "not a Base64-encoded HMAC",
        "cannot be decoded",
    ] {
        assert!(logs.contains(reason), "no event for {reason:?}:\n{logs}");
    }
    for field in ["method=POST", "url=", "tried=", "report_only=false"] {
        assert!(logs.contains(field), "no {field}:\n{logs}");
    }
    // Routine noise (no signature at all) is below warning level.
    for line in logs.lines().filter(|l| l.contains("no X-Twilio-Signature")) {
        assert!(line.contains("DEBUG"), "{line}");
    }
    // Attacker text is cut: no event holds the 4 KiB path.
    assert!(logs.lines().all(|line| line.len() < 1024), "{logs}");
    assert!(!logs.contains(TOKEN) && !logs.contains(forged.as_str()));
}

/// A store that always fails: Redis down, or slower than the store timeout.
struct Down;

impl twilio_webhook::replay::ReplayStore for Down {
    fn claim(
        &self,
        _: twilio_webhook::replay::ClaimKey,
        _: twilio_webhook::replay::ClaimOwner,
        _: std::time::Duration,
    ) -> twilio_webhook::replay::StoreFuture<twilio_webhook::replay::Claim> {
        Box::pin(async { Err("connection refused".into()) })
    }
    fn renew(
        &self,
        _: twilio_webhook::replay::ClaimKey,
        _: twilio_webhook::replay::ClaimOwner,
        _: std::time::Duration,
    ) -> twilio_webhook::replay::StoreFuture<bool> {
        Box::pin(async { Err("connection refused".into()) })
    }
    fn complete(
        &self,
        _: twilio_webhook::replay::ClaimKey,
        _: twilio_webhook::replay::ClaimOwner,
        _: std::time::Duration,
    ) -> twilio_webhook::replay::StoreFuture<bool> {
        Box::pin(async { Err("connection refused".into()) })
    }
    fn release(
        &self,
        _: twilio_webhook::replay::ClaimKey,
        _: twilio_webhook::replay::ClaimOwner,
    ) -> twilio_webhook::replay::StoreFuture<()> {
        Box::pin(async { Err("connection refused".into()) })
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_store_says_how_many_requests_went_unchecked() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let layer = TwilioWebhookLayer::new(Validator::new(TOKEN))
        .unwrap()
        .public_url("https://hooks.example.com")
        .unwrap()
        .replay_guard(twilio_webhook::middleware::ReplayGuard::new(Down));
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
    for n in 0..25 {
        let params = [("Body", format!("message {n}"))];
        let request = Request::post("/sms")
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "x-twilio-signature",
                compute_signature(TOKEN, "https://hooks.example.com/sms", &params[..]),
            )
            .body(Full::new(Bytes::from(support::form_body(&params))))
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "fail-open: handled");
    }
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let failures: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("the store failed"))
        .collect();
    // Rate-limited to 10 a minute, each with the running count.
    assert_eq!(failures.len(), 10, "{text}");
    assert!(failures[0].contains("unchecked=1 "), "{}", failures[0]);
    assert!(failures[9].contains("unchecked=10 "), "{}", failures[9]);
    assert!(failures[9].contains("not checked for duplicates"));
}
