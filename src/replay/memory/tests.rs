use super::*;

fn key(n: u32) -> ClaimKey {
    key_of(0, n)
}

/// The `n`-th key of account `tenant`.
fn key_of(tenant: u64, n: u32) -> ClaimKey {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&tenant.to_be_bytes());
    bytes[8..12].copy_from_slice(&n.to_be_bytes());
    ClaimKey::for_tenant(bytes, tenant)
}

const HOUR: Duration = Duration::from_secs(3600);
const LEASE: Duration = Duration::from_secs(10);

/// Claims `key` and completes it: a handled webhook.
fn handle(store: &MemoryStore, key: ClaimKey) -> Result<Claim, StoreFull> {
    let owner = ClaimOwner::unique();
    let claim = store.claim_now(key, owner, LEASE)?;
    if claim == Claim::Claimed {
        assert!(store.complete_now(key, owner, HOUR));
    }
    Ok(claim)
}

#[test]
fn a_key_is_claimed_once_until_released_by_its_owner() {
    let store = MemoryStore::new(10);
    let (first, second) = (ClaimOwner::unique(), ClaimOwner::unique());
    assert_eq!(store.claim_now(key(1), first, LEASE), Ok(Claim::Claimed));
    assert_eq!(
        store.claim_now(key(1), second, LEASE),
        Ok(Claim::InProgress)
    );
    // Another owner's release deletes nothing, nor does its completion complete anything.
    store.release_now(key(1), second);
    assert!(!store.complete_now(key(1), second, HOUR));
    assert_eq!(
        store.claim_now(key(1), second, LEASE),
        Ok(Claim::InProgress)
    );
    store.release_now(key(1), first);
    assert_eq!(store.claim_now(key(1), second, LEASE), Ok(Claim::Claimed));
    assert_eq!(store.len(), 1);
}

#[test]
fn its_owner_asking_again_keeps_the_claim_and_restarts_its_lease() {
    let store = MemoryStore::new(10);
    let (owner, copy) = (ClaimOwner::unique(), ClaimOwner::unique());
    let short = Duration::from_millis(50);
    assert_eq!(store.claim_now(key(1), owner, short), Ok(Claim::Claimed));
    // Asked again with a long lease, just before the short one would end.
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(store.claim_now(key(1), owner, HOUR), Ok(Claim::Claimed));
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(store.claim_now(key(1), copy, LEASE), Ok(Claim::InProgress));
    assert_eq!(store.len(), 1);
}

#[test]
fn a_completed_claim_is_handled_and_no_longer_releasable() {
    let store = MemoryStore::new(10);
    let owner = ClaimOwner::unique();
    assert_eq!(store.claim_now(key(1), owner, LEASE), Ok(Claim::Claimed));
    assert!(store.complete_now(key(1), owner, HOUR));
    assert!(!store.complete_now(key(1), owner, HOUR), "once");
    assert!(!store.renew_now(key(1), owner, LEASE), "not in progress");
    store.release_now(key(1), owner);
    assert_eq!(
        store.claim_now(key(1), ClaimOwner::unique(), LEASE),
        Ok(Claim::Handled)
    );
}

#[test]
fn a_handled_claim_expires_exactly_at_its_ttl() {
    let store = MemoryStore::new(10);
    let ttl = Duration::from_millis(50);
    let owner = ClaimOwner::unique();
    assert_eq!(store.claim_now(key(1), owner, LEASE), Ok(Claim::Claimed));
    assert!(store.complete_now(key(1), owner, ttl));
    assert_eq!(
        store.claim_now(key(1), ClaimOwner::unique(), LEASE),
        Ok(Claim::Handled)
    );
    std::thread::sleep(ttl);
    assert_eq!(
        store.claim_now(key(1), ClaimOwner::unique(), LEASE),
        Ok(Claim::Claimed)
    );
    // Swept, not kept: one claim left, and no account's queue holds a dead entry.
    assert_eq!(store.len(), 1);
    assert!(store.lock().tenants.is_empty());
}

#[test]
fn a_renewed_lease_outlives_its_first_end_and_a_lapsed_one_frees_the_key() {
    let store = MemoryStore::new(10);
    let lease = Duration::from_millis(60);
    let owner = ClaimOwner::unique();
    assert_eq!(store.claim_now(key(1), owner, lease), Ok(Claim::Claimed));
    for _ in 0..4 {
        std::thread::sleep(lease / 2);
        assert!(store.renew_now(key(1), owner, lease));
        assert_eq!(
            store.claim_now(key(1), ClaimOwner::unique(), lease),
            Ok(Claim::InProgress),
            "renewed: still in progress after {lease:?}"
        );
    }
    // The owner crashed: no renewal, and the lease ends. The re-send is handled.
    std::thread::sleep(lease);
    let later = ClaimOwner::unique();
    assert_eq!(store.claim_now(key(1), later, lease), Ok(Claim::Claimed));
    // The crashed owner's late renewal or completion touches nothing.
    assert!(!store.renew_now(key(1), owner, lease));
    assert!(!store.complete_now(key(1), owner, HOUR));
    assert_eq!(store.lock().in_progress, 1);
}

