//! Each webhook handled once: a guard against replays and duplicate deliveries.
//!
//! Twilio's signature carries no timestamp, so a captured request verifies forever; and
//! Twilio re-sends a webhook when a connection fails or times out, to whichever replica the
//! load balancer picks. The guard gives every verified request a [`ClaimKey`], derived from
//! the MAC that verified it and the identity of the key that verified the MAC: nobody can make
//! one without the key, and Twilio's re-sends of one request all carry the same. Then:
//!
//! - before the handler runs, the key is **claimed** atomically in a [`ReplayStore`] (one
//!   insert-if-absent in memory, `SET key owner NX PX lease` on Redis): of two concurrent
//!   copies, exactly one wins. The claim is *in progress*, under a **lease** the layer renews
//!   while the handler runs, whatever the TTL: it never expires under a live handler, and
//!   a crashed instance's claim expires when its lease runs out, so the re-send is handled;
//! - after the handler, a `2xx` **completes** the claim: it is kept as *handled* for its time
//!   to live. Anything else (another status, an error, a dropped or panicking future)
//!   **releases** it, so Twilio's re-send is handled: nothing is lost. A release deletes the
//!   claim only if it is still this request's (compare-and-delete), never one a later copy
//!   has taken since;
//! - a copy whose key is **handled** is answered without the handler: `200` with the empty
//!   TwiML `<Response/>` by default, so Twilio stops re-sending;
//! - a copy whose key is **in progress** is not told "done" before the outcome is known (if
//!   the first then failed, the webhook would be lost): it **waits** for the first, asking the
//!   store again every few milliseconds, up to a bound well under Twilio's 15 s timeout
//!   (default 5 s). The first completed: the copy is a duplicate. The first released: the copy
//!   claims the key and runs the handler itself. The wait ran out: `503` with `Retry-After`,
//!   so Twilio retries or uses the fallback URL, never silence.
//!
//! Only verified requests are claimed: forged ones never touch the store. The
//! `I-Twilio-Idempotency-Token` header is not signed, so it is only logged, never the key;
//! `MessageSid` is shared by a message's later status callbacks, so it is not the key either.
//!
//! The stores: [`MemoryStore`] (the default: one process), and `RedisStore` (feature `redis`:
//! several instances sharing one guard; on a Redis Cluster through `RedisCluster`, feature
//! `redis-cluster`). A store that fails does not lose the webhook: by
//! default the request passes, marked [`ReplayCheck::NotChecked`], with an error event;
//! the middleware's guard can fail closed (`503`) instead.

mod key;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis-cluster")]
mod redis_cluster;

use core::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use key::{ClaimKey, ClaimOwner};
pub use memory::{DEFAULT_CAPACITY, MemoryStore, StoreFull};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{DEFAULT_KEY_PREFIX, RedisStore};
#[cfg(feature = "redis-cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
pub use redis_cluster::{DEFAULT_RESPONSE_TIMEOUT, RedisCluster};

/// Errors a store may return, boxed.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// What a store's operations return: a future that owns what it needs.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// The key was free and is now this request's, in progress: handle it.
    Claimed,
    /// Another copy holds the key and is still running: its outcome is not known yet.
    InProgress,
    /// Another copy was handled (a `2xx`): this one is a duplicate.
    Handled,
}

/// Where claims live. Small, async and fallible, so that a store on the network fits.
///
/// Every operation must be atomic with respect to every other caller, in every process that
/// shares the store: no check-then-set. A claim is *in progress* (under a lease that its owner
/// renews) until its owner completes it (*handled*, kept for a TTL) or releases it.
pub trait ReplayStore: Send + Sync + 'static {
    /// Takes `key` for `owner`, in progress, for `lease`, unless someone holds it
    /// (insert-if-absent). An in-progress claim whose lease ran out, or a handled one whose TTL
    /// did, is free. A claim in progress held by `owner` itself is `Claimed` again, its lease
    /// restarted: the same request asking again after the first answer was lost (a broken
    /// connection) must not wait for itself as for another copy.
    ///
    /// A store that cannot keep the claim (a bounded store full of claims it must not drop)
    /// returns an error: the guard's fail-open or fail-closed policy then applies, and the
    /// error event says why. It never claims and then silently forgets.
    fn claim(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> StoreFuture<Claim>;

    /// Extends `owner`'s in-progress claim of `key` to `lease` from now. `Ok(false)` when the
    /// claim is no longer `owner`'s.
    fn renew(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> StoreFuture<bool>;

    /// Marks `owner`'s in-progress claim of `key` handled, kept for `ttl` from now. `Ok(false)`
    /// when the claim is no longer `owner`'s.
    fn complete(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> StoreFuture<bool>;

    /// Deletes `key` if, and only if, `owner` still holds it in progress
    /// (compare-and-delete).
    ///
    /// May be called from `Drop` (a request whose client went away): the work should start
    /// when it is called, or the future must be driven by the caller's runtime.
    fn release(&self, key: ClaimKey, owner: ClaimOwner) -> StoreFuture<()>;
}

macro_rules! forward_store {
    ($($wrapper:ident)::+) => {
        impl<T: ReplayStore + ?Sized> ReplayStore for $($wrapper)::+<T> {
            fn claim(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> StoreFuture<Claim> {
                (**self).claim(key, owner, lease)
            }

            fn renew(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> StoreFuture<bool> {
                (**self).renew(key, owner, lease)
            }

            fn complete(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> StoreFuture<bool> {
                (**self).complete(key, owner, ttl)
            }

            fn release(&self, key: ClaimKey, owner: ClaimOwner) -> StoreFuture<()> {
                (**self).release(key, owner)
            }
        }
    };
}

forward_store!(Box);
forward_store!(std::sync::Arc);

/// The mark a request carries when the replay guard let it through.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayCheck {
    /// This request holds the claim: it is the first copy.
    Claimed,
    /// The store failed, and the guard lets requests through rather than losing them: this
    /// may be a duplicate. The reason is in the error event.
    NotChecked,
}

/// The default lease of a claim in progress: 10 seconds, renewed every third of it while the
/// handler runs. It bounds how long a crashed instance's claim holds up Twilio's re-send; a
/// live handler keeps its claim however long it takes.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The default time a handled webhook's claim is kept: one hour.
///
/// Twilio's re-sends (connection overrides retry up to five times, each after at most a 15 s
/// timeout) all land within a few minutes, so an hour catches every one of them with a wide
/// margin, and bounds what a busy memory store holds. A replay of a captured request after the
/// claim expires is not caught: HTTPS is what stops requests from being captured. With Redis,
/// a day (`Duration::from_secs(86_400)`) costs little.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Claimed => "claimed",
            Self::InProgress => "in progress",
            Self::Handled => "handled",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_reads_as_its_stage() {
        assert_eq!(Claim::Claimed.to_string(), "claimed");
        assert_eq!(Claim::InProgress.to_string(), "in progress");
        assert_eq!(Claim::Handled.to_string(), "handled");
    }

    #[test]
    fn the_defaults_are_what_the_docs_say() {
        assert_eq!(DEFAULT_LEASE, Duration::from_secs(10));
        assert_eq!(DEFAULT_TTL, Duration::from_secs(3600));
    }
}
