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
    /// The connection commands use now, counted from 0; bumped at each replacement.
    generation: u64,
    /// A replacement is being built.
    replacing: bool,
    /// When the last replacement started.
    replaced_at: Option<Instant>,
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
                    generation: 0,
                    replacing: false,
                    replaced_at: None,
                }),
            }),
        })
    }

    /// How many times the connection was replaced (for metrics and tests).
    pub fn replacements(&self) -> u64 {
        self.shared.lock().generation
    }

    /// The connection to use now.
    fn current(&self) -> (ClusterConnection, u64) {
        let state = self.shared.lock();
        (state.connection.clone(), state.generation)
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
        {
            let mut state = self.shared.lock();
            let recent = state
                .replaced_at
                .is_some_and(|at| at.elapsed() < REPLACE_EVERY);
            if state.generation != generation || state.replacing || recent {
                return;
            }
            state.replacing = true;
            state.replaced_at = Some(Instant::now());
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let fresh = tokio::time::timeout(
                shared.timeout * 4,
                new_connection(&shared.client, shared.timeout),
            )
            .await;
            let mut state = shared.lock();
            state.replacing = false;
            // When the cluster is not reachable yet, the next unanswered command tries again
            // (a second later at the soonest).
            if let Ok(Ok(connection)) = fresh {
                state.connection = connection;
                state.generation += 1;
                tracing::warn!(
                    target: "twilio_webhook::replay",
                    replacements = state.generation,
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
fn stuck(error: &RedisError) -> bool {
    error.is_timeout()
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.kind() == redis::ErrorKind::ClusterConnectionNotFound
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
