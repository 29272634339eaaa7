//! `RedisStore`: claims in Redis, shared by every instance of a service.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};

use super::{Claim, ClaimKey, ClaimOwner, ReplayStore, StoreFuture};

/// The default prefix of the keys the store writes.
pub const DEFAULT_KEY_PREFIX: &str = "twilio-webhook:replay:";

/// Deletes the key only if it still holds this owner: a request whose claim expired and was
/// taken by a later copy must not delete that copy's claim. One script, so one atomic step.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
             return redis.call('DEL', KEYS[1]) \
         else \
             return 0 \
         end",
    )
});

/// Claims in Redis, for several instances of a service behind a load balancer: a re-send that
/// lands on another instance finds the first copy's claim.
///
/// Takes a connection you configured (TLS, authentication, database, timeouts are yours); by
/// default the `redis` crate's [`ConnectionManager`], which reconnects by itself after Redis
/// restarts. Any other async connection works too (a cluster connection, for one).
///
/// - claim: `SET <prefix><key> <owner> NX PX <ttl>`, one atomic insert-if-absent;
/// - release: a script that deletes the key only if it still holds this owner.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use twilio_webhook::replay::RedisStore;
///
/// let client = redis::Client::open("redis://127.0.0.1:6379")?;
/// let store = RedisStore::new(redis::aio::ConnectionManager::new(client).await?)
///     .key_prefix("myapp:twilio:");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore<C = ConnectionManager> {
    connection: C,
    prefix: Arc<str>,
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A store on `connection`, with keys under [`DEFAULT_KEY_PREFIX`].
    pub fn new(connection: C) -> Self {
        Self {
            connection,
            prefix: Arc::from(DEFAULT_KEY_PREFIX),
        }
    }

    /// Keys under `prefix` instead (one prefix per application sharing a Redis).
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl AsRef<str>) -> Self {
        self.prefix = Arc::from(prefix.as_ref());
        self
    }

    fn redis_key(&self, key: ClaimKey) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl<C> ReplayStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn claim(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> StoreFuture<Claim> {
        let mut connection = self.connection.clone();
        let key = self.redis_key(key);
        // Redis refuses PX 0; a claim lives at least a millisecond.
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        Box::pin(async move {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(owner.to_string())
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(&mut connection)
                .await?;
            Ok(match set {
                Some(_) => Claim::Claimed,
                None => Claim::AlreadyClaimed,
            })
        })
    }

    fn release(&self, key: ClaimKey, owner: ClaimOwner) -> StoreFuture<()> {
        let mut connection = self.connection.clone();
        let key = self.redis_key(key);
        Box::pin(async move {
            let _deleted: i64 = RELEASE
                .key(&key)
                .arg(owner.to_string())
                .invoke_async(&mut connection)
                .await?;
            Ok(())
        })
    }
}

impl<C> core::fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}
