//! Digest (RFC 7616), `qop="auth"`, with MD5 and SHA-256.

use core::fmt;
use std::time::{Duration, SystemTime};

use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::nonce::NonceSecret;
use super::params::Params;
use super::{AuthError, Credentials};

/// A Digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    /// `SHA-256` (RFC 7616), offered first.
    Sha256,
    /// `MD5` (RFC 2617's, kept by RFC 7616 for compatibility): offered because Twilio does not
    /// document which algorithm it uses. Weak: only over HTTPS.
    Md5,
}

impl Algorithm {
    fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("SHA-256") {
            Some(Self::Sha256)
        } else if name.eq_ignore_ascii_case("MD5") {
            Some(Self::Md5)
        } else {
            None
        }
    }

    /// Lowercase hex of the hash of `parts` joined by `:`, into `out`; its length.
    fn hex(self, parts: &[&[u8]], out: &mut [u8; 64]) -> usize {
        fn feed<D: Digest>(parts: &[&[u8]], out: &mut [u8; 64]) -> usize {
            let mut hash = D::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    hash.update(b":");
                }
                hash.update(part);
            }
            let digest = hash.finalize();
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            for (i, byte) in digest.iter().enumerate() {
                out[2 * i] = DIGITS[usize::from(byte >> 4)];
                out[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
            }
            2 * digest.len()
        }
        match self {
            Self::Sha256 => feed::<Sha256>(parts, out),
            Self::Md5 => feed::<Md5>(parts, out),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha256 => "SHA-256",
            Self::Md5 => "MD5",
        })
    }
}

/// What the server offered and what the request was.
pub(super) struct Expected<'a> {
    pub(super) credentials: &'a [Credentials],
    pub(super) realm: &'a str,
    pub(super) algorithms: &'a [Algorithm],
    pub(super) secret: &'a NonceSecret,
    pub(super) lifetime: Duration,
    pub(super) method: &'a str,
    pub(super) request_target: &'a str,
    pub(super) now: SystemTime,
}

/// The expected `response` for one credential pair (RFC 7616 §3.4.1), as lowercase hex.
#[allow(clippy::too_many_arguments)]
pub(super) fn response(
    algorithm: Algorithm,
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    qop: &str,
    out: &mut [u8; 64],
) -> usize {
    let (mut ha1, mut ha2) = ([0u8; 64], [0u8; 64]);
    let n1 = algorithm.hex(
        &[user.as_bytes(), realm.as_bytes(), password.as_bytes()],
        &mut ha1,
    );
    let n2 = algorithm.hex(&[method.as_bytes(), uri.as_bytes()], &mut ha2);
    algorithm.hex(
        &[
            &ha1[..n1],
            nonce.as_bytes(),
            nc.as_bytes(),
            cnonce.as_bytes(),
            qop.as_bytes(),
            &ha2[..n2],
        ],
        out,
    )
}

/// The index of the pair whose answer this is.
pub(super) fn check(expected: &Expected<'_>, text: &str) -> Result<usize, AuthError> {
    let params = Params::parse(text)?;
    let required = |name| params.get(name).ok_or(AuthError::Malformed);
    let username = required("username")?;
    let realm = required("realm")?;
    let nonce = required("nonce")?;
    let uri = required("uri")?;
    let presented = required("response")?;
    if params
        .get("userhash")
        .is_some_and(|v| !v.eq_ignore_ascii_case("false"))
    {
        // Not offered: a hashed user name cannot be matched.
        return Err(AuthError::Malformed);
    }
    if realm != expected.realm {
        return Err(AuthError::WrongRealm);
    }
    // RFC 7616: no `algorithm` means MD5.
    let algorithm = Algorithm::parse(params.get("algorithm").unwrap_or("MD5"))
        .filter(|a| expected.algorithms.contains(a))
        .ok_or(AuthError::UnsupportedAlgorithm)?;
    let qop = params.get("qop").ok_or(AuthError::UnsupportedQop)?;
    if qop != "auth" {
        return Err(AuthError::UnsupportedQop);
    }
    let nc = required("nc")?;
    let cnonce = required("cnonce")?;
    if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) || cnonce.is_empty() {
        return Err(AuthError::Malformed);
    }
    if uri != expected.request_target {
        return Err(AuthError::WrongUri);
    }
    let fresh = expected
        .secret
        .verify(nonce, expected.now, expected.lifetime)?;

    // Every pair is computed and compared, so the time says nothing about which user exists;
    // user names as hashes, so their lengths say nothing either.
    let username: [u8; 32] = Sha256::digest(username.as_bytes()).into();
    let mut found = subtle::Choice::from(0);
    let mut index = 0u64;
    for (i, pair) in expected.credentials.iter().enumerate() {
        let mut want = [0u8; 64];
        let len = response(
            algorithm,
            pair.user(),
            expected.realm,
            pair.password(),
            expected.method,
            uri,
            nonce,
            nc,
            cnonce,
            qop,
            &mut want,
        );
        let matches = pair.user_digest().ct_eq(&username) & want[..len].ct_eq(presented.as_bytes());
        // Two pairs can match only if they are the same pair: keeping the last is as good.
        index = u64::conditional_select(&index, &(i as u64), matches);
        found |= matches;
    }
    match (bool::from(found), fresh) {
        (true, true) => Ok(index as usize),
        (true, false) => Err(AuthError::StaleNonce),
        (false, _) => Err(AuthError::WrongCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1: user "Mufasa", password "Circle of Life", GET /dir/index.html.
    fn rfc_example(algorithm: Algorithm) -> String {
        let mut out = [0u8; 64];
        let len = response(
            algorithm,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "00000001",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "auth",
            &mut out,
        );
        String::from_utf8(out[..len].to_vec()).unwrap()
    }

    #[test]
    fn the_worked_example_of_rfc_7616() {
        assert_eq!(
            rfc_example(Algorithm::Md5),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        assert_eq!(
            rfc_example(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }
}
