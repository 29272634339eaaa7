//! The key a request is claimed under, and who holds a claim.

use core::fmt;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::{KeyUsed, Verified};

/// What a verified request is claimed under: 128 bits of SHA-256 over the account, the
/// identity of the key that verified the request (a hash of the key, never its position in a
/// list, so reordering tokens during a rotation changes nothing) and its MAC. Twilio's
/// re-sends of one request carry the same MAC, so the same key; without the signing key
/// nobody can produce a MAC, so nobody can make a key that collides with a real webhook's. The
/// MAC itself is never stored or shown.
///
/// It also names the key's *tenant* (64 bits of the key's identity): a bounded store counts
/// each tenant's claims apart, so that one account's traffic cannot push out another's.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClaimKey {
    hash: [u8; 16],
    tenant: u64,
}

/// One word: the key is already a uniform hash, so hashing all of it again buys nothing.
impl core::hash::Hash for ClaimKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        let (hi, lo) = self.hash.split_at(8);
        let word = |half: &[u8]| u64::from_le_bytes(half.try_into().expect("8 bytes"));
        state.write_u64(word(hi) ^ word(lo));
    }
}

impl ClaimKey {
    /// The key of a request that `verified` describes, whose `X-Twilio-Signature` (or shared
    /// key signature) header was `signature`. Call it only after verification succeeded.
    pub fn for_request(verified: &Verified, signature: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"twilio-webhook replay key v2\0");
        hash.update(verified.account_sid.as_deref().unwrap_or("").as_bytes());
        hash.update(b"\0");
        match &verified.key {
            KeyUsed::AuthToken { .. } => hash.update(b"auth token\0"),
            KeyUsed::SharedKey { id } => {
                hash.update(b"shared key\0");
                hash.update(id.as_bytes());
                hash.update(b"\0");
            }
        }
        hash.update(verified.key_identity.bytes());
        hash.update(signature.as_bytes());
        let digest = hash.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Self {
            hash: key,
            tenant: verified.key_identity.tenant(),
        }
    }

    /// A key from raw bytes, in tenant 0, for stores' own tests.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self::for_tenant(bytes, 0)
    }

    /// A key from raw bytes in `tenant`, for stores' own tests.
    pub fn for_tenant(bytes: [u8; 16], tenant: u64) -> Self {
        Self {
            hash: bytes,
            tenant,
        }
    }

    /// Which tenant's share of a bounded store the claim counts against.
    pub fn tenant(&self) -> u64 {
        self.tenant
    }
}

/// 32 lowercase hex digits.
impl fmt::Display for ClaimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.hash.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ClaimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimKey({self})")
    }
}

/// Who holds a claim: unique per request across every process sharing a store, so that a
/// release deletes only its own claim.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimOwner {
    process: u64,
    request: u64,
}

/// 64 random bits per process (std's hasher keys are seeded from the OS), so that two
/// replicas never hand out the same owner; a counter makes each request's unique within one.
/// A random-number crate would add a dependency for these two lines.
static PROCESS: LazyLock<u64> = LazyLock::new(|| RandomState::new().hash_one(0u64));
static NEXT: AtomicU64 = AtomicU64::new(0);

impl ClaimOwner {
    /// A new owner, never handed out before by this process.
    pub fn unique() -> Self {
        Self {
            process: *PROCESS,
            request: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl fmt::Display for ClaimOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.process, self.request)
    }
}

impl fmt::Debug for ClaimOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimOwner({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{UrlVariant, Validator};

    const URL: &str = "https://example.com/sms";

    /// What `validator` says of a request signed with `token`, and its signature header.
    fn verified_by(validator: &Validator, token: &str, body: &str) -> (Verified, String) {
        let params = crate::form_params(body.as_bytes()).unwrap();
        let signature = crate::compute_signature(token, URL, &params);
        let webhook = crate::Webhook::new(URL)
            .content_type(Some("application/x-www-form-urlencoded"))
            .body(body.as_bytes())
            .signature(Some(&signature));
        (validator.verify(&webhook).unwrap(), signature)
    }

    fn key(validator: &Validator, token: &str, body: &str) -> ClaimKey {
        let (verified, signature) = verified_by(validator, token, body);
        ClaimKey::for_request(&verified, &signature)
    }

    #[test]
    fn the_key_depends_on_the_mac_the_key_and_the_account_only() {
        let one = Validator::new("token one");
        let a = key(&one, "token one", "Body=hi");
        // The same request re-sent: the same key, whatever URL variant matched.
        let (mut other_variant, signature) = verified_by(&one, "token one", "Body=hi");
        other_variant.url_variant = UrlVariant::PortToggled;
        assert_eq!(a, ClaimKey::for_request(&other_variant, &signature));
        // Another MAC, another key, another account: other keys.
        assert_ne!(a, key(&one, "token one", "Body=bye"));
        let two = Validator::new("token two");
        let (by_two, _) = verified_by(&two, "token two", "Body=hi");
        assert_ne!(a, ClaimKey::for_request(&by_two, &signature));
        let (mut for_account, _) = verified_by(&one, "token one", "Body=hi");
        for_account.account_sid = Some("AC1".into());
        assert_ne!(a, ClaimKey::for_request(&for_account, &signature));
        assert_eq!(a.to_string().len(), 32);
        assert!(!a.to_string().contains("L/OH5"));
    }

    #[test]
    fn reordering_tokens_in_a_rotation_keeps_every_claim_key() {
        let old_first = Validator::new("old token").add_auth_token("new token");
        let new_first = Validator::new("new token").add_auth_token("old token");
        for token in ["old token", "new token"] {
            let (a, signature) = verified_by(&old_first, token, "Body=hi");
            let (b, _) = verified_by(&new_first, token, "Body=hi");
            assert_ne!(a.key, b.key, "the positions differ");
            assert_eq!(
                ClaimKey::for_request(&a, &signature),
                ClaimKey::for_request(&b, &signature),
                "{token}: the same token, the same claim"
            );
            assert_eq!(a.key_identity, b.key_identity);
        }
        // Two tokens are two tenants of a bounded store.
        assert_ne!(
            key(&old_first, "old token", "Body=hi").tenant(),
            key(&old_first, "new token", "Body=hi").tenant()
        );
    }

    #[test]
    fn a_claim_key_shows_as_its_hex_and_its_owner_as_process_and_request() {
        let key = ClaimKey::from_bytes([0xab; 16]);
        assert_eq!(key.to_string(), "ab".repeat(16));
        assert_eq!(format!("{key:?}"), format!("ClaimKey({})", "ab".repeat(16)));
        let owner = ClaimOwner::unique();
        assert_eq!(format!("{owner:?}"), format!("ClaimOwner({owner})"));
        assert_eq!(ClaimKey::for_tenant([1; 16], 7).tenant(), 7);
        assert_eq!(ClaimKey::from_bytes([1; 16]).tenant(), 0);
    }

    #[test]
    fn a_key_identity_shows_nothing_of_the_key() {
        let (verified, _) = verified_by(&Validator::new("token one"), "token one", "Body=hi");
        assert_eq!(format!("{:?}", verified.key_identity), "KeyIdentity(..)");
    }

    #[test]
    fn owners_are_unique() {
        let owners: std::collections::HashSet<_> =
            (0..1000).map(|_| ClaimOwner::unique()).collect();
        assert_eq!(owners.len(), 1000);
        assert_eq!(ClaimOwner::unique().to_string().len(), 32);
    }
}
