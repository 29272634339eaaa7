//! `MemoryStore`: claims in this process's memory, bounded, expired exactly, no background task.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Claim, ClaimKey, ClaimOwner, ReplayStore, StoreFuture};

/// The default capacity of a [`MemoryStore`]: 100,000 claims, about 10 MB. At the default
/// one-hour TTL that is 27 webhooks a second, sustained, before the oldest claims are dropped.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Claims in memory: the default store, for one process.
///
/// - **Exact expiry**: a claim is gone the instant its TTL ends (it is checked on every
///   lookup); expired claims are swept on the next claims, a few at a time, so no background
///   task is needed.
/// - **Bounded**: at most `capacity` claims. When full, the oldest claim makes room: the guard
///   never refuses or loses a webhook for lack of room, and the oldest webhooks lose their
///   duplicate protection first (Twilio's re-sends come within minutes, so they are the
///   newest).
/// - **Concurrency**: one lock around one insert-if-absent; two copies racing for one key
///   cannot both win.
/// - **Cost**: a hash map and a queue in claim order, both O(1) per claim (amortised), at 1 or
///   100,000 claims alike. (The layer gives every claim one TTL, so claim order is expiry
///   order.)
///
/// Several instances of a service each have their own memory: use the Redis store (feature
/// `redis`) for re-sends that land on another instance.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Claims>>,
    capacity: usize,
}

struct Claims {
    /// What expiry times count from: they are kept as nanoseconds since, in 8 bytes instead
    /// of an `Instant`'s 16, so an entry is half a cache line.
    epoch: Instant,
    by_key: HashMap<ClaimKey, Held, KeyHasher>,
    /// Every claim in the order taken. An entry whose claim was released or replaced since
    /// (its `seq` no longer the key's) is stale, skipped when it reaches the front, and
    /// dropped when stale entries outnumber live ones.
    queue: VecDeque<Queued>,
    next_seq: u64,
}

#[derive(Clone, Copy)]
struct Held {
    owner: ClaimOwner,
    expires: u64,
    seq: u64,
}

#[derive(Clone, Copy)]
struct Queued {
    key: ClaimKey,
    expires: u64,
    seq: u64,
}

/// Hashes a claim key with one multiply. A claim key is already a SHA-256 output, so SipHash
/// (std's default, a third of a claim's time here) buys nothing; the per-store random seed
/// keeps a tenant who can sign requests from grinding keys that collide in one bucket.
#[derive(Clone)]
struct KeyHasher {
    seed: u64,
}

impl KeyHasher {
    fn new() -> Self {
        Self {
            seed: std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                0u8,
            ),
        }
    }
}

impl std::hash::BuildHasher for KeyHasher {
    type Hasher = KeyHash;

    fn build_hasher(&self) -> KeyHash {
        KeyHash(self.seed)
    }
}

struct KeyHash(u64);

impl std::hash::Hasher for KeyHash {
    fn write(&mut self, bytes: &[u8]) {
        // `ClaimKey` hashes with one `write_u64`; anything else still gets mixed in.
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0xbf58_476d_1ce4_e5b9)
    }
}

/// Nanoseconds, saturating (585 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    /// A store holding at most `capacity` claims (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Claims {
                epoch: Instant::now(),
                by_key: HashMap::with_hasher(KeyHasher::new()),
                queue: VecDeque::new(),
                next_seq: 0,
            })),
            capacity: capacity.max(1),
        }
    }

    /// How many claims are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Whether no claim is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Claims> {
        // Every update leaves the maps consistent before anything can panic.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The claim, synchronously: what [`ReplayStore::claim`] does.
    pub fn claim_now(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> Claim {
        let mut claims = self.lock();
        let now = nanos(claims.epoch.elapsed());
        claims.sweep(now);
        if claims
            .by_key
            .get(&key)
            .is_some_and(|held| held.expires > now)
        {
            return Claim::AlreadyClaimed;
        }
        if !claims.by_key.contains_key(&key) && claims.by_key.len() >= self.capacity {
            claims.evict_oldest();
        }
        let seq = claims.next_seq;
        claims.next_seq += 1;
        let expires = now.saturating_add(nanos(ttl));
        claims.by_key.insert(
            key,
            Held {
                owner,
                expires,
                seq,
            },
        );
        claims.queue.push_back(Queued { key, expires, seq });
        claims.compact(self.capacity);
        Claim::Claimed
    }

    /// The release, synchronously: what [`ReplayStore::release`] does.
    pub fn release_now(&self, key: ClaimKey, owner: ClaimOwner) {
        let mut claims = self.lock();
        if claims
            .by_key
            .get(&key)
            .is_some_and(|held| held.owner == owner)
        {
            claims.by_key.remove(&key);
        }
    }
}

impl Claims {
    fn is_live(&self, queued: &Queued) -> bool {
        self.by_key
            .get(&queued.key)
            .is_some_and(|held| held.seq == queued.seq)
    }

    /// Drops the claims that have expired at `now`, from the front of the queue. Each entry is
    /// popped once, so the cost is spread over the claims that pay for it.
    fn sweep(&mut self, now: u64) {
        while let Some(front) = self.queue.front().copied() {
            // Not expired yet: nothing behind it has (one TTL per guard), and no map lookup
            // was spent to learn it.
            if front.expires > now {
                break;
            }
            if self.is_live(&front) {
                self.by_key.remove(&front.key);
            }
            self.queue.pop_front();
        }
    }

