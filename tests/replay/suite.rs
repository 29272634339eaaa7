//! The behaviour every store must give the layer's replay guard (SPEC §8).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use twilio_webhook::middleware::{Rejection, ReplayGuard, TwilioWebhookLayer};
use twilio_webhook::replay::{Claim, ClaimKey, ClaimOwner, ReplayCheck, ReplayStore, StoreFuture};
use twilio_webhook::{Validator, compute_signature};

use crate::support::form_body;

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const BASE: &str = "http://127.0.0.1";

/// A signed webhook: the form body and its signature (for path `/sms`).
#[derive(Clone)]
pub struct Webhook {
    body: String,
    signature: String,
}

/// The n-th distinct inbound SMS.
pub fn webhook(n: usize) -> Webhook {
    let params = [
        ("MessageSid", format!("SM{n:032}")),
        ("Body", format!("message {n}")),
    ];
    Webhook {
        body: form_body(&params),
        signature: compute_signature(TOKEN, &format!("{BASE}/sms"), &params[..]),
    }
}

impl Webhook {
    /// The key the layer claims this webhook under.
    pub fn claim_key(&self) -> ClaimKey {
        let verified = Validator::new(TOKEN)
            .verify(
                &twilio_webhook::Webhook::new(&format!("{BASE}/sms"))
                    .content_type(Some("application/x-www-form-urlencoded"))
                    .body(self.body.as_bytes())
                    .signature(Some(&self.signature)),
            )
            .unwrap();
        ClaimKey::for_request(&verified, &self.signature)
    }

    fn request(&self) -> Request<Full<Bytes>> {
        Request::post("/sms")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", &self.signature)
            .header("i-twilio-idempotency-token", "not-signed-only-logged")
            .body(Full::new(Bytes::from(self.body.clone())))
            .unwrap()
    }
}

/// What the handler does on a call: wait, then answer with a status or fail.
#[derive(Clone, Copy)]
pub enum Behavior {
    Answer(Duration, StatusCode),
    Fail,
}

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler ran and answered 2xx; the request held the claim.
    Handled,
    /// The handler ran, the store having failed.
    HandledUnchecked,
    /// The handler ran and answered another status.
    HandlerAnswered(u16),
    /// Answered by the guard: 200 `<Response/>`, the handler not called.
    Duplicate,
    /// 503 from a guard that fails closed.
    Unavailable,
    /// 503 with `Retry-After`: a copy of one still running, which did not finish in time.
    StillRunning,
    /// Refused before the guard.
    Refused(u16),
    /// The service returned `Err` (the handler failed).
    Error,
    /// The handler ran without the guard's mark (report-only, unverified).
    Unguarded,
}

#[derive(Default)]
struct HandlerState {
    calls: AtomicUsize,
    script: Mutex<VecDeque<Behavior>>,
    delay: Mutex<Duration>,
}

/// The layer with a replay guard, around a handler whose behaviour the test scripts.
pub struct App {
    layer: TwilioWebhookLayer,
    state: Arc<HandlerState>,
}

impl App {
    pub fn new(
        store: Box<dyn ReplayStore>,
        configure: impl FnOnce(ReplayGuard) -> ReplayGuard,
    ) -> Self {
        Self::with_layer(store, configure, |layer| layer)
    }

    fn with_layer(
        store: Box<dyn ReplayStore>,
        configure: impl FnOnce(ReplayGuard) -> ReplayGuard,
        layer: impl FnOnce(TwilioWebhookLayer) -> TwilioWebhookLayer,
    ) -> Self {
        let base = TwilioWebhookLayer::new(Validator::new(TOKEN))
            .unwrap()
            .public_url(BASE)
            .unwrap()
            .replay_guard(configure(ReplayGuard::new(store)));
        Self {
            layer: layer(base),
            state: Arc::default(),
        }
    }

