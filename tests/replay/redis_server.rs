//! A real `redis-server` for the tests: the one CI starts (`REDIS_URL`), or one started here.
//!
//! Without Redis the Redis tests skip with a loud message, unless
//! `TWILIO_WEBHOOK_REQUIRE_REDIS=1` (set by CI), where they fail: in CI they must run.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct RedisServer {
    url: String,
    port: u16,
    child: Option<Child>,
    durable: bool,
    /// The durable server's own directory (its append-only file), kept across a restart and
    /// removed with the server.
    dir: PathBuf,
}

/// A string no other test run uses, for key prefixes.
pub fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn required() -> bool {
    std::env::var("TWILIO_WEBHOOK_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

pub fn skip(why: &str) {
    assert!(
        !required(),
        "Redis is required (TWILIO_WEBHOOK_REQUIRE_REDIS=1) but {why}"
    );
    eprintln!(
        "\n!!!!!!!!\n!!! SKIPPED: a Redis test, because {why}.\n!!! Install redis-server or set \
         REDIS_URL to run it; CI always does.\n!!!!!!!!\n"
    );
}

/// A server for one test: the one at `REDIS_URL` (tests use their own key prefixes), else one
/// started for this test and killed when it ends (a server kept in a static would outlive
/// the test process: statics are never dropped).
pub fn shared() -> Option<RedisServer> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Some(RedisServer {
            url,
            port: 0,
            child: None,
            durable: false,
            dir: PathBuf::new(),
        });
    }
    let server = RedisServer::spawn();
    if server.is_none() {
        skip("no REDIS_URL is set and redis-server could not be started");
    }
    server
}

/// A server of this test's own, which it may stop and start.
pub fn own() -> Option<RedisServer> {
    let server = RedisServer::spawn();
    if server.is_none() {
        skip("redis-server could not be started");
    }
    server
}

impl RedisServer {
    fn spawn() -> Option<Self> {
        Self::spawn_with(false)
    }

    /// A server on a free port; another port if someone else took this one meanwhile.
    fn spawn_with(durable: bool) -> Option<Self> {
        for _ in 0..10 {
            let port = free_port()?;
            let mut server = Self {
                url: format!("redis://127.0.0.1:{port}"),
                port,
                child: None,
                durable,
                dir: std::env::temp_dir().join(format!("twilio-webhook-redis-{}", unique())),
            };
            if server.try_start() {
                return Some(server);
            }
        }
        None
    }

    /// The server's URL.
    #[allow(dead_code)] // the load test's
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A server of this test's own that keeps every write on disk (append-only file, fsync on
    /// every write), so a kill and a start lose nothing.
    #[allow(dead_code)] // the load test's
    pub fn own_durable() -> Option<RedisServer> {
        let server = Self::spawn_with(true);
        if server.is_none() {
            skip("redis-server could not be started");
        }
        server
    }

    /// Starts the server on its port; whether it is up *and* it is this server that answers
    /// there. While a test has its server stopped, the port is free, and another test's
    /// server may take it; without the process check, the test's instances would go on
    /// against that other server, which holds none of their claims.
    fn try_start(&mut self) -> bool {
        let persistence: Vec<String> = if self.durable {
            std::fs::create_dir_all(&self.dir).ok();
            vec![
                "--dir".into(),
                self.dir.to_string_lossy().into_owned(),
                "--save".into(),
                "".into(),
                "--appendonly".into(),
                "yes".into(),
                "--appendfsync".into(),
                "always".into(),
            ]
        } else {
            vec![
                "--save".into(),
                "".into(),
                "--appendonly".into(),
                "no".into(),
            ]
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(&persistence)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = answering(child, self.port);
        self.child.is_some()
    }

    /// Starts the server again, on the same port.
    pub fn start(&mut self) {
        assert!(self.try_start(), "redis-server did not come back");
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn connection_manager(&self) -> redis::aio::ConnectionManager {
        let client = redis::Client::open(self.url.as_str()).expect("a Redis URL");
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(300)))
            .set_response_timeout(Some(Duration::from_millis(300)));
        redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .expect("connected to Redis")
    }
}

/// A loopback port nobody listens on now (the system's pick).
pub fn free_port() -> Option<u16> {
    Some(
        TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port(),
    )
}

/// One command to the Redis on `port`, `None` when it does not answer.
pub fn ask<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    connection
        .set_read_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut connection).ok()
}

/// A line `name:value` of an `INFO`-style reply.
pub fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// The process id of the Redis answering on `port`.
fn process_id(port: u16) -> Option<u32> {
    let info: String = ask(port, &["INFO", "server"])?;
    field(&info, "process_id")?.parse().ok()
}

/// `child`, a `redis-server` just started on `port`, once it answers there; `None` (and it
/// is killed) when it exits, takes over 10 s, or another process answers on the port.
pub fn answering(mut child: Child, port: u16) -> Option<Child> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let ours = loop {
        if Instant::now() > deadline || !matches!(child.try_wait(), Ok(None)) {
            break false;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break process_id(port) == Some(child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if ours {
        return Some(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if self.durable {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
