//! The replay guard's configuration, and the claim a request holds while it is handled.

use core::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::replay::{
    ClaimKey, ClaimOwner, DEFAULT_LEASE, DEFAULT_TTL, MemoryStore, ReplayStore, StoreFuture,
};

/// The default time a store operation may take before it counts as a failure: 1 second. A
/// store that hangs must not hold Twilio's webhooks past its 15-second timeout.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// The default time a copy waits for the copy that is still running: 5 seconds. Twilio waits
/// 15 s for an answer; a copy that waited longer would be cut off before it could run the
/// handler itself when the first fails.
pub const DEFAULT_IN_PROGRESS_WAIT: Duration = Duration::from_secs(5);

/// Each verified webhook handled once: see [`replay`](crate::replay) for the rules.
///
/// ```
/// use std::time::Duration;
/// use twilio_webhook::Validator;
/// use twilio_webhook::middleware::{ReplayGuard, TwilioWebhookLayer};
///
/// # fn main() -> Result<(), twilio_webhook::middleware::ConfigError> {
/// let layer = TwilioWebhookLayer::new(Validator::new("auth token"))?
///     .public_url("https://hooks.example.com")?
///     .replay_guard(ReplayGuard::in_memory().ttl(Duration::from_secs(3600)));
/// # Ok(()) }
/// ```
///
/// A duplicate is answered through the layer's rejection hook with
/// [`Rejection::Duplicate`](super::Rejection::Duplicate): `200` with `<Response/>` by default.
/// A copy that arrives while the first is still running waits for it (up to
/// [`in_progress_wait`](Self::in_progress_wait)): a duplicate if the first succeeded, handled
/// if the first failed, [`Rejection::InProgress`](super::Rejection::InProgress) (`503` with
/// `Retry-After`) if the wait runs out.
#[derive(Clone)]
#[must_use]
pub struct ReplayGuard {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) ttl: Duration,
    pub(crate) lease: Duration,
    pub(crate) wait: Duration,
    pub(crate) timeout: Duration,
    pub(crate) fail_closed: bool,
    /// Requests let through unchecked because the store failed, since the guard was built.
    pub(crate) unchecked: Arc<AtomicU64>,
}

impl ReplayGuard {
    /// A guard with claims in `store`.
    pub fn new(store: impl ReplayStore) -> Self {
        Self {
            store: Arc::new(store),
            ttl: DEFAULT_TTL,
            lease: DEFAULT_LEASE,
            wait: DEFAULT_IN_PROGRESS_WAIT,
            timeout: DEFAULT_STORE_TIMEOUT,
            fail_closed: false,
            unchecked: Arc::default(),
        }
    }

    /// A guard with claims in this process's memory ([`MemoryStore`], default capacity).
    pub fn in_memory() -> Self {
        Self::new(MemoryStore::default())
    }

    /// How long a handled webhook's claim is kept (default
    /// [`DEFAULT_TTL`](crate::replay::DEFAULT_TTL), one hour).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The lease of a claim in progress (default [`DEFAULT_LEASE`](crate::replay::DEFAULT_LEASE),
    /// 10 s), renewed every third of it while the handler runs: a live handler keeps its
    /// claim however long it takes, and a crashed instance's claim is free again after at most
    /// this long, so Twilio's re-send is handled. At least 3 ms.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(3));
        self
    }

    /// How long a copy waits for a copy still running before it answers `503` (default
    /// [`DEFAULT_IN_PROGRESS_WAIT`]). Keep it well under Twilio's 15 s timeout.
    pub fn in_progress_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// How long a store operation may take before it counts as failed (default
    /// [`DEFAULT_STORE_TIMEOUT`]).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// When the store fails, answer `503` (Twilio retries) instead of letting the request
    /// through unchecked. The default lets it through: a duplicate is better than a lost
    /// webhook for most handlers; choose this when a duplicate costs more (payments).
    ///
    /// **The risk of the default:** while the store is down or slower than the store timeout,
    /// *every* request passes unchecked ([`ReplayCheck::NotChecked`]), so replays and
    /// Twilio's re-sends reach the handler again for as long as it lasts. The error event
    /// counts them (`unchecked`).
    ///
    /// [`ReplayCheck::NotChecked`]: crate::replay::ReplayCheck::NotChecked
    pub fn fail_closed(mut self) -> Self {
        self.fail_closed = true;
        self
    }
}

impl fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("ttl", &self.ttl)
            .field("lease", &self.lease)
            .field("in_progress_wait", &self.wait)
            .field("store_timeout", &self.timeout)
            .field("fail_closed", &self.fail_closed)
            .finish_non_exhaustive()
    }
}

