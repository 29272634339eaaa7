//! `RedisStore`: claims in Redis, shared by every instance of a service.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};

use super::{Claim, ClaimKey, ClaimOwner, ReplayStore, StoreFuture};

/// The default prefix of the keys the store writes.
pub const DEFAULT_KEY_PREFIX: &str = "twilio-webhook:replay:";

// Each claim's value says its stage and owner: `p:<owner>` in progress, `d:<owner>` handled.
// Every script touches one key (`KEYS[1]`), so the store works unchanged on a Redis Cluster.

/// Takes the key in progress unless it is held; says which stage holds it otherwise. One
/// script, so one atomic step: no check-then-set. The owner's own claim asked again (a retry
/// after the first answer was lost with the connection) is its own: claimed, lease restarted.
static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('SET', KEYS[1], 'p:' .. ARGV[1], 'NX', 'PX', ARGV[2]) then \
             return 0 \
         end \
         local held = redis.call('GET', KEYS[1]) \
         if held == 'p:' .. ARGV[1] then \
             redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
             return 0 \
         end \
         if held and string.sub(held, 1, 2) == 'd:' then return 2 end \
         return 1",
    )
});

/// Extends the lease, only if the key is still this owner's claim in progress.
static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == 'p:' .. ARGV[1] then \
             return redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
         end \
         return 0",
    )
});

/// Marks the claim handled for its TTL, only if it is still this owner's in progress.
static COMPLETE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == 'p:' .. ARGV[1] then \
             redis.call('SET', KEYS[1], 'd:' .. ARGV[1], 'PX', ARGV[2]) \
             return 1 \
         end \
         return 0",
    )
});

/// Deletes the key only if it still holds this owner in progress: a request whose lease ran
/// out and whose key a later copy took must not delete that copy's claim.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == 'p:' .. ARGV[1] then \
             return redis.call('DEL', KEYS[1]) \
         end \
         return 0",
    )
});

/// Milliseconds for `PX`: Redis refuses 0, so at least one.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Whether the command failed because the connection broke (Redis restarted, a failover):
/// worth one more try on the reconnected connection. To the redis crate every failure of the
/// connection (reset, refused, closed, timed out) is an I/O error; a command Redis refused
/// is not, and is not sent again.
fn connection_broke(error: &redis::RedisError) -> bool {
    error.is_io_error()
}

/// Claims in Redis, for several instances of a service behind a load balancer: a re-send that
/// lands on another instance finds the first copy's claim.
///
/// Takes a connection you configured (TLS, authentication, database, timeouts are yours); by
/// default the `redis` crate's [`ConnectionManager`], which reconnects by itself after Redis
/// restarts. Any other async connection works too; on a Redis Cluster use
/// `RedisCluster` (feature `redis-cluster`), which replaces a cluster connection that stops
/// answering after a failover.
///
/// - claim: `SET <prefix><key> p:<owner> NX PX <lease>` (in a script that also says, when the
///   key is held, whether it is in progress or handled), one atomic insert-if-absent;
/// - renew, complete and release: scripts that extend the lease, mark the claim handled for
///   its TTL (`d:<owner>`), or delete it, each only if the key still holds this owner in
///   progress (compare-and-set);
/// - a command that fails because the connection broke is tried once more (the connection
///   manager reconnects after a failed command), so a Redis that is back is used at once.
///
/// Every command touches one key, so on a Redis Cluster no hash tags are needed (and a key
/// prefix with `{..}` would put every claim on one master).
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

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Runs `script` on `key` with the owner and a duration, once more if the connection
    /// broke: the connection manager reconnects only after a failed command, so without the
    /// second try the first request after Redis comes back would go unchecked on every
    /// instance. The guard's store timeout bounds both tries together.
    fn run(
        &self,
        script: &'static redis::Script,
        key: ClaimKey,
        owner: ClaimOwner,
        duration: Option<Duration>,
    ) -> StoreFuture<i64> {
        let mut connection = self.connection.clone();
        let key = self.redis_key(key);
        let owner = owner.to_string();
        Box::pin(async move {
            let mut invocation = script.key(&key);
            invocation.arg(&owner);
            if let Some(duration) = duration {
                invocation.arg(millis(duration));
            }
            match invocation.invoke_async(&mut connection).await {
                Err(error) if connection_broke(&error) => {
                    Ok(invocation.invoke_async(&mut connection).await?)
                }
                result => Ok(result?),
            }
        })
    }
}