    /// How many times the handler ran.
    pub fn handled(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// The next calls behave like this, in order; then 200 after the set delay.
    pub fn script(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        self.state.script.lock().unwrap().extend(behaviors);
    }

    fn service<B>(
        &self,
    ) -> impl tower::Service<
        Request<B>,
        Response = Response<twilio_webhook::middleware::ResponseBody<Full<Bytes>>>,
        Error = std::io::Error,
        Future: Send,
    > + Clone
    + Send
    + 'static
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let state = Arc::clone(&self.state);
        ServiceBuilder::new().layer(self.layer.clone()).service_fn(
            move |request: Request<Full<Bytes>>| {
                let state = Arc::clone(&state);
                async move {
                    state.calls.fetch_add(1, Ordering::SeqCst);
                    let scripted = state.script.lock().unwrap().pop_front();
                    let delay = *state.delay.lock().unwrap();
                    let behavior = scripted.unwrap_or(Behavior::Answer(delay, StatusCode::OK));
                    let check = match request.extensions().get::<ReplayCheck>() {
                        Some(ReplayCheck::Claimed) => "claimed",
                        Some(ReplayCheck::NotChecked) => "not-checked",
                        _ => "none",
                    };
                    match behavior {
                        Behavior::Fail => Err(std::io::Error::other("handler failed")),
                        Behavior::Answer(delay, status) => {
                            tokio::time::sleep(delay).await;
                            let mut response = Response::new(Full::new(Bytes::from("handled")));
                            *response.status_mut() = status;
                            response
                                .headers_mut()
                                .insert("x-replay-check", check.parse().unwrap());
                            Ok(response)
                        }
                    }
                }
            },
        )
    }

    /// Sends one copy of `webhook` in process.
    pub async fn send(&self, webhook: &Webhook) -> Outcome {
        let response = match self.service().oneshot(webhook.request()).await {
            Ok(response) => response,
            Err(_) => return Outcome::Error,
        };
        let status = response.status();
        let check = response
            .headers()
            .get("x-replay-check")
            .map(|v| v.to_str().unwrap().to_owned());
        let rejection = response.extensions().get::<Rejection>().cloned();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        match (rejection, check.as_deref()) {
            (Some(Rejection::Duplicate), _) => {
                assert_eq!((status, &body[..]), (StatusCode::OK, &b"<Response/>"[..]));
                Outcome::Duplicate
            }
            (Some(Rejection::ReplayStoreFailed), _) => {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
                Outcome::Unavailable
            }
            (Some(Rejection::InProgress), _) => {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(retry_after.as_deref(), Some("1"));
                Outcome::StillRunning
            }
            (Some(_), _) => Outcome::Refused(status.as_u16()),
            (None, _) if !status.is_success() => Outcome::HandlerAnswered(status.as_u16()),
            (None, Some("claimed")) => Outcome::Handled,
            (None, Some("not-checked")) => Outcome::HandledUnchecked,
            (None, Some("none")) => Outcome::Unguarded,
            (None, other) => panic!("handled without a replay mark: {other:?}"),
        }
    }

