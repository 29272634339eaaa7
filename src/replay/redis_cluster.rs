//! `RedisCluster`: the `redis` crate's cluster connection, replaced when it stops answering.
//!
//! Why this exists: measured on a six-node cluster on loopback (redis 1.2.2, the same with
//! 1.8.1), killing a master while many commands are in flight leaves the crate's async
//! cluster connection answering nothing, ever: not the dead master's slots, not the two
//! healthy masters', not after the replica was promoted and the cluster reported `ok`. Its
//! timeouts, retries and topology refresh do not bring it back (tried: 300 ms response and
//! connection timeouts, 3 retries, 50-200 ms between them). The likely cause, from its source:
//! the connection's driver stops polling the requests in flight while it recovers, and the
//! recovery waits for the connection map's async lock, which a request in flight can hold or
//! be handed while it is not polled (it takes the write lock after connecting to a node). The
//! same class of deadlock was fixed in redis-rs #882 for another path, and in valkey-glide's
//! fork of the crate (valkey-io/valkey-glide#2643) by making that lock synchronous. A *new*
//! connection from the same client works at once. So this wrapper times every
//! command, and a connection that lets one go unanswered is replaced in the background.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// How long a command may take before the connection is suspected of being stuck, and the
/// client's own response and connection timeouts. Half the guard's store timeout (1 s), so a
/// command can be tried twice within it.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// The least time between two replacements: a cluster that is down (not only stuck) is not
/// asked to build a new connection on every request.
const REPLACE_EVERY: Duration = Duration::from_secs(1);

/// A connection to a Redis Cluster for [`RedisStore`](super::RedisStore): the `redis` crate's
/// async cluster connection, with a response timeout on every command, replaced in the
/// background by a new one from the same client when a command goes unanswered or fails
/// on the connection (at most once a second). Commands in between use the old one.
///
/// The client is yours (TLS, authentication, retries); the connection's timeouts are set
/// from [`DEFAULT_RESPONSE_TIMEOUT`] or [`connect_with_timeout`](Self::connect_with_timeout).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use twilio_webhook::replay::{RedisCluster, RedisStore};
///
/// let client = redis::cluster::ClusterClient::new(vec![
///     "redis://10.0.0.1:6379",
///     "redis://10.0.0.2:6379",
///     "redis://10.0.0.3:6379",
/// ])?;
/// let store = RedisStore::new(RedisCluster::connect(client).await?).key_prefix("myapp:twilio:");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisCluster {
    shared: Arc<Shared>,
}

struct Shared {
    client: ClusterClient,
    timeout: Duration,
    state: Mutex<State>,
}

struct State {
    connection: ClusterConnection,
    replacements: Replacements,
}

/// When a connection gets replaced: the bookkeeping, apart from the connection itself.
#[derive(Debug, Default)]
struct Replacements {
    /// The connection commands use now, counted from 0; bumped at each replacement.
    generation: u64,
    /// A replacement is being built.
    replacing: bool,
    /// When the last replacement started.
    started_at: Option<Instant>,
}

impl Replacements {
    /// Whether a command that went unanswered on connection `generation` starts a
    /// replacement at `now`: not when that connection was replaced already, one is being
    /// built, or the last one started under [`REPLACE_EVERY`] ago.
    fn start(&mut self, generation: u64, now: Instant) -> bool {
        let recent = self
            .started_at
            .is_some_and(|at| now.saturating_duration_since(at) < REPLACE_EVERY);
        if self.generation != generation || self.replacing || recent {
            return false;
        }
        self.replacing = true;
        self.started_at = Some(now);
        true
    }

    /// The replacement that started is over: built (the generation moves on) or not.
    fn finish(&mut self, built: bool) {
        self.replacing = false;
        if built {
            self.generation += 1;
        }
    }
}

impl RedisCluster {
    /// Connects through `client` with [`DEFAULT_RESPONSE_TIMEOUT`].
    ///
    /// # Errors
    /// The client's error when no node of the cluster answers.
    pub async fn connect(client: ClusterClient) -> RedisResult<Self> {
        Self::connect_with_timeout(client, DEFAULT_RESPONSE_TIMEOUT).await
    }

