//! Each webhook handled once: a guard against replays and duplicate deliveries.
//!
//! Twilio's signature carries no timestamp, so a captured request verifies forever; and
//! Twilio re-sends a webhook when a connection fails or times out, to whichever replica the
//! load balancer picks. The guard gives every verified request a [`ClaimKey`], derived from
//! the MAC that verified it and the key that verified the MAC: nobody can make one without the
//! key, and Twilio's re-sends of one request all carry the same. Then:
//!
//! - before the handler runs, the key is **claimed** atomically in a [`ReplayStore`] (one
//!   insert-if-absent in memory, `SET key owner NX PX ttl` on Redis): of two concurrent
//!   copies, exactly one wins;
//! - a copy whose key is already claimed (handled, or still running) is answered without the
//!   handler: `200` with the empty TwiML `<Response/>` by default, so Twilio stops re-sending;
//! - after the handler, a `2xx` keeps the claim for its time to live; anything else (another
//!   status, an error, a dropped or panicking future) **releases** it, so Twilio's re-send is
//!   handled: nothing is lost. A release deletes the claim only if it is still this request's
//!   (compare-and-delete), never one a later copy has taken since.
//!
//! Only verified requests are claimed: forged ones never touch the store. The
//! `I-Twilio-Idempotency-Token` header is not signed, so it is only logged, never the key;
//! `MessageSid` is shared by a message's later status callbacks, so it is not the key either.
//!
//! The stores: [`MemoryStore`] (the default: one process), and `RedisStore` (feature `redis`:
//! several instances sharing one guard). A store that fails does not lose the webhook: by
//! default the request passes, marked [`ReplayCheck::NotChecked`], with an error event;
//! the middleware's guard can fail closed (`503`) instead.

mod key;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use core::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use key::{ClaimKey, ClaimOwner};
pub use memory::{DEFAULT_CAPACITY, MemoryStore};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{DEFAULT_KEY_PREFIX, RedisStore};

/// Errors a store may return, boxed.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// What a store's operations return: a future that owns what it needs.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The key was free and is now this request's: handle it.
    Claimed,
    /// Another copy holds the key (handled already, or still running): do not handle it.
    AlreadyClaimed,
}

/// Where claims live. Small, async and fallible, so that a store on the network fits.
///
/// Both operations must be atomic with respect to every other caller, in every process that
/// shares the store: no check-then-set.
pub trait ReplayStore: Send + Sync + 'static {
    /// Takes `key` for `owner` for `ttl`, unless someone holds it (insert-if-absent).
    fn claim(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> StoreFuture<Claim>;

    /// Deletes `key` if, and only if, `owner` still holds it (compare-and-delete).
    ///
    /// May be called from `Drop` (a request whose client went away): the work should start
    /// when it is called, or the future must be driven by the caller's runtime.
    fn release(&self, key: ClaimKey, owner: ClaimOwner) -> StoreFuture<()>;
}

impl<T: ReplayStore + ?Sized> ReplayStore for Box<T> {
    fn claim(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> StoreFuture<Claim> {
        (**self).claim(key, owner, ttl)
    }

    fn release(&self, key: ClaimKey, owner: ClaimOwner) -> StoreFuture<()> {
        (**self).release(key, owner)
    }
}

impl<T: ReplayStore + ?Sized> ReplayStore for std::sync::Arc<T> {
    fn claim(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> StoreFuture<Claim> {
        (**self).claim(key, owner, ttl)
    }

    fn release(&self, key: ClaimKey, owner: ClaimOwner) -> StoreFuture<()> {
        (**self).release(key, owner)
    }
}

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
            Self::AlreadyClaimed => "already claimed",
        })
    }
}