#[test]
fn a_release_after_a_lapsed_lease_never_deletes_the_claim_taken_since() {
    let store = MemoryStore::new(10);
    let (slow, later) = (ClaimOwner::unique(), ClaimOwner::unique());
    let lease = Duration::from_millis(20);
    assert_eq!(store.claim_now(key(1), slow, lease), Ok(Claim::Claimed));
    std::thread::sleep(lease);
    assert_eq!(store.claim_now(key(1), later, LEASE), Ok(Claim::Claimed));
    store.release_now(key(1), slow);
    assert_eq!(
        store.claim_now(key(1), ClaimOwner::unique(), LEASE),
        Ok(Claim::InProgress)
    );
}

#[test]
fn a_claim_released_and_taken_again_keeps_the_new_ttl() {
    // The sequence number tells a claim from an earlier one of the same key: the first
    // one's queue entry must not expire the second.
    let store = MemoryStore::new(10);
    let short = Duration::from_millis(30);
    let first = ClaimOwner::unique();
    store.claim_now(key(1), first, LEASE).unwrap();
    assert!(store.complete_now(key(1), first, short));
    std::thread::sleep(short);
    // Expired, then handled again with a long TTL.
    assert_eq!(handle(&store, key(1)), Ok(Claim::Claimed));
    std::thread::sleep(short);
    // Sweeping the first entry (now stale) leaves the second claim alone.
    assert_eq!(handle(&store, key(2)), Ok(Claim::Claimed));
    assert_eq!(handle(&store, key(1)), Ok(Claim::Handled));
}

#[test]
fn claims_that_come_and_go_do_not_grow_the_queues_without_bound() {
    let store = MemoryStore::new(10);
    for n in 0..10_000u32 {
        let (key, owner) = (key(n), ClaimOwner::unique());
        assert_eq!(store.claim_now(key, owner, LEASE), Ok(Claim::Claimed));
        store.release_now(key, owner);
    }
    assert_eq!(store.len(), 0);
    // Handled claims pushed out by a full store: both queues stay bounded.
    for n in 0..10_000u32 {
        assert_eq!(handle(&store, key(n)), Ok(Claim::Claimed));
    }
    let claims = store.lock();
    assert_eq!(claims.by_key.len(), 10);
    assert!(claims.queue.len() <= 2 * 10 + 17, "{}", claims.queue.len());
    let tenant = &claims.tenants[&0];
    assert!(tenant.queue.len() <= 2 * 10 + 17, "{}", tenant.queue.len());
    assert_eq!(tenant.handled, 10);
}

#[test]
fn short_ttls_under_steady_traffic_leave_no_dead_entries_behind() {
    let store = MemoryStore::new(100);
    let ttl = Duration::from_millis(1);
    for n in 0..2_000u32 {
        let owner = ClaimOwner::unique();
        store
            .claim_now(key_of(u64::from(n % 7), n), owner, LEASE)
            .unwrap();
        assert!(store.complete_now(key_of(u64::from(n % 7), n), owner, ttl));
        if n % 100 == 0 {
            std::thread::sleep(ttl);
        }
    }
    std::thread::sleep(ttl);
    handle(&store, key(1_000_000)).unwrap();
    let claims = store.lock();
    let queued: usize = claims.tenants.values().map(|t| t.queue.len()).sum();
    assert!(queued <= 2 * 100 + 17, "{queued} entries queued by account");
}

#[test]
fn when_full_an_account_pushes_out_its_own_oldest_handled_claim() {
    let store = MemoryStore::new(3);
    for n in 1..=3 {
        assert_eq!(handle(&store, key(n)), Ok(Claim::Claimed));
    }
    // Full: the fourth is still claimed, and key 1, its account's oldest, dropped.
    assert_eq!(handle(&store, key(4)), Ok(Claim::Claimed));
    assert_eq!(store.len(), 3);
    assert_eq!(store.dropped_early(), 1);
    assert_eq!(handle(&store, key(1)), Ok(Claim::Claimed));
    for n in [3, 4] {
        assert_eq!(handle(&store, key(n)), Ok(Claim::Handled));
    }
}

