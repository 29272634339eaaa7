//! A user name and password, kept so that neither `Debug` nor a comparison gives the password
//! away.

use core::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::HttpAuthError;

/// One user name and password that HTTP authentication accepts. `Debug` shows the user only.
#[derive(Clone)]
pub struct Credentials {
    user: Arc<str>,
    password: Arc<str>,
    /// SHA-256 of `user:password`: what a Basic header decodes to, compared in constant time
    /// and with no length to leak.
    basic: [u8; 32],
    /// SHA-256 of the user name: what a Digest `username` is compared with, likewise.
    user_digest: [u8; 32],
}

impl Credentials {
    /// A pair. The user name must be non-empty without `:` (RFC 7617), `"` or control
    /// characters; the password non-empty without control characters.
    pub fn new(user: impl AsRef<str>, password: impl AsRef<str>) -> Result<Self, HttpAuthError> {
        let (user, password) = (user.as_ref(), password.as_ref());
        if user.is_empty() || user.chars().any(|c| c == ':' || c == '"' || c.is_control()) {
            return Err(HttpAuthError::InvalidUser);
        }
        if password.is_empty() || password.chars().any(char::is_control) {
            return Err(HttpAuthError::InvalidPassword);
        }
        let mut basic = Sha256::new();
        basic.update(user.as_bytes());
        basic.update(b":");
        basic.update(password.as_bytes());
        Ok(Self {
            user: user.into(),
            password: password.into(),
            basic: basic.finalize().into(),
            user_digest: Sha256::digest(user.as_bytes()).into(),
        })
    }

    /// `user:password`, as a webhook URL or `BASIC_AUTH=user:password` carries it (split at
    /// the first `:`).
    pub fn parse(pair: &str) -> Result<Self, HttpAuthError> {
        let (user, password) = pair.split_once(':').ok_or(HttpAuthError::InvalidPassword)?;
        Self::new(user, password)
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    pub(crate) fn user_arc(&self) -> Arc<str> {
        Arc::clone(&self.user)
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    pub(crate) fn basic_digest(&self) -> &[u8; 32] {
        &self.basic
    }

    pub(crate) fn user_digest(&self) -> &[u8; 32] {
        &self.user_digest
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}
