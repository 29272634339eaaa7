//! `MemoryStore`: claims in this process's memory, bounded, shared fairly between accounts,
//! expired exactly, no background task.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Claim, ClaimKey, ClaimOwner, ReplayStore, StoreError, StoreFuture};

/// The default capacity of a [`MemoryStore`]: 100,000 claims, about 10 MB. At the default
/// one-hour TTL that is 27 webhooks a second, sustained, before handled claims are dropped
/// early.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Claims in memory: the default store, for one process.
///
/// - **Exact expiry**: a claim is gone the instant its TTL (or, in progress, its lease) ends;
///   it is checked on every lookup, and expired claims are swept on the next claims, a few at
///   a time, so no background task is needed.
/// - **Claims in progress are never dropped**: a running handler keeps its claim, so a
///   concurrent copy can never run the handler a second time.
/// - **Bounded, and fair between accounts**: at most `capacity` claims. Handled claims count
///   against their account's share (the tenant of their [`ClaimKey`]: the key that verified
///   them). When the store is full, a new claim makes room by dropping one handled claim
///   before its TTL: the oldest of its own account if that account holds more than an equal
///   share (`capacity` divided among the accounts holding claims, its own included); else the
///   oldest of the account holding the most, if that one is over its share; else its own
///   account's oldest. So one account's flood of valid webhooks pushes out its own oldest
///   claims, never another account's within its share. When no claim may be dropped (the
///   store is full of claims in progress, or of other accounts within their share), the claim
///   fails with [`StoreFull`] instead: the guard's fail-open or fail-closed policy applies and
///   an error event says so. It never forgets a claim silently;
///   [`dropped_early`](Self::dropped_early) counts the claims dropped to make room.
/// - **Concurrency**: one lock around one insert-if-absent; two copies racing for one key
///   cannot both win.
/// - **Cost**: a hash map and queues in claim order, O(1) per claim (amortised), at 1 or
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
    /// of an `Instant`'s 16.
    epoch: Instant,
    by_key: HashMap<ClaimKey, Held, KeyHasher>,
    /// Every handled claim in the order it was completed, for expiry. An entry whose claim has
    /// gone since (dropped, or taken again: its `seq` no longer the key's) is stale, skipped
    /// when it reaches the front, and dropped when stale entries outnumber live ones.
    queue: VecDeque<Queued>,
    /// Each account's handled claims in the same order, for dropping its oldest.
    tenants: HashMap<u64, Tenant>,
    in_progress: usize,
    /// Accounts holding at least one handled claim.
    holders: usize,
    /// Handled claims dropped before their TTL to make room.
    dropped_early: u64,
    next_seq: u64,
}

#[derive(Default)]
struct Tenant {
    queue: VecDeque<Queued>,
    /// Handled claims of this account still in `by_key`.
    handled: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    InProgress,
    Handled,
}

#[derive(Clone, Copy)]
struct Held {
    owner: ClaimOwner,
    stage: Stage,
    /// The lease's end in progress, the TTL's once handled.
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

/// Why a [`MemoryStore`] could not take a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFull {
    /// The store's capacity.
    pub capacity: usize,
}

impl core::fmt::Display for StoreFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the memory store is full ({} claims, each in progress or within its account's \
             share): this claim cannot be kept; raise MemoryStore::new's capacity",
            self.capacity
        )
    }
}