#[test]
fn one_accounts_flood_never_pushes_out_another_accounts_claims() {
    let store = MemoryStore::new(1_000);
    let (flooder, victim) = (1, 2);
    for n in 0..10 {
        assert_eq!(handle(&store, key_of(victim, n)), Ok(Claim::Claimed));
    }
    // 100 times the capacity of valid webhooks of one account.
    for n in 0..100_000 {
        assert_eq!(handle(&store, key_of(flooder, n)), Ok(Claim::Claimed));
    }
    for n in 0..10 {
        assert_eq!(
            handle(&store, key_of(victim, n)),
            Ok(Claim::Handled),
            "the victim's webhook {n} would be handled again"
        );
    }
    // The victim still gets room for new claims: the flooder, over its share, makes it.
    assert_eq!(handle(&store, key_of(victim, 10)), Ok(Claim::Claimed));
    assert_eq!(store.len(), 1_000);
    assert_eq!(store.lock().holders, 2);
}

#[test]
fn a_claim_in_progress_is_never_pushed_out() {
    let store = MemoryStore::new(1_000);
    let running = ClaimOwner::unique();
    assert_eq!(store.claim_now(key(0), running, LEASE), Ok(Claim::Claimed));
    for n in 1..5_000 {
        handle(&store, key(n)).unwrap();
    }
    assert_eq!(
        store.claim_now(key(0), ClaimOwner::unique(), LEASE),
        Ok(Claim::InProgress),
        "a concurrent copy would run the handler twice"
    );
}

#[test]
fn a_store_full_of_claims_it_must_keep_says_so() {
    let store = MemoryStore::new(4);
    for n in 0..4 {
        assert_eq!(
            store.claim_now(key_of(u64::from(n), n), ClaimOwner::unique(), LEASE),
            Ok(Claim::Claimed)
        );
    }
    // Four handlers running: nothing may go.
    let full = store.claim_now(key(9), ClaimOwner::unique(), LEASE);
    assert_eq!(full, Err(StoreFull { capacity: 4 }));
    assert!(full.unwrap_err().to_string().contains("full"));
    // Other accounts within their share are not pushed out either: account 0 holds 2
    // handled claims (its share of 4 with a newcomer), two handlers of account 5 run.
    let shared = MemoryStore::new(4);
    for n in 0..2 {
        assert_eq!(handle(&shared, key_of(0, n)), Ok(Claim::Claimed));
        let running = ClaimOwner::unique();
        assert_eq!(
            shared.claim_now(key_of(5, n), running, LEASE),
            Ok(Claim::Claimed)
        );
    }
    assert_eq!(
        handle(&shared, key_of(7, 0)),
        Err(StoreFull { capacity: 4 }),
        "account 7 would push out a claim of account 0, within its share"
    );
    // Account 0 itself makes room from its own claims.
    assert_eq!(handle(&shared, key_of(0, 100)), Ok(Claim::Claimed));
    assert_eq!(
        handle(&shared, key_of(0, 0)),
        Ok(Claim::Claimed),
        "its oldest went"
    );
    assert_eq!(shared.dropped_early(), 2);
}

#[test]
fn an_account_over_its_share_makes_room_for_a_newcomer() {
    let store = MemoryStore::new(4);
    for n in 0..4 {
        assert_eq!(handle(&store, key_of(0, n)), Ok(Claim::Claimed));
    }
    // Account 1 is new: account 0, holding all 4 (its share is now 2), gives up its oldest.
    assert_eq!(handle(&store, key_of(1, 0)), Ok(Claim::Claimed));
    assert_eq!(
        handle(&store, key_of(0, 0)),
        Ok(Claim::Claimed),
        "account 0's oldest went"
    );
    assert_eq!(handle(&store, key_of(1, 0)), Ok(Claim::Handled));
}

#[test]
fn keys_spread_over_the_buckets() {
    // The key hash must depend on the key: a constant would put every claim in one bucket.
    let hasher = KeyHasher::new();
    let hashes: std::collections::HashSet<u64> = (0..1_000)
        .map(|n| std::hash::BuildHasher::hash_one(&hasher, key(n)))
        .collect();
    assert_eq!(hashes.len(), 1_000);
    let mut raw = KeyHash(hasher.seed);
    std::hash::Hasher::write(&mut raw, b"ab");
    let mut other = KeyHash(hasher.seed);
    std::hash::Hasher::write(&mut other, b"ba");
    assert_ne!(
        std::hash::Hasher::finish(&raw),
        std::hash::Hasher::finish(&other)
    );
}

#[test]
fn concurrent_claims_of_one_key_have_one_winner() {
    let store = MemoryStore::new(100);
    let winners: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                scope.spawn(move || store.claim_now(key(7), ClaimOwner::unique(), LEASE))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap() == Ok(Claim::Claimed)))
            .sum()
    });
    assert_eq!(winners, 1);
}