/// The claim a request holds while its handler runs. Dropped while armed (a non-2xx answer,
/// an error, a dropped or panicking future), it releases the claim, so Twilio's re-send is
/// handled; dropped while its completion is under way (the client went away after a 2xx), it
/// completes it on the runtime, so the webhook is not handled twice.
pub(crate) struct HeldClaim {
    store: Arc<dyn ReplayStore>,
    key: ClaimKey,
    owner: ClaimOwner,
    ttl: Duration,
    lease: Duration,
    timeout: Duration,
    on_drop: OnDrop,
    /// Whether the store said the claim is ours (not a claim whose answer was lost).
    pub(crate) checked: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OnDrop {
    Nothing,
    Release,
    Complete,
}

/// The pause between two tries of a completion that failed.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A store operation bounded by the guard's store timeout.
pub(crate) type Bounded<T> = tokio::time::Timeout<StoreFuture<T>>;

impl HeldClaim {
    pub(crate) fn new(guard: &ReplayGuard, key: ClaimKey, owner: ClaimOwner) -> Self {
        Self {
            store: Arc::clone(&guard.store),
            key,
            owner,
            ttl: guard.ttl,
            lease: guard.lease,
            timeout: guard.timeout,
            on_drop: OnDrop::Release,
            checked: true,
        }
    }

    fn bounded<T>(&self, operation: StoreFuture<T>) -> Bounded<T> {
        tokio::time::timeout(self.timeout, operation)
    }

    /// The claim again (a copy waiting for the one in progress asks once more).
    pub(crate) fn claim(&self) -> Bounded<crate::replay::Claim> {
        self.bounded(self.store.claim(self.key, self.owner, self.lease))
    }

    /// How often a claim in progress is renewed: three times a lease.
    pub(crate) fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// The lease extended: the handler is still running.
    pub(crate) fn renew(&self) -> Bounded<bool> {
        self.bounded(self.store.renew(self.key, self.owner, self.lease))
    }

    /// The handler succeeded: the claim is kept, handled, for its TTL. Until
    /// [`finish`](Self::finish), dropping `self` completes it on the runtime.
    pub(crate) fn complete(&mut self) -> Bounded<bool> {
        self.on_drop = OnDrop::Complete;
        self.bounded(self.store.complete(self.key, self.owner, self.ttl))
    }

    /// The handler failed: the claim is released, so Twilio's re-send is handled. Until
    /// [`finish`](Self::finish), dropping `self` releases it on the runtime.
    pub(crate) fn release(&mut self) -> Bounded<()> {
        self.on_drop = OnDrop::Release;
        self.bounded(self.store.release(self.key, self.owner))
    }

    /// Nothing left to do: the store answered, or the claim is not ours (another copy holds
    /// the key).
    pub(crate) fn finish(mut self) {
        self.on_drop = OnDrop::Nothing;
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        // Nobody is left to wait for it: run it on the runtime. A store whose operations work
        // when called (the memory store) has already done it.
        let what = match self.on_drop {
            OnDrop::Nothing => return,
            OnDrop::Release => "a release",
            OnDrop::Complete => "a completion",
        };
        let (store, key, owner, ttl, on_drop) = (
            Arc::clone(&self.store),
            self.key,
            self.owner,
            self.ttl,
            self.on_drop,
        );
        let operation = move || -> StoreFuture<()> {
            match on_drop {
                OnDrop::Complete => {
                    let complete = store.complete(key, owner, ttl);
                    Box::pin(async move { complete.await.map(drop) })
                }
                _ => store.release(key, owner),
            }
        };
        // A completion that fails now (Redis restarting) is asked again until the lease would
        // have ended: one that never lands would let a re-send be handled twice once the lease
        // ran out. A release is tried once: one that never lands only holds up the re-send
        // until the lease ends, and a store that is down must not be asked again by every
        // request refused meanwhile.
        let timeout = self.timeout;
        let give_up_after = match on_drop {
            OnDrop::Complete => self.lease,
            _ => Duration::ZERO,
        };
        let first = operation();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let deadline = tokio::time::Instant::now() + give_up_after;
                let mut attempt = first;
                loop {
                    let error: Box<dyn std::error::Error + Send + Sync> =
                        match tokio::time::timeout(timeout, attempt).await {
                            Ok(Ok(())) => return,
                            Ok(Err(error)) => error,
                            Err(elapsed) => Box::new(elapsed),
                        };
                    if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
                        tracing::error!(target: "twilio_webhook", %error, "replay guard: {what} failed; the claim's lease ends it");
                        return;
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                    attempt = operation();
                }
            });
        }
    }
}
