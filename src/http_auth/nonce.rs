//! Stateless Digest nonces: a timestamp and an HMAC over it, so any instance holding the same
//! secret verifies a nonce another issued, and none keeps a table of them.

use core::fmt;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, HttpAuthError};
use crate::signature::HmacSha256;

/// How far in the future a nonce's time may be (clocks of replicas differ a little).
const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// The secret Digest nonces are signed with. `Debug` never shows it.
#[derive(Clone)]
pub struct NonceSecret {
    mac: HmacSha256,
}

impl NonceSecret {
    pub(super) fn new(secret: &[u8]) -> Result<Self, HttpAuthError> {
        if secret.len() < 32 {
            return Err(HttpAuthError::WeakNonceSecret);
        }
        Ok(Self {
            mac: HmacSha256::new_from_slice(secret).expect("HMAC accepts a key of any length"),
        })
    }

    /// A secret of this process alone, from the OS's randomness (std seeds its hash keys from
    /// it): enough for one instance; several must share one with `HttpAuth::nonce_secret`.
    pub(super) fn random() -> Self {
        let state = RandomState::new();
        let mut seed = Sha256::new();
        for i in 0u8..4 {
            seed.update(state.hash_one(i).to_le_bytes());
            seed.update(RandomState::new().hash_one(i).to_le_bytes());
        }
        Self::new(&seed.finalize()).expect("32 bytes")
    }

    fn tag(&self, seconds: u64) -> [u8; 16] {
        let mut mac = self.mac.clone();
        mac.update(b"twilio-webhook digest nonce v1\0");
        mac.update(&seconds.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    /// A nonce for `now`: 16 hex digits of seconds, 32 of the tag.
    pub(super) fn issue(&self, now: SystemTime) -> String {
        let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut nonce = format!("{seconds:016x}");
        for byte in self.tag(seconds) {
            nonce.push_str(&format!("{byte:02x}"));
        }
        nonce
    }

    /// `Ok(true)` for a fresh nonce this secret issued, `Ok(false)` for an expired one.
    pub(super) fn verify(
        &self,
        nonce: &str,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<bool, AuthError> {
        let bytes = nonce.as_bytes();
        // One spelling only, the one issued: lowercase hex. (Uppercase digits would parse to
        // the same time and tag, so a captured answer could be varied at will.)
        if bytes.len() != 48 || !bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(AuthError::InvalidNonce);
        }
        let seconds = u64::from_str_radix(&nonce[..16], 16).map_err(|_| AuthError::InvalidNonce)?;
        let mut claimed = [0u8; 16];
        for (i, byte) in claimed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&nonce[16 + 2 * i..18 + 2 * i], 16)
                .map_err(|_| AuthError::InvalidNonce)?;
        }
        if !bool::from(self.tag(seconds).ct_eq(&claimed)) {
            return Err(AuthError::InvalidNonce);
        }
        let issued = UNIX_EPOCH + Duration::from_secs(seconds);
        if issued > now + CLOCK_SKEW {
            return Err(AuthError::InvalidNonce);
        }
        Ok(now.duration_since(issued).unwrap_or_default() <= lifetime)
    }
}

impl fmt::Debug for NonceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_verifies_under_its_secret_only_and_expires() {
        let secret = NonceSecret::new(&[7; 32]).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let nonce = secret.issue(now);
        let minute = Duration::from_secs(60);
        assert_eq!(secret.verify(&nonce, now, minute), Ok(true));
        // Another instance with the same secret accepts it.
        let twin = NonceSecret::new(&[7; 32]).unwrap();
        assert_eq!(twin.verify(&nonce, now + minute, minute), Ok(true));
        assert_eq!(twin.verify(&nonce, now + minute * 2, minute), Ok(false));
        // Another secret, a tampered time or tag, from the future, garbage: invalid.
        let other = NonceSecret::new(&[8; 32]).unwrap();
        assert_eq!(
            other.verify(&nonce, now, minute),
            Err(AuthError::InvalidNonce)
        );
        let mut tampered = nonce.clone();
        let flipped = if &nonce[15..16] == "0" { "1" } else { "0" };
        tampered.replace_range(15..16, flipped);
        assert_eq!(
            secret.verify(&tampered, now, minute),
            Err(AuthError::InvalidNonce)
        );
        let future = secret.issue(now + Duration::from_secs(3600));
        assert_eq!(
            secret.verify(&future, now, minute),
            Err(AuthError::InvalidNonce)
        );
        for bad in ["", "zz", &"0".repeat(48), &format!("{nonce}0"), "é"] {
            assert_eq!(
                secret.verify(bad, now, minute),
                Err(AuthError::InvalidNonce),
                "{bad}"
            );
        }
        assert!(!format!("{secret:?}").contains('7'));
    }

    #[test]
    fn a_nonce_up_to_the_clock_skew_ahead_is_accepted_and_not_a_second_more() {
        let secret = NonceSecret::new(&[7; 32]).unwrap();
        let issued = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let nonce = secret.issue(issued);
        let minute = Duration::from_secs(60);
        // Another instance whose clock is behind the issuer's by the allowed skew, exactly.
        assert_eq!(secret.verify(&nonce, issued - CLOCK_SKEW, minute), Ok(true));
        assert_eq!(
            secret.verify(&nonce, issued - CLOCK_SKEW - Duration::from_secs(1), minute),
            Err(AuthError::InvalidNonce)
        );
    }

    #[test]
    fn debug_says_redacted_and_nothing_else() {
        let secret = NonceSecret::new(&[7; 32]).unwrap();
        assert_eq!(format!("{secret:?}"), "NonceSecret([redacted])");
    }

    #[test]
    fn a_nonce_has_one_spelling() {
        let secret = NonceSecret::new(&[7; 32]).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let nonce = secret.issue(now);
        assert!(nonce.bytes().any(|b| b.is_ascii_lowercase()), "{nonce}");
        assert_eq!(
            secret.verify(&nonce.to_ascii_uppercase(), now, Duration::from_secs(60)),
            Err(AuthError::InvalidNonce)
        );
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert_eq!(
            NonceSecret::new(&[1; 31]).err(),
            Some(HttpAuthError::WeakNonceSecret)
        );
    }
}