#[test]
fn is_empty_and_debug_say_what_is_held() {
    let store = MemoryStore::new(10);
    assert!(store.is_empty());
    let owner = ClaimOwner::unique();
    store.claim_now(key(1), owner, LEASE).unwrap();
    assert!(!store.is_empty());
    assert_eq!(
        format!("{store:?}"),
        "MemoryStore { claims: 1, in_progress: 1, capacity: 10, dropped_early: 0 }"
    );
    assert!(store.complete_now(key(1), owner, HOUR));
    assert_eq!(
        format!("{store:?}"),
        "MemoryStore { claims: 1, in_progress: 0, capacity: 10, dropped_early: 0 }"
    );
    let running = ClaimOwner::unique();
    store.claim_now(key(2), running, LEASE).unwrap();
    store.release_now(key(2), running);
    assert!(format!("{store:?}").contains("in_progress: 0"));
}

#[test]
fn a_stale_entry_reaching_the_front_never_expires_the_claim_taken_since() {
    // Key 1 is handled with a short TTL behind key 2's longer one, expires, and is handled
    // again with a long TTL while its first queue entry is still queued behind key 2. When key
    // 2 expires and the sweep reaches key 1's first entry, the claim taken since must stay.
    let store = MemoryStore::new(10);
    let complete = |key, ttl| {
        let owner = ClaimOwner::unique();
        assert_eq!(store.claim_now(key, owner, LEASE), Ok(Claim::Claimed));
        assert!(store.complete_now(key, owner, ttl));
    };
    complete(key(2), Duration::from_millis(120));
    complete(key(1), Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(40));
    complete(key(1), HOUR);
    std::thread::sleep(Duration::from_millis(100));
    // Sweeps key 2, then key 1's stale first entry.
    assert_eq!(handle(&store, key(3)), Ok(Claim::Claimed));
    assert_eq!(handle(&store, key(1)), Ok(Claim::Handled));
}

#[test]
fn an_account_at_its_share_is_not_pushed_out_by_another_at_its_share() {
    // Capacity 6, three accounts: a share of 2 each. Account 1 holds 3 (over), 0 and 2 hold
    // 2 and 1. When account 0 (at its share) claims, account 1 gives up its oldest.
    let store = MemoryStore::new(6);
    for (tenant, n) in [(1, 0), (1, 1), (1, 2), (0, 0), (0, 1), (2, 0)] {
        assert_eq!(handle(&store, key_of(tenant, n)), Ok(Claim::Claimed));
    }
    assert_eq!(handle(&store, key_of(0, 2)), Ok(Claim::Claimed));
    assert_eq!(
        handle(&store, key_of(0, 0)),
        Ok(Claim::Handled),
        "account 0 kept its own"
    );
    assert_eq!(
        handle(&store, key_of(1, 0)),
        Ok(Claim::Claimed),
        "account 1's oldest went"
    );

    // Capacity 6 again: account 0 holds 1 (under its share of 2), accounts 1 and 2 hold 2
    // each (at their share), and a handler runs. Account 0's claim pushes out its own oldest,
    // not theirs.
    let store = MemoryStore::new(6);
    for (tenant, n) in [(1, 0), (1, 1), (2, 0), (2, 1), (0, 0)] {
        assert_eq!(handle(&store, key_of(tenant, n)), Ok(Claim::Claimed));
    }
    store
        .claim_now(key_of(9, 0), ClaimOwner::unique(), LEASE)
        .unwrap();
    assert_eq!(handle(&store, key_of(0, 1)), Ok(Claim::Claimed));
    for (tenant, n) in [(1, 0), (1, 1), (2, 0), (2, 1)] {
        assert_eq!(
            handle(&store, key_of(tenant, n)),
            Ok(Claim::Handled),
            "{tenant} {n}"
        );
    }
}

#[test]
fn accounts_that_hold_nothing_are_forgotten() {
    let store = MemoryStore::new(10);
    for tenant in 0..10_000u64 {
        assert_eq!(handle(&store, key_of(tenant, 0)), Ok(Claim::Claimed));
    }
    let tenants = store.lock().tenants.len();
    assert!(
        tenants <= 2 * 10 + 17,
        "{tenants} accounts kept for 10 claims"
    );
}

#[test]
fn an_account_whose_claims_all_expired_holds_no_share() {
    let store = MemoryStore::new(10);
    let ttl = Duration::from_millis(20);
    for n in 0..3 {
        let owner = ClaimOwner::unique();
        store.claim_now(key_of(5, n), owner, LEASE).unwrap();
        assert!(store.complete_now(key_of(5, n), owner, ttl));
    }
    assert_eq!(store.lock().holders, 1);
    std::thread::sleep(ttl);
    // Sweeps all three.
    assert_eq!(handle(&store, key_of(6, 0)), Ok(Claim::Claimed));
    let claims = store.lock();
    assert_eq!(claims.holders, 1, "account 6 only");
    assert!(!claims.tenants.contains_key(&5));
}
