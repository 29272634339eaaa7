//! What the replay guard costs per request, beside the signature floor.
//!
//! Run: `cargo bench --bench replay --features redis`. In one run, interleaved: the bare
//! HMAC-SHA1 of the inbound-SMS webhook (the floor), the claim key (a SHA-256), a claim and its
//! release in the memory store holding 1 and 100,000 claims, and, when a Redis is reachable
//! (`REDIS_URL`, else a `redis-server` started on a free port), the same round trip over
//! loopback.

#[path = "../tests/support/mod.rs"]
mod fixtures;
mod support;

use std::time::Duration;

use fixtures::sms_params;
use support::{Bench, hmac_floor, medians, rounds};
use twilio_webhook::replay::{ClaimKey, ClaimOwner, MemoryStore, RedisStore, ReplayStore};
use twilio_webhook::{KeyUsed, UrlVariant, Validator, Webhook, compute_signature};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const HOUR: Duration = Duration::from_secs(3600);
const LEASE: Duration = Duration::from_secs(10);

fn main() {
    let params = sms_params();
    let url = "https://hooks.example.com/twilio/sms";
    let signature = compute_signature(TOKEN, url, &params);
    let signed = twilio_webhook::signed_string(url, &params);
    let body = fixtures::form_body(&params);
    let verified = Validator::new(TOKEN)
        .verify(
            &Webhook::new(url)
                .content_type(Some("application/x-www-form-urlencoded"))
                .body(body.as_bytes())
                .signature(Some(&signature))
                .signature_settings(None),
        )
        .unwrap();
    assert_eq!(verified.url_variant, UrlVariant::AsReceived);
    assert_eq!(verified.key, KeyUsed::AuthToken { index: 0 });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut own_server = None;
    let redis = redis_store(&runtime, &mut own_server);

    // Keys as uniform as the SHA-256 ones real requests get (splitmix64 of a counter), and
    // a separate sequence per bench.
    let keys = |stream: u64| {
        let mut counter = stream << 48;
        move || {
            counter += 1;
            let mix = |mut z: u64| {
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            };
            let (hi, lo) = (mix(counter), mix(!counter));
            ClaimKey::from_bytes((u128::from(hi) << 64 | u128::from(lo)).to_be_bytes())
        }
    };
    // A claim and its completion: what a handled webhook costs the store.
    let handle = |store: &MemoryStore, key| {
        let owner = ClaimOwner::unique();
        let _ = store.claim_now(key, owner, LEASE);
        store.complete_now(key, owner, HOUR);
    };
    // Full stores: each new claim makes room by dropping its account's oldest handled one,
    // so the size stays put.
    let small = MemoryStore::new(1);
    let large = MemoryStore::new(100_000);
    // Holding 100,000 handled claims with room to spare: nothing dropped.
    let roomy = MemoryStore::new(200_000);
    let mut prefill = keys(4);
    for _ in 0..100_000 {
        let key = prefill();
        handle(&large, key);
        handle(&roomy, key);
    }
    let (mut fresh_key, mut key_again, mut key_released) = (keys(1), keys(2), keys(3));
    let mut key_roomy = keys(5);
    let mut benches = vec![
        hmac_floor(TOKEN, signed.as_bytes()),
        Bench::new("claim key", || {
            std::hint::black_box(ClaimKey::for_request(
                std::hint::black_box(&verified),
                &signature,
            ));
        }),
        Bench::new("memory claim+complete, 1 held", || {
            handle(&small, fresh_key());
        }),
        Bench::new("memory claim+release, 100k held", || {
            // The size stays at 100,000: the claim's own release takes it out again.
            let (key, owner) = (key_roomy(), ClaimOwner::unique());
            let _ = roomy.claim_now(key, owner, LEASE);
            roomy.release_now(key, owner);
        }),
        Bench::new("memory claim+complete, full at 100k", || {
            handle(&large, key_again());
        }),
        Bench::new("memory claim+release, 1 held", || {
            let (key, owner) = (key_released(), ClaimOwner::unique());
            let _ = small.claim_now(key, owner, LEASE);
            small.release_now(key, owner);
        }),
    ];
    let mut redis_key = 0u64;
    if let Some(store) = &redis {
        benches.push(Bench::new("redis claim+complete, loopback", || {
            redis_key += 1;
            let key = ClaimKey::from_bytes((u128::from(redis_key) << 1).to_be_bytes());
            let owner = ClaimOwner::unique();
            runtime.block_on(async {
                store.claim(key, owner, LEASE).await.unwrap();
                store.complete(key, owner, HOUR).await.unwrap();
            });
        }));
    }
    let m = medians(&mut benches, rounds());
    println!("replay guard, medians of one interleaved run:");
    for (bench, median) in benches.iter().zip(&m) {
        println!(
            "  {:<34} {:>9.0} ns  ({:.2}x the floor)",
            bench.name,
            median,
            median / m[0]
        );
    }
    if redis.is_none() {
        println!("  (no Redis reachable: set REDIS_URL or install redis-server for that row)");
    }
    drop(benches);
    if let Some(mut server) = own_server {
        let _ = server.kill();
        let _ = server.wait();
    }
}

fn redis_store(
    runtime: &tokio::runtime::Runtime,
    own_server: &mut Option<std::process::Child>,
) -> Option<RedisStore> {
    let url = match std::env::var("REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let child = std::process::Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .ok()?;
            *own_server = Some(child);
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            format!("redis://127.0.0.1:{port}")
        }
    };
    let client = redis::Client::open(url).ok()?;
    let connection = runtime
        .block_on(redis::aio::ConnectionManager::new(client))
        .ok()?;
    Some(RedisStore::new(connection).key_prefix("bench:"))
}