impl<C> ReplayStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn claim(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> StoreFuture<Claim> {
        let run = self.run(&CLAIM, key, owner, Some(lease));
        Box::pin(async move {
            Ok(match run.await? {
                0 => Claim::Claimed,
                2 => Claim::Handled,
                _ => Claim::InProgress,
            })
        })
    }

    fn renew(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> StoreFuture<bool> {
        let run = self.run(&RENEW, key, owner, Some(lease));
        Box::pin(async move { Ok(run.await? == 1) })
    }

    fn complete(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> StoreFuture<bool> {
        let run = self.run(&COMPLETE, key, owner, Some(ttl));
        Box::pin(async move { Ok(run.await? == 1) })
    }

    fn release(&self, key: ClaimKey, owner: ClaimOwner) -> StoreFuture<()> {
        let run = self.run(&RELEASE, key, owner, None);
        Box::pin(async move { run.await.map(drop) })
    }
}

impl<C> core::fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

    use super::*;

    /// A connection that fails every command with one error, counting the commands.
    #[derive(Clone)]
    struct Failing {
        error: fn() -> RedisError,
        sent: Arc<AtomicUsize>,
    }

    impl ConnectionLike for Failing {
        fn req_packed_command<'a>(&'a mut self, _: &'a Cmd) -> RedisFuture<'a, Value> {
            self.sent.fetch_add(1, Ordering::Relaxed);
            let error = (self.error)();
            Box::pin(async move { Err(error) })
        }

        fn req_packed_commands<'a>(
            &'a mut self,
            _: &'a Pipeline,
            _: usize,
            _: usize,
        ) -> RedisFuture<'a, Vec<Value>> {
            self.sent.fetch_add(1, Ordering::Relaxed);
            let error = (self.error)();
            Box::pin(async move { Err(error) })
        }

        fn get_db(&self) -> i64 {
            0
        }
    }

    /// How many times a claim was sent on a connection failing with `error`.
    fn sent(error: fn() -> RedisError) -> usize {
        let connection = Failing {
            error,
            sent: Arc::default(),
        };
        let store = RedisStore::new(connection.clone());
        let claim = store.claim(
            ClaimKey::from_bytes([7; 16]),
            ClaimOwner::unique(),
            Duration::from_secs(1),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(runtime.block_on(claim).is_err(), "the store's error");
        connection.sent.load(Ordering::Relaxed)
    }

    #[test]
    fn a_broken_connection_is_tried_once_more_and_a_refused_command_is_not_sent_again() {
        let broke = || std::io::Error::from(std::io::ErrorKind::ConnectionReset).into();
        assert_eq!(sent(broke), 2);
        let refused = || (redis::ErrorKind::Client, "refused").into();
        assert_eq!(sent(refused), 1);
    }

    #[test]
    fn a_lease_or_ttl_under_a_millisecond_is_one_millisecond_for_redis() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(10)), 10_000);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn debug_shows_the_key_prefix_and_not_the_connection() {
        let connection = Failing {
            error: || (redis::ErrorKind::Client, "unused").into(),
            sent: Arc::default(),
        };
        let store = RedisStore::new(connection).key_prefix("myapp:");
        assert_eq!(
            format!("{store:?}"),
            r#"RedisStore { key_prefix: "myapp:", .. }"#
        );
    }
}
