//! `MemoryStore`: claims in this process's memory, bounded, expired exactly, no background task.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Claim, ClaimKey, ClaimOwner, ReplayStore, StoreFuture};

/// The default capacity of a [`MemoryStore`]: 100,000 claims, about 10 MB. At the default
/// one-hour TTL that is 27 webhooks a second, sustained, before the oldest claims are dropped.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Claims in memory: the default store, for one process.
///
/// - **Exact expiry**: a claim is gone the instant its TTL ends; expired claims are swept on
///   the next claim (the oldest first, a few at a time), so no background task is needed.
/// - **Bounded**: at most `capacity` claims. When full, the claim closest to expiring is
///   dropped to make room: the guard never refuses or loses a webhook for lack of room, and
///   the oldest webhooks lose their duplicate protection first (Twilio's re-sends come within
///   minutes, so they are the newest).
/// - **Concurrency**: one lock around one insert-if-absent; two copies racing for one key
///   cannot both win.
///
/// Several instances of a service each have their own memory: use the Redis store (feature
/// `redis`) for re-sends that land on another instance.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Claims>>,
    capacity: usize,
}

struct Claims {
    by_key: HashMap<ClaimKey, Held>,
    /// When each claim expires, oldest first; the sequence number breaks ties.
    by_expiry: BTreeMap<(Instant, u64), ClaimKey>,
    next_seq: u64,
}

#[derive(Clone, Copy)]
struct Held {
    owner: ClaimOwner,
    expires: Instant,
    seq: u64,
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
                by_key: HashMap::new(),
                by_expiry: BTreeMap::new(),
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
        let now = Instant::now();
        let mut claims = self.lock();
        claims.sweep(now);
        if claims.by_key.contains_key(&key) {
            return Claim::AlreadyClaimed;
        }
        if claims.by_key.len() >= self.capacity {
            claims.evict_oldest();
        }
        let seq = claims.next_seq;
        claims.next_seq += 1;
        let expires = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(1 << 32));
        claims.by_key.insert(
            key,
            Held {
                owner,
                expires,
                seq,
            },
        );
        claims.by_expiry.insert((expires, seq), key);
        Claim::Claimed
    }

    /// The release, synchronously: what [`ReplayStore::release`] does.
    pub fn release_now(&self, key: ClaimKey, owner: ClaimOwner) {
        let mut claims = self.lock();
        if let Some(held) = claims.by_key.get(&key).copied() {
            if held.owner == owner {
                claims.by_key.remove(&key);
                claims.by_expiry.remove(&(held.expires, held.seq));
            }
        }
    }
}

impl Claims {
    /// Drops the claims that have expired at `now`. Each claim is swept once, so the cost is
    /// spread over the claims that pay for it.
    fn sweep(&mut self, now: Instant) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.by_key.remove(&key);
        }
    }

    fn evict_oldest(&mut self) {
        if let Some((_, key)) = self.by_expiry.pop_first() {
            self.by_key.remove(&key);
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
    fn when_full_the_claim_closest_to_expiry_makes_room() {
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
