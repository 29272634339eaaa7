//! The key a request is claimed under, and who holds a claim.

use core::fmt;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::{KeyUsed, Verified};

/// What a verified request is claimed under: 128 bits of SHA-256 over the account, the key
/// that verified the request and its MAC. Twilio's re-sends of one request carry the same MAC,
/// so the same key; without the signing key nobody can produce a MAC, so nobody can make a
/// key that collides with a real webhook's. The MAC itself is never stored or shown.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClaimKey([u8; 16]);

/// One word: the key is already a uniform hash, so hashing all of it again buys nothing.
impl core::hash::Hash for ClaimKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        let (hi, lo) = self.0.split_at(8);
        let word = |half: &[u8]| u64::from_le_bytes(half.try_into().expect("8 bytes"));
        state.write_u64(word(hi) ^ word(lo));
    }
}

impl ClaimKey {
    /// The key of a request that `verified` describes, whose `X-Twilio-Signature` (or shared
    /// key signature) header was `signature`. Call it only after verification succeeded.
    pub fn for_request(verified: &Verified, signature: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"twilio-webhook replay key v1\0");
        hash.update(verified.account_sid.as_deref().unwrap_or("").as_bytes());
        hash.update(b"\0");
        match &verified.key {
            KeyUsed::AuthToken { index } => {
                hash.update(b"auth token\0");
                hash.update((*index as u64).to_be_bytes());
            }
            KeyUsed::SharedKey { id } => {
                hash.update(b"shared key\0");
                hash.update(id.as_bytes());
                hash.update(b"\0");
            }
        }
        hash.update(signature.as_bytes());
        let digest = hash.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Self(key)
    }

    /// A key from raw bytes, for stores' own tests.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

/// 32 lowercase hex digits.
impl fmt::Display for ClaimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
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
    use crate::UrlVariant;

    fn verified(key: KeyUsed, account: Option<&str>) -> Verified {
        Verified {
            url_variant: UrlVariant::AsReceived,
            key,
            account_sid: account.map(str::to_owned),
        }
    }

    #[test]
    fn the_key_depends_on_the_mac_the_key_and_the_account_only() {
        let token0 = verified(KeyUsed::AuthToken { index: 0 }, None);
        let a = ClaimKey::for_request(&token0, "L/OH5YylLD5NRKLltdqwSvS0BnU=");
        // The same request re-sent: the same key, whatever URL variant matched.
        let mut other_variant = token0.clone();
        other_variant.url_variant = UrlVariant::PortToggled;
        assert_eq!(
            a,
            ClaimKey::for_request(&other_variant, "L/OH5YylLD5NRKLltdqwSvS0BnU=")
        );
        // Another MAC, another key index, another account, a shared key: other keys.
        for (v, sig) in [
            (token0.clone(), "M/OH5YylLD5NRKLltdqwSvS0BnU="),
            (
                verified(KeyUsed::AuthToken { index: 1 }, None),
                "L/OH5YylLD5NRKLltdqwSvS0BnU=",
            ),
            (
                verified(KeyUsed::AuthToken { index: 0 }, Some("AC1")),
                "L/OH5YylLD5NRKLltdqwSvS0BnU=",
            ),
            (
                verified(KeyUsed::SharedKey { id: "KS1".into() }, None),
                "L/OH5YylLD5NRKLltdqwSvS0BnU=",
            ),
        ] {
            assert_ne!(a, ClaimKey::for_request(&v, sig), "{v:?}");
        }
        assert_eq!(a.to_string().len(), 32);
        assert!(!a.to_string().contains("L/OH5"));
    }

    #[test]
    fn owners_are_unique() {
        let owners: std::collections::HashSet<_> =
            (0..1000).map(|_| ClaimOwner::unique()).collect();
        assert_eq!(owners.len(), 1000);
        assert_eq!(ClaimOwner::unique().to_string().len(), 32);
    }
}
