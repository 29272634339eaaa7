//! The replay guard's configuration, and the claim a request holds while it is handled.

use core::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::replay::{ClaimKey, ClaimOwner, DEFAULT_TTL, MemoryStore, ReplayStore};

/// The default time a store operation may take before it counts as a failure: 1 second. A
/// store that hangs must not hold Twilio's webhooks past its 15-second timeout.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(1);

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
#[derive(Clone)]
#[must_use]
pub struct ReplayGuard {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) ttl: Duration,
    pub(crate) timeout: Duration,
    pub(crate) fail_closed: bool,
}

impl ReplayGuard {
    /// A guard with claims in `store`.
    pub fn new(store: impl ReplayStore) -> Self {
        Self {
            store: Arc::new(store),
            ttl: DEFAULT_TTL,
            timeout: DEFAULT_STORE_TIMEOUT,
            fail_closed: false,
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

    /// How long a store operation may take before it counts as failed (default
    /// [`DEFAULT_STORE_TIMEOUT`]).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// When the store fails, answer `503` (Twilio retries) instead of letting the request
    /// through unchecked. The default lets it through: a duplicate is better than a lost
    /// webhook for most handlers; choose this when a duplicate costs more (payments).
    pub fn fail_closed(mut self) -> Self {
        self.fail_closed = true;
        self
    }
}

impl fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("ttl", &self.ttl)
            .field("store_timeout", &self.timeout)
            .field("fail_closed", &self.fail_closed)
            .finish_non_exhaustive()
    }
}

/// The claim a request holds while its handler runs. Dropped without [`keep`](Self::keep)
/// (a non-2xx answer, an error, a dropped or panicking future), it releases the claim, so
/// Twilio's re-send is handled.
pub(crate) struct HeldClaim {
    store: Arc<dyn ReplayStore>,
    key: ClaimKey,
    owner: ClaimOwner,
    timeout: Duration,
    armed: bool,
}

impl HeldClaim {
    pub(crate) fn new(guard: &ReplayGuard, key: ClaimKey, owner: ClaimOwner) -> Self {
        Self {
            store: Arc::clone(&guard.store),
            key,
            owner,
            timeout: guard.timeout,
            armed: true,
        }
    }

    /// The handler succeeded: the claim stays until its TTL ends.
    pub(crate) fn keep(mut self) {
        self.armed = false;
    }

    /// Not ours to release (another copy holds the key).
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }

    /// The release, for a caller that waits for it before answering.
    pub(crate) fn release(mut self) -> tokio::time::Timeout<crate::replay::StoreFuture<()>> {
        self.armed = false;
        tokio::time::timeout(self.timeout, self.store.release(self.key, self.owner))
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Nobody is left to wait for it: run it on the runtime. A store whose release works
        // when called (the memory store) has already done it.
        let release = self.store.release(self.key, self.owner);
        let timeout = self.timeout;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Ok(Err(error)) = tokio::time::timeout(timeout, release).await {
                    tracing::error!(target: "twilio_webhook", %error, "replay guard: a release failed; the claim expires with its TTL");
                }
            });
        }
    }
}