    /// Serves the app over HTTP on a free loopback port; returns its base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let service = self.service::<hyper::body::Incoming>();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let service = hyper_util::service::TowerToHyperService::new(service.clone());
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        url
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// POSTs `webhook` to `base`/sms; the status and body.
pub async fn post(
    client: &Client<HttpConnector, Full<Bytes>>,
    base: &str,
    webhook: &Webhook,
) -> (u16, String) {
    let (mut parts, body) = webhook.request().into_parts();
    parts.uri = format!("{base}/sms").parse().unwrap();
    let response = client
        .request(Request::from_parts(parts, body))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Counts what reaches the store.
struct Counting {
    store: Box<dyn ReplayStore>,
    claims: Arc<AtomicUsize>,
}

impl ReplayStore for Counting {
    fn claim(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> StoreFuture<Claim> {
        self.claims.fetch_add(1, Ordering::SeqCst);
        self.store.claim(key, owner, lease)
    }
    fn renew(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> StoreFuture<bool> {
        self.store.renew(key, owner, lease)
    }
    fn complete(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> StoreFuture<bool> {
        self.store.complete(key, owner, ttl)
    }
    fn release(&self, key: ClaimKey, owner: ClaimOwner) -> StoreFuture<()> {
        self.store.release(key, owner)
    }
}

/// Every test below, each with a fresh store from `store`.
pub async fn run_all(store: impl Fn() -> Box<dyn ReplayStore>) {
    concurrent_copies_reach_the_handler_once(store()).await;
    a_handled_webhook_is_a_duplicate_until_its_ttl_ends(store()).await;
    a_failed_answer_releases_the_claim(store()).await;
    an_error_releases_the_claim(store()).await;
    a_dropped_request_releases_the_claim(store()).await;
    a_late_release_never_deletes_a_newer_claim(store()).await;
    a_claim_asked_again_by_its_owner_is_still_its_own(store()).await;
    a_copy_of_a_running_request_waits_and_runs_the_handler_when_the_first_fails(store()).await;
    a_copy_of_a_running_request_waits_and_is_a_duplicate_when_the_first_succeeds(store()).await;
    a_copy_that_waits_too_long_gets_503_with_retry_after_never_2xx(store()).await;
    a_claim_in_progress_outlives_a_ttl_shorter_than_the_handler(store()).await;
    a_crashed_owners_claim_expires_with_its_lease(store()).await;
    forged_unsigned_and_report_only_requests_never_touch_the_store(store()).await;
}

async fn concurrent_copies_reach_the_handler_once(store: Box<dyn ReplayStore>) {
    let app = Arc::new(App::new(store, |g| g));
    // A slow handler: every copy arrives while the first is still running.
    app.set_delay(Duration::from_millis(100));
    let request = webhook(1);
    let mut copies = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (app, request) = (Arc::clone(&app), request.clone());
        copies.spawn(async move { app.send(&request).await });
    }
    let outcomes = copies.join_all().await;
    assert_eq!(app.handled(), 1, "{outcomes:?}");
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Handled).count(),
        1
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::Duplicate)
            .count(),
        31
    );
}

async fn a_handled_webhook_is_a_duplicate_until_its_ttl_ends(store: Box<dyn ReplayStore>) {
    let app = App::new(store, |g| g.ttl(Duration::from_millis(300)));
    assert_eq!(app.send(&webhook(1)).await, Outcome::Handled);
    assert_eq!(app.send(&webhook(1)).await, Outcome::Duplicate);
    // Another webhook is not a duplicate of the first.
    assert_eq!(app.send(&webhook(2)).await, Outcome::Handled);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(app.send(&webhook(1)).await, Outcome::Handled);
    assert_eq!(app.handled(), 3);
}

async fn a_failed_answer_releases_the_claim(store: Box<dyn ReplayStore>) {
    let app = App::new(store, |g| g);
    app.script([Behavior::Answer(
        Duration::ZERO,
        StatusCode::INTERNAL_SERVER_ERROR,
    )]);
    assert_eq!(app.send(&webhook(1)).await, Outcome::HandlerAnswered(500));
    // Twilio's re-send is handled: nothing lost.
    assert_eq!(app.send(&webhook(1)).await, Outcome::Handled);
    assert_eq!(app.send(&webhook(1)).await, Outcome::Duplicate);
    // A 4xx is not a success either.
    app.script([Behavior::Answer(Duration::ZERO, StatusCode::BAD_REQUEST)]);
    assert_eq!(app.send(&webhook(2)).await, Outcome::HandlerAnswered(400));
    assert_eq!(app.send(&webhook(2)).await, Outcome::Handled);
}

async fn an_error_releases_the_claim(store: Box<dyn ReplayStore>) {
    let app = App::new(store, |g| g);
    app.script([Behavior::Fail]);
    assert_eq!(app.send(&webhook(1)).await, Outcome::Error);
    // The release runs on the runtime: give it a moment on a network store.
    let request = webhook(1);
    let outcome = eventually(|| app.send(&request), Outcome::Handled).await;
    assert_eq!(outcome, Outcome::Handled);
}

async fn a_dropped_request_releases_the_claim(store: Box<dyn ReplayStore>) {
    let app = App::new(store, |g| g);
    // The client goes away while the handler runs: the future is dropped.
    app.script([Behavior::Answer(Duration::from_secs(5), StatusCode::OK)]);
    let gone = tokio::time::timeout(Duration::from_millis(100), app.send(&webhook(1))).await;
    assert!(gone.is_err());
    let request = webhook(1);
    let outcome = eventually(|| app.send(&request), Outcome::Handled).await;
    assert_eq!(outcome, Outcome::Handled);
    assert_eq!(app.handled(), 2);
}

async fn a_claim_asked_again_by_its_owner_is_still_its_own(store: Box<dyn ReplayStore>) {
    // A claim whose answer was lost (Redis went away after writing it) is asked again by the
    // same request: it is that request's claim, not another copy's to wait for (the request
    // would wait for itself, answer 503, and leave the webhook held until its lease ran out).
    let key = ClaimKey::from_bytes([10; 16]);
    let (owner, copy) = (ClaimOwner::unique(), ClaimOwner::unique());
    let lease = Duration::from_secs(60);
    for _ in 0..2 {
        assert_eq!(
            store.claim(key, owner, lease).await.unwrap(),
            Claim::Claimed
        );
    }
    assert_eq!(
        store.claim(key, copy, lease).await.unwrap(),
        Claim::InProgress
    );
    assert!(store.complete(key, owner, lease).await.unwrap());
    // Once handled, it is a duplicate for everyone, its owner included.
    assert_eq!(
        store.claim(key, owner, lease).await.unwrap(),
        Claim::Handled
    );
    assert_eq!(store.claim(key, copy, lease).await.unwrap(), Claim::Handled);
}

async fn a_late_release_never_deletes_a_newer_claim(store: Box<dyn ReplayStore>) {
    // The first copy's owner stops renewing (its lease runs out: a crashed instance), a second
    // copy takes the key and succeeds; then the first one's late release must leave the
    // second copy's claim alone.
    let key = ClaimKey::from_bytes([9; 16]);
    let (crashed, later) = (ClaimOwner::unique(), ClaimOwner::unique());
    let lease = Duration::from_millis(200);
    assert_eq!(
        store.claim(key, crashed, lease).await.unwrap(),
        Claim::Claimed
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.claim(key, later, lease).await.unwrap(),
        Claim::Claimed
    );
    assert!(
        store
            .complete(key, later, Duration::from_secs(60))
            .await
            .unwrap()
    );
    store.release(key, crashed).await.unwrap();
    assert!(
        !store
            .complete(key, crashed, Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(!store.renew(key, crashed, lease).await.unwrap());
    assert_eq!(
        store.claim(key, ClaimOwner::unique(), lease).await.unwrap(),
        Claim::Handled
    );
}

/// `copy` sent `after` the first copy of `webhook(1)` was.
async fn first_and_copy(app: &Arc<App>, after: Duration) -> (Outcome, Outcome) {
    let first = {
        let app = Arc::clone(app);
        tokio::spawn(async move { app.send(&webhook(1)).await })
    };
    tokio::time::sleep(after).await;
    let copy = app.send(&webhook(1)).await;
    (first.await.unwrap(), copy)
}

async fn a_copy_of_a_running_request_waits_and_runs_the_handler_when_the_first_fails(
    store: Box<dyn ReplayStore>,
) {
    // The reproduction: the handler takes 300 ms and fails the first time; a copy at
    // 100 ms used to get 200 at once, and the webhook was lost.
    let app = Arc::new(App::new(store, |g| g));
    app.script([Behavior::Answer(
        Duration::from_millis(300),
        StatusCode::INTERNAL_SERVER_ERROR,
    )]);
    let (first, copy) = first_and_copy(&app, Duration::from_millis(100)).await;
    assert_eq!(first, Outcome::HandlerAnswered(500));
    assert_eq!(copy, Outcome::Handled, "the copy ran the handler itself");
    assert_eq!(app.handled(), 2);
    assert_eq!(app.send(&webhook(1)).await, Outcome::Duplicate);
}

async fn a_copy_of_a_running_request_waits_and_is_a_duplicate_when_the_first_succeeds(
    store: Box<dyn ReplayStore>,
) {
    let app = Arc::new(App::new(store, |g| g));
    app.script([Behavior::Answer(Duration::from_millis(300), StatusCode::OK)]);
    let started = std::time::Instant::now();
    let (first, copy) = first_and_copy(&app, Duration::from_millis(100)).await;
    assert_eq!((first, copy), (Outcome::Handled, Outcome::Duplicate));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the copy answered before the first had finished"
    );
    assert_eq!(app.handled(), 1);
}

async fn a_copy_that_waits_too_long_gets_503_with_retry_after_never_2xx(
    store: Box<dyn ReplayStore>,
) {
    let app = Arc::new(App::new(store, |g| {
        g.in_progress_wait(Duration::from_millis(150))
    }));
    app.script([Behavior::Answer(Duration::from_millis(600), StatusCode::OK)]);
    let (first, copy) = first_and_copy(&app, Duration::from_millis(50)).await;
    assert_eq!(first, Outcome::Handled);
    assert_eq!(copy, Outcome::StillRunning);
    assert_eq!(app.handled(), 1);
    // Twilio's retry, after the first finished: a duplicate.
    assert_eq!(app.send(&webhook(1)).await, Outcome::Duplicate);
}

async fn a_claim_in_progress_outlives_a_ttl_shorter_than_the_handler(store: Box<dyn ReplayStore>) {
    // 100 ms TTL and lease, 400 ms handler: a copy at 200 ms used to run the handler again.
    let app = Arc::new(App::new(store, |g| {
        g.ttl(Duration::from_millis(100))
            .lease(Duration::from_millis(100))
    }));
    app.script([Behavior::Answer(Duration::from_millis(400), StatusCode::OK)]);
    let (first, copy) = first_and_copy(&app, Duration::from_millis(200)).await;
    assert_eq!((first, copy), (Outcome::Handled, Outcome::Duplicate));
    assert_eq!(app.handled(), 1, "the handler ran twice");
}

async fn a_crashed_owners_claim_expires_with_its_lease(store: Box<dyn ReplayStore>) {
    // What a crashed instance leaves: a claim in progress that nobody renews. Twilio's
    // re-send after the lease is handled.
    let shared: Arc<Box<dyn ReplayStore>> = Arc::new(store);
    let app = App::new(Box::new(Arc::clone(&shared)), |g| {
        g.lease(Duration::from_millis(200))
            .in_progress_wait(Duration::from_millis(50))
    });
    // The key the layer uses for webhook(1), claimed by an owner that then vanished.
    let crashed = ClaimOwner::unique();
    let key = webhook(1).claim_key();
    assert_eq!(
        shared
            .claim(key, crashed, Duration::from_millis(200))
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(app.send(&webhook(1)).await, Outcome::StillRunning);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(app.send(&webhook(1)).await, Outcome::Handled);
}

/// Runs `attempt` until it gives `want`, for up to a second; the last outcome.
async fn eventually<F, Fut>(attempt: F, want: Outcome) -> Outcome
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let mut outcome = attempt().await;
    for _ in 0..20 {
        if outcome == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        outcome = attempt().await;
    }
    outcome
}

async fn forged_unsigned_and_report_only_requests_never_touch_the_store(
    store: Box<dyn ReplayStore>,
) {
    let claims = Arc::new(AtomicUsize::new(0));
    let counting = Counting {
        store,
        claims: Arc::clone(&claims),
    };
    let counted: Box<dyn ReplayStore> = Box::new(counting);
    let shared = Arc::new(counted);
    let mut forged = webhook(1);
    forged.signature = compute_signature("not the token", &format!("{BASE}/sms"), &[("a", "b")]);
    let mut unsigned = webhook(2);
    unsigned.signature = "not a signature".into();

    // Enforcing: both refused before the guard.
    let app = App::new(Box::new(Arc::clone(&shared)), |g| g);
    assert_eq!(app.send(&forged).await, Outcome::Refused(403));
    assert_eq!(app.send(&unsigned).await, Outcome::Refused(403));
    // Report-only: both reach the handler, unverified and never claimed.
    let app = App::with_layer(Box::new(Arc::clone(&shared)), |g| g, |l| l.report_only());
    assert_eq!(app.send(&forged).await, Outcome::Unguarded);
    assert_eq!(app.send(&forged).await, Outcome::Unguarded);
    assert_eq!(app.send(&unsigned).await, Outcome::Unguarded);
    assert_eq!(claims.load(Ordering::SeqCst), 0);
    // A genuine one is claimed, once.
    assert_eq!(app.send(&webhook(3)).await, Outcome::Handled);
    assert_eq!(claims.load(Ordering::SeqCst), 1);
}
