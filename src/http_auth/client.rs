//! The client's side, for tests: the `Authorization` a client sends in answer to a challenge.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::digest::{Algorithm, response};
use super::params::Params;
use super::{AuthError, Credentials};

/// `Basic base64(user:password)`.
pub fn basic_authorization(credentials: &Credentials) -> String {
    let pair = format!("{}:{}", credentials.user(), credentials.password());
    format!("Basic {}", STANDARD.encode(pair))
}

/// The `Authorization` answering the Digest `challenge` (a `WWW-Authenticate` value) for
/// `method` and `uri` (the request-target), with client nonce `cnonce` and count 1, as a
/// client such as curl computes it. For tests of servers and handlers behind Digest.
pub fn digest_authorization(
    challenge: &str,
    credentials: &Credentials,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> Result<String, AuthError> {
    let params = challenge
        .strip_prefix("Digest ")
        .ok_or(AuthError::WrongScheme)
        .and_then(Params::parse)?;
    let realm = params.get("realm").ok_or(AuthError::Malformed)?;
    let nonce = params.get("nonce").ok_or(AuthError::Malformed)?;
    let algorithm_name = params.get("algorithm").unwrap_or("MD5");
    let algorithm = match algorithm_name {
        name if name.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
        name if name.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
        _ => return Err(AuthError::UnsupportedAlgorithm),
    };
    let nc = "00000001";
    let mut out = [0u8; 64];
    let len = response(
        algorithm,
        credentials.user(),
        realm,
        credentials.password(),
        method,
        uri,
        nonce,
        nc,
        cnonce,
        "auth",
        &mut out,
    );
    let answer = core::str::from_utf8(&out[..len]).expect("hex");
    Ok(format!(
        "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm={algorithm_name}, qop=auth, nc={nc}, cnonce=\"{cnonce}\", \
         response=\"{answer}\"",
        credentials.user()
    ))
}
