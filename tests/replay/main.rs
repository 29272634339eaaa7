//! The replay guard, end to end through the layer: one suite run against every store (memory,
//! and Redis when one is running), plus what only Redis can show (two servers sharing it,
//! Redis going away and coming back).

#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "redis-cluster")]
mod cluster;
#[cfg(feature = "redis-cluster")]
mod redis_cluster;
mod redis_server;
mod suite;

use std::time::Duration;

use twilio_webhook::replay::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_suite() {
    suite::run_all(|| Box::new(MemoryStore::new(1000))).await;
}

#[tokio::test]
async fn memory_store_when_full_still_handles_new_webhooks() {
    // Capacity 2: the third webhook is handled (the oldest claim makes room), and the
    // first one's copy, its claim dropped, is handled again: documented, never a lost webhook.
    let store = MemoryStore::new(2);
    let app = suite::App::new(Box::new(store.clone()), |guard| guard);
    for n in 0..3 {
        assert_eq!(app.send(&suite::webhook(n)).await, suite::Outcome::Handled);
    }
    assert_eq!(store.len(), 2);
    assert_eq!(
        app.send(&suite::webhook(2)).await,
        suite::Outcome::Duplicate
    );
    assert_eq!(app.send(&suite::webhook(0)).await, suite::Outcome::Handled);
    assert_eq!(app.handled(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_passes_the_suite() {
    let Some(redis) = redis_server::shared() else {
        return;
    };
    let connection = redis.connection_manager().await;
    suite::run_all(move || {
        Box::new(
            twilio_webhook::replay::RedisStore::new(connection.clone())
                .key_prefix(format!("test:{}:", redis_server::unique())),
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_sharing_one_redis_handle_32_concurrent_copies_once() {
    let Some(redis) = redis_server::shared() else {
        return;
    };
    let prefix = format!("test:{}:", redis_server::unique());
    let store =
        |connection| twilio_webhook::replay::RedisStore::new(connection).key_prefix(&prefix);
    let a = suite::App::new(Box::new(store(redis.connection_manager().await)), |g| g);
    let b = suite::App::new(Box::new(store(redis.connection_manager().await)), |g| g);
    // Over real HTTP, two servers, one Redis; the handler is slow, so copies arrive while the
    // first is still running.
    a.set_delay(Duration::from_millis(200));
    b.set_delay(Duration::from_millis(200));
    let (url_a, url_b) = (a.serve().await, b.serve().await);
    let request = suite::webhook(1);
    let client = suite::client();
    let mut copies = tokio::task::JoinSet::new();
    for i in 0..32 {
        let url = if i % 2 == 0 {
            url_a.clone()
        } else {
            url_b.clone()
        };
        let (client, request) = (client.clone(), request.clone());
        copies.spawn(async move { suite::post(&client, &url, &request).await });
    }
    let answers = copies.join_all().await;
    let handled = a.handled() + b.handled();
    assert_eq!(handled, 1, "the handler ran {handled} times");
    assert_eq!(
        answers
            .iter()
            .filter(|(status, body)| *status == 200 && body == "<Response/>")
            .count(),
        31
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_and_coming_back() {
    let Some(mut redis) = redis_server::own() else {
        return;
    };
    let connection = redis.connection_manager().await;
    let prefix = format!("test:{}:", redis_server::unique());
    let store = || {
        Box::new(twilio_webhook::replay::RedisStore::new(connection.clone()).key_prefix(&prefix))
            as Box<dyn twilio_webhook::replay::ReplayStore>
    };
    let open = suite::App::new(store(), |g| g.store_timeout(Duration::from_millis(500)));
    let closed = suite::App::new(store(), |g| {
        g.fail_closed().store_timeout(Duration::from_millis(500))
    });
    assert_eq!(open.send(&suite::webhook(1)).await, suite::Outcome::Handled);
    assert_eq!(
        open.send(&suite::webhook(1)).await,
        suite::Outcome::Duplicate
    );

    redis.stop();
    // Default: the webhook is handled, marked not checked. Fail-closed: 503, Twilio retries.
    assert_eq!(
        open.send(&suite::webhook(2)).await,
        suite::Outcome::HandledUnchecked
    );
    assert_eq!(
        closed.send(&suite::webhook(3)).await,
        suite::Outcome::Unavailable
    );
    assert_eq!(closed.handled(), 0);

    redis.start();
    // The connection manager reconnects by itself: no restart of the server.
    let mut outcome = suite::Outcome::Unavailable;
    for _ in 0..50 {
        outcome = closed.send(&suite::webhook(4)).await;
        if outcome == suite::Outcome::Handled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outcome, suite::Outcome::Handled);
    assert_eq!(
        closed.send(&suite::webhook(4)).await,
        suite::Outcome::Duplicate
    );
    assert_eq!(
        open.send(&suite::webhook(4)).await,
        suite::Outcome::Duplicate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn right_after_redis_restarts_two_instances_handle_16_concurrent_copies_once() {
    // The connection manager reconnects only after a command fails: without the store's one
    // retry, the first request on each instance after a restart went unchecked.
    let Some(mut redis) = redis_server::own() else {
        return;
    };
    let prefix = format!("test:{}:", redis_server::unique());
    let store =
        |connection| twilio_webhook::replay::RedisStore::new(connection).key_prefix(&prefix);
    let a = std::sync::Arc::new(suite::App::new(
        Box::new(store(redis.connection_manager().await)),
        |g| g,
    ));
    let b = std::sync::Arc::new(suite::App::new(
        Box::new(store(redis.connection_manager().await)),
        |g| g,
    ));
    // Both connections in use, then Redis restarts under them.
    assert_eq!(a.send(&suite::webhook(1)).await, suite::Outcome::Handled);
    assert_eq!(b.send(&suite::webhook(2)).await, suite::Outcome::Handled);
    redis.stop();
    redis.start();
    a.set_delay(Duration::from_millis(100));
    b.set_delay(Duration::from_millis(100));
    let mut copies = tokio::task::JoinSet::new();
    for i in 0..16 {
        let app = std::sync::Arc::clone(if i % 2 == 0 { &a } else { &b });
        copies.spawn(async move { app.send(&suite::webhook(3)).await });
    }
    let outcomes = copies.join_all().await;
    assert_eq!(a.handled() + b.handled(), 3, "{outcomes:?}");
    assert!(
        !outcomes.contains(&suite::Outcome::HandledUnchecked),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn one_accounts_flood_through_the_layer_leaves_another_accounts_claims() {
    use bytes::Bytes;
    use http::Request;
    use http_body_util::Full;
    use tower::{ServiceBuilder, ServiceExt};
    use twilio_webhook::middleware::{AccountMap, Rejection, ReplayGuard, TwilioWebhookLayer};
    use twilio_webhook::{Validator, compute_signature};

    const A: (&str, &str) = ("AC0000000000000000000000000000000a", "token of the flooder");
    const V: (&str, &str) = ("AC0000000000000000000000000000000b", "token of the victim");
    let layer = TwilioWebhookLayer::with_key_source(
        AccountMap::new()
            .insert(A.0, Validator::new(A.1))
            .insert(V.0, Validator::new(V.1)),
    )
    .public_url("http://127.0.0.1")
    .unwrap()
    .replay_guard(ReplayGuard::new(MemoryStore::new(100)));
    let service = ServiceBuilder::new().layer(layer).service_fn(|_| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    });
    let send = |(sid, token): (&str, &str), n: usize| {
        let params = [("AccountSid", sid.to_owned()), ("Body", format!("{n}"))];
        let signature = compute_signature(token, "http://127.0.0.1/sms", &params[..]);
        let request = Request::post("/sms")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(Full::new(Bytes::from(support::form_body(&params))))
            .unwrap();
        let service = service.clone();
        async move {
            let response = service.oneshot(request).await.unwrap();
            response.extensions().get::<Rejection>().cloned()
        }
    };
    assert_eq!(send(V, 0).await, None);
    for n in 0..1_000 {
        assert_eq!(
            send(A, n).await,
            None,
            "the flooder's own webhooks are handled"
        );
    }
    assert_eq!(
        send(V, 0).await,
        Some(Rejection::Duplicate),
        "the victim's replay would be handled again"
    );
}

/// A memory store whose first completions fail, as a Redis restarting would.
struct FlakyCompletions {
    store: MemoryStore,
    failures_left: std::sync::atomic::AtomicUsize,
}

impl twilio_webhook::replay::ReplayStore for FlakyCompletions {
    fn claim(
        &self,
        key: twilio_webhook::replay::ClaimKey,
        owner: twilio_webhook::replay::ClaimOwner,
        lease: Duration,
    ) -> twilio_webhook::replay::StoreFuture<twilio_webhook::replay::Claim> {
        self.store.claim(key, owner, lease)
    }
    fn renew(
        &self,
        key: twilio_webhook::replay::ClaimKey,
        owner: twilio_webhook::replay::ClaimOwner,
        lease: Duration,
    ) -> twilio_webhook::replay::StoreFuture<bool> {
        self.store.renew(key, owner, lease)
    }
    fn complete(
        &self,
        key: twilio_webhook::replay::ClaimKey,
        owner: twilio_webhook::replay::ClaimOwner,
        ttl: Duration,
    ) -> twilio_webhook::replay::StoreFuture<bool> {
        use std::sync::atomic::Ordering;
        let fail = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Box::pin(async { Err("connection reset".into()) });
        }
        self.store.complete(key, owner, ttl)
    }
    fn release(
        &self,
        key: twilio_webhook::replay::ClaimKey,
        owner: twilio_webhook::replay::ClaimOwner,
    ) -> twilio_webhook::replay::StoreFuture<()> {
        self.store.release(key, owner)
    }
}

#[tokio::test]
async fn a_completion_that_fails_is_tried_again_so_the_resend_is_a_duplicate() {
    let store = FlakyCompletions {
        store: MemoryStore::new(100),
        failures_left: std::sync::atomic::AtomicUsize::new(2),
    };
    let app = suite::App::new(Box::new(store), |g| {
        g.lease(Duration::from_millis(300))
            .in_progress_wait(Duration::from_millis(50))
    });
    assert_eq!(app.send(&suite::webhook(1)).await, suite::Outcome::Handled);
    // Past the lease: a claim left in progress would be free again, and handled twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.send(&suite::webhook(1)).await,
        suite::Outcome::Duplicate
    );
    assert_eq!(app.handled(), 1);
}