    fn evict_oldest(&mut self) {
        while let Some(front) = self.queue.pop_front() {
            if self.is_live(&front) {
                self.by_key.remove(&front.key);
                return;
            }
        }
    }

    /// Released claims leave stale entries in the queue: drop them once they outnumber the
    /// live ones, so the queue stays within twice the capacity.
    fn compact(&mut self, capacity: usize) {
        if self.queue.len() > 2 * capacity.max(self.by_key.len()) + 16 {
            let by_key = &self.by_key;
            self.queue.retain(|queued| {
                by_key
                    .get(&queued.key)
                    .is_some_and(|held| held.seq == queued.seq)
            });
        }
    }
}

impl ReplayStore for MemoryStore {
    fn claim(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> StoreFuture<Claim> {
        let claimed = self.claim_now(key, owner, ttl);
        Box::pin(std::future::ready(Ok(claimed)))
    }

    fn release(&self, key: ClaimKey, owner: ClaimOwner) -> StoreFuture<()> {
        self.release_now(key, owner);
        Box::pin(std::future::ready(Ok(())))
    }
}

impl core::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("claims", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> ClaimKey {
        ClaimKey::from_bytes([n; 16])
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_key_is_claimed_once_until_released_by_its_owner() {
        let store = MemoryStore::new(10);
        let (first, second) = (ClaimOwner::unique(), ClaimOwner::unique());
        assert_eq!(store.claim_now(key(1), first, HOUR), Claim::Claimed);
        assert_eq!(store.claim_now(key(1), second, HOUR), Claim::AlreadyClaimed);
        // Another owner's release deletes nothing.
        store.release_now(key(1), second);
        assert_eq!(store.claim_now(key(1), second, HOUR), Claim::AlreadyClaimed);
        store.release_now(key(1), first);
        assert_eq!(store.claim_now(key(1), second, HOUR), Claim::Claimed);
    }

    #[test]
    fn a_claim_expires_exactly_at_its_ttl() {
        let store = MemoryStore::new(10);
        let ttl = Duration::from_millis(50);
        assert_eq!(
            store.claim_now(key(1), ClaimOwner::unique(), ttl),
            Claim::Claimed
        );
        assert_eq!(
            store.claim_now(key(1), ClaimOwner::unique(), ttl),
            Claim::AlreadyClaimed
        );
        std::thread::sleep(ttl);
        assert_eq!(
            store.claim_now(key(1), ClaimOwner::unique(), ttl),
            Claim::Claimed
        );
        // Swept, not kept: one claim left.
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_release_after_expiry_never_deletes_the_claim_taken_since() {
        let store = MemoryStore::new(10);
        let (slow, later) = (ClaimOwner::unique(), ClaimOwner::unique());
        let ttl = Duration::from_millis(20);
        assert_eq!(store.claim_now(key(1), slow, ttl), Claim::Claimed);
        std::thread::sleep(ttl);
        assert_eq!(store.claim_now(key(1), later, HOUR), Claim::Claimed);
        // The slow first request finishes and fails: its release must not free the key.
        store.release_now(key(1), slow);
        assert_eq!(
            store.claim_now(key(1), ClaimOwner::unique(), HOUR),
            Claim::AlreadyClaimed
        );
    }

    #[test]
    fn released_claims_do_not_grow_the_queue_without_bound() {
        let store = MemoryStore::new(10);
        for n in 0..10_000u32 {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            let (key, owner) = (ClaimKey::from_bytes(bytes), ClaimOwner::unique());
            assert_eq!(store.claim_now(key, owner, HOUR), Claim::Claimed);
            store.release_now(key, owner);
        }
        assert!(store.lock().queue.len() <= 2 * 10 + 17);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn when_full_the_oldest_claim_makes_room() {
        let store = MemoryStore::new(3);
        for n in 1..=3 {
            assert_eq!(
                store.claim_now(key(n), ClaimOwner::unique(), HOUR),
                Claim::Claimed
            );
        }
        // Full: the fourth is still claimed (never refused), and key 1, the oldest, dropped.
        assert_eq!(
            store.claim_now(key(4), ClaimOwner::unique(), HOUR),
            Claim::Claimed
        );
        assert_eq!(store.len(), 3);
        assert_eq!(
            store.claim_now(key(1), ClaimOwner::unique(), HOUR),
            Claim::Claimed
        );
        for n in [3, 4] {
            assert_eq!(
                store.claim_now(key(n), ClaimOwner::unique(), HOUR),
                Claim::AlreadyClaimed
            );
        }
    }

    #[test]
    fn concurrent_claims_of_one_key_have_one_winner() {
        let store = MemoryStore::new(100);
        let winners: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..32)
                .map(|_| {
                    let store = store.clone();
                    scope.spawn(move || store.claim_now(key(7), ClaimOwner::unique(), HOUR))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap() == Claim::Claimed))
                .sum()
        });
        assert_eq!(winners, 1);
    }
}