    /// Connects through `client`; `timeout` bounds each command (and each connection
    /// attempt), and a command that takes longer gets the connection replaced.
    ///
    /// # Errors
    /// The client's error when no node of the cluster answers.
    pub async fn connect_with_timeout(
        client: ClusterClient,
        timeout: Duration,
    ) -> RedisResult<Self> {
        let connection = new_connection(&client, timeout).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                timeout,
                state: Mutex::new(State {
                    connection,
                    replacements: Replacements::default(),
                }),
            }),
        })
    }

    /// How many times the connection was replaced (for metrics and tests).
    pub fn replacements(&self) -> u64 {
        self.shared.lock().replacements.generation
    }

    /// The connection to use now.
    fn current(&self) -> (ClusterConnection, u64) {
        let state = self.shared.lock();
        (state.connection.clone(), state.replacements.generation)
    }

    /// Runs one command on the current connection within the timeout; an unanswered or
    /// broken one gets that connection replaced.
    async fn run<T>(
        &self,
        command: impl AsyncFnOnce(&mut ClusterConnection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let (mut connection, generation) = self.current();
        let result = match tokio::time::timeout(self.shared.timeout, command(&mut connection)).await
        {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the Redis Cluster did not answer within the response timeout",
            ))),
        };
        if let Err(error) = &result
            && stuck(error)
        {
            self.replace(generation);
        }
        result
    }

    /// Starts building a new connection in the background, unless one is being built, this
    /// one was already replaced, or the last replacement was under a second ago.
    fn replace(&self, generation: u64) {
        if !self
            .shared
            .lock()
            .replacements
            .start(generation, Instant::now())
        {
            return;
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let fresh = tokio::time::timeout(
                shared.timeout * 4,
                new_connection(&shared.client, shared.timeout),
            )
            .await
            .ok()
            .and_then(Result::ok);
            let mut state = shared.lock();
            // When the cluster is not reachable yet, the next unanswered command tries again
            // (a second later at the soonest).
            state.replacements.finish(fresh.is_some());
            if let Some(connection) = fresh {
                state.connection = connection;
                tracing::warn!(
                    target: "twilio_webhook::replay",
                    replacements = state.replacements.generation,
                    "the Redis Cluster connection stopped answering; replaced it with a new one"
                );
            }
        });
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether the error says the connection (not the command) failed: unanswered, or broken.
/// To the redis crate every failure of the connection (reset, refused, closed, timed out,
/// ours included) is an I/O error; a cluster connection that lost a node's connection says
/// so with a kind of its own.
fn stuck(error: &RedisError) -> bool {
    error.is_io_error() || error.kind() == redis::ErrorKind::ClusterConnectionNotFound
}

async fn new_connection(
    client: &ClusterClient,
    timeout: Duration,
) -> RedisResult<ClusterConnection> {
    let config = ClusterConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(timeout);
    client.get_async_connection_with_config(config).await
}

impl ConnectionLike for RedisCluster {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.run(async move |connection| connection.req_packed_command(cmd).await))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(
            self.run(async move |connection| {
                connection.req_packed_commands(cmd, offset, count).await
            }),
        )
    }

    fn get_db(&self) -> i64 {
        0
    }
}

impl core::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("timeout", &self.shared.timeout)
            .field("replacements", &self.replacements())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unanswered_or_broken_connection_is_stuck_and_a_refused_command_is_not() {
        for kind in [
            std::io::ErrorKind::TimedOut,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            let error = RedisError::from(std::io::Error::new(kind, "test"));
            assert!(stuck(&error), "{kind:?}");
        }
        let lost = RedisError::from((redis::ErrorKind::ClusterConnectionNotFound, "test"));
        assert!(stuck(&lost));
        for kind in [redis::ErrorKind::Client, redis::ErrorKind::Parse] {
            assert!(!stuck(&RedisError::from((kind, "test"))), "{kind:?}");
        }
    }

    #[test]
    fn a_connection_is_replaced_once_and_at_most_once_a_second() {
        let start = Instant::now();
        let mut replacements = Replacements::default();
        assert!(replacements.start(0, start));
        // Being built: the other unanswered commands start nothing.
        assert!(!replacements.start(0, start + Duration::from_millis(10)));
        replacements.finish(true);
        assert_eq!(replacements.generation, 1);
        // A command still on the replaced connection does not replace the new one.
        assert!(!replacements.start(0, start + Duration::from_secs(2)));
        // The new one, unanswered too: not within a second of the last start.
        assert!(!replacements.start(1, start + Duration::from_millis(999)));
        assert!(replacements.start(1, start + Duration::from_secs(1)));
        // Not built (the cluster still down): the same generation, tried again a second on.
        replacements.finish(false);
        assert_eq!(replacements.generation, 1);
        assert!(!replacements.start(1, start + Duration::from_millis(1500)));
        assert!(replacements.start(1, start + Duration::from_secs(2)));
        replacements.finish(true);
        assert_eq!(replacements.generation, 2);
    }
}
