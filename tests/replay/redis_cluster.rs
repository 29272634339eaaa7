//! A real Redis Cluster for the tests: six `redis-server` processes on free loopback ports
//! (three masters, one replica each), joined by `redis-cli --cluster create`.
//!
//! Without `redis-server`/`redis-cli` the cluster tests skip with a loud message, unless
//! `TWILIO_WEBHOOK_REQUIRE_REDIS=1` (set by CI), where they fail.
//!
//! Within one test process no port is handed out twice. Two test *processes* running cluster
//! tests on one machine at once can still interfere: a killed node's port may be taken by the
//! other process's next cluster while this one's clients still know the address. CI runs one
//! test process at a time.
//!
//! Every node has a directory of its own. They once shared one, and with it the file
//! `dump.rdb`: a replica doing its first full sync renames the snapshot it received to
//! `dump.rdb` and then loads `dump.rdb`, so when two replicas synced at the same moment one of
//! them could load the other's snapshot. It then held another master's keys and none of its
//! own written before the sync, while everything written after reached it: after a failover,
//! the claims made early in the test read as free and the recent ones did not. Production
//! nodes never share a directory; the test must not either.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::{ask, field, skip};

/// How long a node may be unreachable before the others mark it failed (ms). Short, so a
/// failover happens within seconds in the test; production clusters use 15 s by default.
pub const NODE_TIMEOUT_MS: u64 = 2000;

pub struct Node {
    pub port: u16,
    child: Option<Child>,
    /// Stopped with SIGSTOP: its connections stay open and nothing answers (a hung host).
    paused: bool,
}

pub struct RedisCluster {
    pub nodes: Vec<Node>,
    dir: PathBuf,
}

/// Ports this process has handed to a node already: clusters of tests running at once never
/// pick the same one.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port `p` with `p` and its cluster-bus port `p + 10000` both free.
fn free_port_pair(taken: &[u16]) -> Option<u16> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let taken: Vec<u16> = taken.iter().chain(handed_out.iter()).copied().collect();
    for _ in 0..200 {
        let port = crate::redis_server::free_port()?;
        if port > 55_000 || taken.contains(&port) || taken.contains(&(port + 10_000)) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            handed_out.extend([port, port + 10_000]);
            return Some(port);
        }
    }
    None
}

impl RedisCluster {
    /// Starts six nodes and joins them; `None` (after a loud skip, or a failure in CI) when
    /// the Redis tools are missing.
    pub fn start() -> Option<Self> {
        let mut ports = Vec::new();
        for _ in 0..6 {
            let Some(port) = free_port_pair(&ports) else {
                skip("no free loopback ports for a cluster");
                return None;
            };
            ports.push(port);
        }
        let dir = std::env::temp_dir().join(format!(
            "twilio-webhook-cluster-{}",
            crate::redis_server::unique()
        ));
        std::fs::create_dir_all(&dir).ok()?;
        let mut cluster = Self {
            nodes: ports
                .iter()
                .map(|&port| Node {
                    port,
                    child: None,
                    paused: false,
                })
                .collect(),
            dir,
        };
        for i in 0..6 {
            if !cluster.start_node(i) {
                skip("redis-server could not be started in cluster mode");
                return None;
            }
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let created = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !created.is_ok_and(|status| status.success()) {
            skip("redis-cli --cluster create failed (is redis-cli installed?)");
            return None;
        }
        assert!(
            cluster.wait_ok(Duration::from_secs(30)).is_some(),
            "the cluster did not report ok"
        );
        Some(cluster)
    }

    /// Starts node `i`, on another port if its own turns out taken (another cluster of this
    /// or another test process may have picked the same free port at the same moment).
    fn start_node(&mut self, i: usize) -> bool {
        for _ in 0..10 {
            if self.try_start_node(i) {
                return true;
            }
            let taken: Vec<u16> = self.nodes.iter().map(|node| node.port).collect();
            match free_port_pair(&taken) {
                Some(port) => self.nodes[i].port = port,
                None => return false,
            }
        }
        false
    }

    /// Whether node `i` is up on its port, and it is our process that answers there (not a
    /// node of someone else's cluster while ours exited, its port taken).
    fn try_start_node(&mut self, i: usize) -> bool {
        let port = self.nodes[i].port;
        let own_dir = self.dir.join(port.to_string());
        if std::fs::create_dir_all(&own_dir).is_err() {
            return false;
        }
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(self.dir.join(format!("nodes-{port}.conf")))
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .arg("--dir")
            .arg(&own_dir)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.nodes[i].child = crate::redis_server::answering(child, port);
        self.nodes[i].child.is_some()
    }

    /// The seed URLs a cluster client starts from.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("redis://127.0.0.1:{}", node.port))
            .collect()
    }

    fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some() && !node.paused)
    }

    /// Ports of the nodes that are masters now, as the running nodes see it.
    pub fn masters(&self) -> Vec<u16> {
        self.running()
            .filter(|node| {
                ask::<String>(node.port, &["INFO", "replication"])
                    .is_some_and(|info| field(&info, "role") == Some("master"))
            })
            .map(|node| node.port)
            .collect()
    }

    /// Waits until every running node reports `cluster_state:ok`, three masters cover the
    /// slots, and every running node agrees on who they are; how long that took.
    pub fn wait_ok(&self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            let all_ok = self.running().all(|node| {
                ask::<String>(node.port, &["CLUSTER", "INFO"])
                    .is_some_and(|info| field(&info, "cluster_state") == Some("ok"))
            });
            if all_ok && self.masters().len() == 3 && self.views_agree() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether every running node lists the same running masters (none marked failed).
    fn views_agree(&self) -> bool {
        let masters = self.masters();
        self.running().all(|node| {
            let Some(nodes) = ask::<String>(node.port, &["CLUSTER", "NODES"]) else {
                return false;
            };
            let listed: Vec<u16> = nodes
                .lines()
                .filter(|line| {
                    let flags = line.split(' ').nth(2).unwrap_or("");
                    flags.contains("master") && !flags.contains("fail")
                })
                .filter_map(|line| {
                    let address = line.split(' ').nth(1)?;
                    address.split(['@', ':']).nth(1)?.parse().ok()
                })
                .collect();
            listed.len() == masters.len() && masters.iter().all(|port| listed.contains(port))
        })
    }

    /// Keys held by the master on `port`.
    pub fn keys_on(&self, port: u16) -> u64 {
        ask(port, &["DBSIZE"]).unwrap_or(0)
    }

    /// The replicas of the master on `port`, with whether each has caught up with it (same
    /// replication offset).
    pub fn replicas_caught_up(&self, port: u16) -> bool {
        let Some(info) = ask::<String>(port, &["INFO", "replication"]) else {
            return false;
        };
        let Some(offset) = field(&info, "master_repl_offset") else {
            return false;
        };
        let replicas: Vec<&str> = info
            .lines()
            .filter(|line| line.starts_with("slave") && line.contains("offset="))
            .collect();
        !replicas.is_empty()
            && replicas.iter().all(|line| {
                line.split(',')
                    .find_map(|part| part.strip_prefix("offset="))
                    .is_some_and(|replica| replica == offset)
            })
    }

    fn node(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|node| node.port == port)
            .expect("a node of this cluster")
    }

    /// Kills the node on `port` (SIGKILL: a crash, not a shutdown; its sockets close).
    pub fn kill(&mut self, port: u16) {
        if let Some(mut child) = self.node(port).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the node on `port` (SIGSTOP: a hung host; its sockets stay open, unanswered).
    /// It is killed when the cluster is dropped.
    pub fn pause(&mut self, port: u16) {
        self.signal(port, "-STOP");
        self.node(port).paused = true;
    }

    /// Lets the node on `port`, stopped by [`pause`](Self::pause), run again.
    pub fn resume(&mut self, port: u16) {
        self.signal(port, "-CONT");
        self.node(port).paused = false;
    }

    fn signal(&mut self, port: u16, signal: &str) {
        let pid = self.node(port).child.as_ref().expect("a started node").id();
        let sent = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .is_ok_and(|status| status.success());
        assert!(sent, "could not send {signal} to the node on port {port}");
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