impl std::error::Error for StoreFull {}

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
                tenants: HashMap::new(),
                in_progress: 0,
                holders: 0,
                dropped_early: 0,
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

    /// How many handled claims were dropped before their TTL to make room (each the oldest of
    /// an account over its share). A count that grows says the capacity is too small for the
    /// traffic: those webhooks' re-sends are no longer recognised.
    pub fn dropped_early(&self) -> u64 {
        self.lock().dropped_early
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Claims> {
        // Every update leaves the maps consistent before anything can panic.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The claim, synchronously: what [`ReplayStore::claim`] does.
    pub fn claim_now(
        &self,
        key: ClaimKey,
        owner: ClaimOwner,
        lease: Duration,
    ) -> Result<Claim, StoreFull> {
        let mut claims = self.lock();
        let now = nanos(claims.epoch.elapsed());
        claims.sweep(now);
        if let Some(held) = claims.by_key.get(&key).copied() {
            if held.expires > now {
                return Ok(match held.stage {
                    // Its own claim asked again (an answer that was lost): still its own, and
                    // the lease starts again as a renewal would.
                    Stage::InProgress if held.owner == owner => {
                        if let Some(held) = claims.by_key.get_mut(&key) {
                            held.expires = now.saturating_add(nanos(lease));
                        }
                        Claim::Claimed
                    }
                    Stage::InProgress => Claim::InProgress,
                    Stage::Handled => Claim::Handled,
                });
            }
            // Expired, not swept yet (a lease that ran out, or a TTL behind the queue's front).
            claims.forget(key, held);
        }
        if claims.by_key.len() >= self.capacity && !claims.make_room(key.tenant(), self.capacity) {
            return Err(StoreFull {
                capacity: self.capacity,
            });
        }
        let seq = claims.take_seq();
        claims.by_key.insert(
            key,
            Held {
                owner,
                stage: Stage::InProgress,
                expires: now.saturating_add(nanos(lease)),
                seq,
            },
        );
        claims.in_progress += 1;
        Ok(Claim::Claimed)
    }

    /// The renewal, synchronously: what [`ReplayStore::renew`] does.
    pub fn renew_now(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> bool {
        let mut claims = self.lock();
        let now = nanos(claims.epoch.elapsed());
        match claims.by_key.get_mut(&key) {
            Some(held) if held.owner == owner && held.stage == Stage::InProgress => {
                held.expires = now.saturating_add(nanos(lease));
                true
            }
            _ => false,
        }
    }

    /// The completion, synchronously: what [`ReplayStore::complete`] does.
    pub fn complete_now(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> bool {
        let mut claims = self.lock();
        let now = nanos(claims.epoch.elapsed());
        let Some(held) = claims.by_key.get(&key).copied() else {
            return false;
        };
        if held.owner != owner || held.stage != Stage::InProgress {
            return false;
        }
        let seq = claims.take_seq();
        let expires = now.saturating_add(nanos(ttl));
        claims.by_key.insert(
            key,
            Held {
                owner,
                stage: Stage::Handled,
                expires,
                seq,
            },
        );
        claims.in_progress -= 1;
        let queued = Queued { key, expires, seq };
        claims.queue.push_back(queued);
        let tenant = claims.tenants.entry(key.tenant()).or_default();
        tenant.queue.push_back(queued);
        tenant.handled += 1;
        let first = tenant.handled == 1;
        claims.holders += usize::from(first);
        claims.compact(self.capacity);
        true
    }

    /// The release, synchronously: what [`ReplayStore::release`] does.
    pub fn release_now(&self, key: ClaimKey, owner: ClaimOwner) {
        let mut claims = self.lock();
        if let Some(held) = claims.by_key.get(&key).copied()
            && held.owner == owner
            && held.stage == Stage::InProgress
        {
            claims.forget(key, held);
        }
    }
}

impl Claims {
    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Removes `key`'s claim `held`, keeping the counts right.
    fn forget(&mut self, key: ClaimKey, held: Held) {
        self.by_key.remove(&key);
        match held.stage {
            Stage::InProgress => self.in_progress -= 1,
            Stage::Handled => {
                if let Some(tenant) = self.tenants.get_mut(&key.tenant()) {
                    tenant.handled -= 1;
                    self.holders -= usize::from(tenant.handled == 0);
                }
            }
        }
    }

    /// Drops the handled claims that have expired at `now`, from the front of the queue. Each
    /// entry is popped once, so the cost is spread over the claims that pay for it.
    fn sweep(&mut self, now: u64) {
        while let Some(front) = self.queue.front().copied() {
            // Not expired yet: nothing behind it has (one TTL per guard), and no map lookup
            // was spent to learn it.
            if front.expires > now {
                break;
            }
            if let Some(held) = self.by_key.get(&front.key).copied()
                && held.seq == front.seq
            {
                self.forget(front.key, held);
            }
            self.queue.pop_front();
            // The account's own queue is in the same order: what is before this entry there
            // has gone too (swept, or dropped from its front).
            let tenant_id = front.key.tenant();
            if let Some(tenant) = self.tenants.get_mut(&tenant_id) {
                while tenant.queue.front().is_some_and(|q| q.expires <= now) {
                    tenant.queue.pop_front();
                }
                if tenant.handled == 0 && tenant.queue.is_empty() {
                    self.tenants.remove(&tenant_id);
                }
            }
        }
    }

    /// Drops one handled claim so that a claim of `tenant` fits: the oldest of `tenant` if it
    /// is over an equal share; else the oldest of the account holding the most, if that one is
    /// over its share; else `tenant`'s own oldest. `false` when none of these exists.
    fn make_room(&mut self, tenant: u64, capacity: usize) -> bool {
        let own = self.tenants.get(&tenant).map_or(0, |t| t.handled);
        // The accounts holding handled claims, the claimant among them: each one's share.
        let share = capacity / (self.holders + usize::from(own == 0));
        let over_share = || {
            self.tenants
                .iter()
                .filter(|(_, t)| t.handled > share)
                .max_by_key(|(_, t)| t.handled)
                .map(|(id, _)| *id)
        };
        // An account over its share pays for its own claims at once; only a claim of an
        // account within its share looks for the one holding the most (a scan of the accounts).
        let victim = if own > share {
            Some(tenant)
        } else {
            over_share().or((own > 0).then_some(tenant))
        };
        let dropped = victim.is_some_and(|victim| self.drop_oldest(victim));
        self.dropped_early += u64::from(dropped);
        dropped
    }

    fn drop_oldest(&mut self, tenant: u64) -> bool {
        while let Some(front) = self
            .tenants
            .get_mut(&tenant)
            .and_then(|t| t.queue.pop_front())
        {
            if let Some(held) = self.by_key.get(&front.key).copied()
                && held.seq == front.seq
            {
                self.forget(front.key, held);
                return true;
            }
        }
        false
    }

    /// Claims that went (expired, dropped, taken again) leave stale entries in the queues:
    /// drop them once they outnumber the live ones, so each queue stays within twice what it
    /// holds, and forget accounts that hold nothing.
    fn compact(&mut self, capacity: usize) {
        if self.queue.len() > 2 * capacity.max(self.by_key.len()) + 16 {
            let by_key = &self.by_key;
            let live = |queued: &Queued| {
                by_key
                    .get(&queued.key)
                    .is_some_and(|held| held.seq == queued.seq)
            };
            self.queue.retain(live);
            for tenant in self.tenants.values_mut() {
                tenant.queue.retain(live);
            }
            self.tenants.retain(|_, tenant| tenant.handled > 0);
        }
    }
}

fn ready<T: Send + 'static>(value: Result<T, StoreError>) -> StoreFuture<T> {
    Box::pin(std::future::ready(value))
}

impl ReplayStore for MemoryStore {
    fn claim(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> StoreFuture<Claim> {
        ready(self.claim_now(key, owner, lease).map_err(Into::into))
    }

    fn renew(&self, key: ClaimKey, owner: ClaimOwner, lease: Duration) -> StoreFuture<bool> {
        ready(Ok(self.renew_now(key, owner, lease)))
    }

    fn complete(&self, key: ClaimKey, owner: ClaimOwner, ttl: Duration) -> StoreFuture<bool> {
        ready(Ok(self.complete_now(key, owner, ttl)))
    }

    fn release(&self, key: ClaimKey, owner: ClaimOwner) -> StoreFuture<()> {
        self.release_now(key, owner);
        ready(Ok(()))
    }
}

impl core::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let claims = self.lock();
        f.debug_struct("MemoryStore")
            .field("claims", &claims.by_key.len())
            .field("in_progress", &claims.in_progress)
            .field("capacity", &self.capacity)
            .field("dropped_early", &claims.dropped_early)
            .finish()
    }
}

#[cfg(test)]
mod tests;
