//! Under load: two instances of the example server sharing one real Redis, HTTP authentication
//! and the replay guard on (failing closed), signed webhooks with about 10% copies (some sent
//! at once to both instances, some re-sent later), and Redis killed and restarted in the
//! middle. Every distinct webhook must be handled exactly once, every other answer must be one
//! that makes Twilio retry (503) or a duplicate's `<Response/>`, no other 5xx, and the servers'
//! memory must stay flat.
//!
//! `TWILIO_WEBHOOK_LOAD_SECONDS` sets how long it runs (default 8: the suite's short run).

#[path = "replay/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use twilio_webhook::compute_signature;

const DEMO_AUTH_TOKEN: &str = "demo-auth-token-do-not-use-in-production";
const PUBLIC_URL: &str = "https://hooks.example.com";
const USER: &str = "twilio";
const PASSWORD: &str = "load-test-password";

/// One instance of the example server.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(redis_url: &str) -> Self {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap().parent().unwrap();
        let server = dir.join("examples").join("server");
        assert!(server.exists(), "{} not built", server.display());
        let mut child = Command::new(server)
            .env("BIND", "127.0.0.1:0")
            // Every instance checks the URL Twilio calls, whatever its own address.
            .env("PUBLIC_URL", PUBLIC_URL)
            .env("REDIS_URL", redis_url)
            .env("BASIC_AUTH", format!("{USER}:{PASSWORD}"))
            .env("REPLAY_FAIL_CLOSED", "1")
            .env("TWILIO_AUTH_TOKEN", DEMO_AUTH_TOKEN)
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("listening on ").map(str::to_owned))
            .expect("the example server did not start");
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, base }
    }

    /// Resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What became of the webhooks, counted.
#[derive(Default)]
struct Tally {
    /// Per webhook: how many times the handler answered it.
    handled: Mutex<HashMap<u64, u32>>,
    requests: AtomicUsize,
    duplicates: AtomicUsize,
    /// 503s and refused connections, each retried as Twilio would.
    retries: AtomicUsize,
    /// Anything else: a status no webhook should get.
    unexpected: Mutex<Vec<String>>,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Sends webhook `n` to `base` until it is handled or answered as a duplicate, retrying after
/// a 503 or a refused connection as Twilio does.
async fn deliver(client: &HttpClient, base: &str, n: u64, tally: &Tally) {
    let params = [
        ("MessageSid", format!("SM{n:032}")),
        ("From", "+14155550123".to_owned()),
        ("Body", format!("load {n}")),
    ];
    let url = format!("{PUBLIC_URL}/twilio/sms");
    let signature = compute_signature(DEMO_AUTH_TOKEN, &url, &params[..]);
    let body = params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&");
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    for _ in 0..300 {
        tally.requests.fetch_add(1, Ordering::Relaxed);
        let request = Request::post(format!("{base}/twilio/sms"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", &signature)
            .header("authorization", &authorization)
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let response = match client.request(request).await {
            Ok(response) => response,
            Err(_) => {
                tally.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let status = response.status().as_u16();
        let text = match response.into_body().collect().await {
            Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            Err(_) => {
                tally.retries.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        match status {
            200 if text.contains("You said: load ") => {
                *tally.handled.lock().unwrap().entry(n).or_default() += 1;
                return;
            }
            200 if text == "<Response/>" => {
                tally.duplicates.fetch_add(1, Ordering::Relaxed);
                return;
            }
            503 => {
                tally.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => {
                tally
                    .unexpected
                    .lock()
                    .unwrap()
                    .push(format!("{status} {text}"));
                return;
            }
        }
    }
    tally
        .unexpected
        .lock()
        .unwrap()
        .push(format!("webhook {n}: still 503 after 300 tries"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_one_redis_restarted_every_webhook_handled_once() {
    let Some(mut redis) = redis_server::RedisServer::own_durable() else {
        return;
    };
    let seconds: u64 = std::env::var("TWILIO_WEBHOOK_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let servers = [Server::start(redis.url()), Server::start(redis.url())];
    let bases: Arc<[String; 2]> = Arc::new([servers[0].base.clone(), servers[1].base.clone()]);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicU64::new(0));

    // Warm up (connections, allocator), then the memory it starts from.
    for _ in 0..200 {
        let n = next.fetch_add(1, Ordering::Relaxed);
        deliver(&client, &bases[(n % 2) as usize], n, &tally).await;
    }
    let rss_before: Vec<u64> = servers.iter().map(Server::rss_kib).collect();

    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..16u64 {
        let (client, tally, next, bases) = (
            client.clone(),
            Arc::clone(&tally),
            Arc::clone(&next),
            Arc::clone(&bases),
        );
        workers.spawn(async move {
            let mut later = tokio::task::JoinSet::new();
            let mut step = worker;
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                step = step
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let roll = (step >> 33) % 100;
                let (here, there) = (n % 2, 1 - n % 2);
                if roll < 5 {
                    // A copy at the same moment, to the other instance.
                    tokio::join!(
                        deliver(&client, &bases[here as usize], n, &tally),
                        deliver(&client, &bases[there as usize], n, &tally)
                    );
                } else {
                    deliver(&client, &bases[here as usize], n, &tally).await;
                    if roll < 10 {
                        // Twilio's re-send, a little later, wherever it lands.
                        let (client, tally, bases) =
                            (client.clone(), Arc::clone(&tally), Arc::clone(&bases));
                        later.spawn(async move {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            deliver(&client, &bases[there as usize], n, &tally).await;
                        });
                    }
                }
            }
            later.join_all().await;
        });
    }
    // Redis killed and started again, in the middle.
    tokio::time::sleep(Duration::from_secs(seconds) / 2).await;
    let killed_at = start.elapsed();
    redis.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.start();
    workers.join_all().await;
    let rss_after: Vec<u64> = servers.iter().map(Server::rss_kib).collect();

    let handled = tally.handled.lock().unwrap();
    let distinct = next.load(Ordering::Relaxed);
    let twice: Vec<_> = handled.iter().filter(|(_, count)| **count > 1).collect();
    let never: Vec<u64> = (0..distinct).filter(|n| !handled.contains_key(n)).collect();
    let unexpected = tally.unexpected.lock().unwrap();
    println!(
        "{distinct} distinct webhooks in {seconds} s, Redis killed at {killed_at:.1?} and back \
         0.5 s later: {} requests, {} answered as duplicates, {} retried (503 or refused), \
         handled twice {}, never {}, unexpected {}; RSS KiB before {rss_before:?}, after \
         {rss_after:?}",
        tally.requests.load(Ordering::Relaxed),
        tally.duplicates.load(Ordering::Relaxed),
        tally.retries.load(Ordering::Relaxed),
        twice.len(),
        never.len(),
        unexpected.len(),
    );
    assert!(
        unexpected.is_empty(),
        "{:?}",
        &unexpected[..unexpected.len().min(5)]
    );
    assert!(twice.is_empty(), "handled twice: {twice:?}");
    assert!(never.is_empty(), "never handled: {never:?}");
    assert!(
        tally.duplicates.load(Ordering::Relaxed) > 0,
        "no copy was sent: the test tests nothing"
    );
    for (before, after) in rss_before.iter().zip(&rss_after) {
        assert!(
            *after < before + 32 * 1024,
            "memory grew from {before} KiB to {after} KiB"
        );
    }
}
