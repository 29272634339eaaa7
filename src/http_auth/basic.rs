//! Basic (RFC 7617): `Basic base64(user ":" password)`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::{AuthError, Credentials};

/// The longest decoded `user:password` looked at.
const MAX_DECODED: usize = 1024;

/// The index of the pair `token` carries. Every pair is compared, in constant time, over user
/// and password together (as one SHA-256 of `user:password`, so lengths leak nothing either).
pub(super) fn check(credentials: &[Credentials], token: &str) -> Result<usize, AuthError> {
    let token = token.trim_matches(' ');
    let mut decoded = [0u8; MAX_DECODED];
    let len = match STANDARD.decode_slice(token.as_bytes(), &mut decoded) {
        // An empty token decodes to nothing, which has no `:`: malformed below.
        Ok(len) => len,
        Err(_) => return Err(AuthError::Malformed),
    };
    let decoded = &decoded[..len];
    if !decoded.contains(&b':') {
        return Err(AuthError::Malformed);
    }
    let presented: [u8; 32] = Sha256::digest(decoded).into();
    let mut found = subtle::Choice::from(0);
    let mut index = 0u64;
    for (i, pair) in credentials.iter().enumerate() {
        let matches = presented.ct_eq(pair.basic_digest());
        // Two pairs can match only if they are the same pair: keeping the last is as good.
        index = u64::conditional_select(&index, &(i as u64), matches);
        found |= matches;
    }
    if bool::from(found) {
        Ok(index as usize)
    } else {
        Err(AuthError::WrongCredentials)
    }
}
