//! Keys chosen per request: subaccounts and multi-tenant servers.
//!
//! Each Twilio subaccount signs with its own auth token. A platform serving many accounts
//! cannot build a layer per account: it gives the layer a [`KeySource`], asked for the
//! [`Validator`] of each request's account, possibly from a database.

use core::fmt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, Method, Uri};

use super::BoxError;
use crate::Validator;

/// What a [`KeySource`] sees of a request to choose its key. Nothing here is verified yet:
/// it only picks which token to check the signature with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyRequest {
    /// The `AccountSid` parameter of a form body (or of the query string of a GET), decoded.
    /// JSON webhooks and some AddOns payloads carry none: key those by route or header.
    pub account_sid: Option<String>,
    /// The request method.
    pub method: Method,
    /// The URI as the client sent it (before any `Router::nest` stripped a prefix).
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
}

/// The answer of a [`KeySource`]: the account's validator, `None` for an unknown account
/// (403, [`ValidationError::UnknownAccount`](crate::ValidationError::UnknownAccount)), or an
/// error for a failed lookup (503, [`Rejection::KeyLookupFailed`](super::Rejection)).
pub type KeyLookup = Pin<Box<dyn Future<Output = Result<Option<Arc<Validator>>, BoxError>> + Send>>;

/// Chooses the key for each request, possibly asynchronously (a database, a secret manager).
///
/// ```
/// use std::sync::Arc;
/// use twilio_webhook::Validator;
/// use twilio_webhook::middleware::{KeyLookup, KeyRequest, KeySource};
///
/// /// Keys by route: `/tenants/{id}/...`, each tenant's account SID and token from some store.
/// struct ByRoute(Arc<dyn Fn(&str) -> Option<(String, String)> + Send + Sync>);
///
/// impl KeySource for ByRoute {
///     fn validator(&self, request: KeyRequest) -> KeyLookup {
///         let store = Arc::clone(&self.0);
///         Box::pin(async move {
///             let tenant = request.uri.path().split('/').nth(2).unwrap_or_default();
///             // Say whose keys they are: a request naming another account is then refused,
///             // and `Verified::account_sid` is this account.
///             Ok(store(tenant).map(|(account_sid, token)| {
///                 Arc::new(Validator::new(token).account_sid(account_sid))
///             }))
///         })
///     }
/// }
/// ```
pub trait KeySource: Send + Sync + 'static {
    /// The validator for `request`'s account.
    fn validator(&self, request: KeyRequest) -> KeyLookup;
}

/// Any async function of the request is a key source:
///
/// ```
/// use std::sync::Arc;
/// use twilio_webhook::Validator;
/// use twilio_webhook::middleware::{BoxError, KeyRequest, TwilioWebhookLayer};
///
/// let layer = TwilioWebhookLayer::with_key_source(|request: KeyRequest| async move {
///     // e.g. SELECT auth_token FROM accounts WHERE sid = $1
///     let token = match request.account_sid.as_deref() {
///         Some("AC11111111111111111111111111111111") => Some("token of that account"),
///         _ => None,
///     };
///     Ok::<_, BoxError>(token.map(|token| Arc::new(Validator::new(token))))
/// });
/// ```
impl<F, Fut> KeySource for F
where
    F: Fn(KeyRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Arc<Validator>>, BoxError>> + Send + 'static,
{
    fn validator(&self, request: KeyRequest) -> KeyLookup {
        Box::pin(self(request))
    }
}

/// A ready-made [`KeySource`]: auth tokens in memory, by `AccountSid`.
///
/// ```
/// use twilio_webhook::Validator;
/// use twilio_webhook::middleware::{AccountMap, TwilioWebhookLayer};
///
/// let accounts = AccountMap::new()
///     .insert("AC11111111111111111111111111111111", Validator::new("token of the parent"))
///     .insert("AC22222222222222222222222222222222", Validator::new("token of a subaccount"));
/// let layer = TwilioWebhookLayer::with_key_source(accounts);
/// ```
#[derive(Clone, Default)]
pub struct AccountMap {
    accounts: HashMap<String, Arc<Validator>>,
}

impl AccountMap {
    /// No accounts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the validator of `account_sid`, told that its keys are that
    /// account's ([`Validator::account_sid`]): a request verified with them is for that
    /// account only.
    #[must_use]
    pub fn insert(mut self, account_sid: impl Into<String>, validator: Validator) -> Self {
        let account_sid = account_sid.into();
        let validator = validator.account_sid(&account_sid);
        self.accounts.insert(account_sid, Arc::new(validator));
        self
    }
}

impl KeySource for AccountMap {
    fn validator(&self, request: KeyRequest) -> KeyLookup {
        let found = request
            .account_sid
            .and_then(|sid| self.accounts.get(&sid).cloned());
        Box::pin(std::future::ready(Ok(found)))
    }
}

impl fmt::Debug for AccountMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Account SIDs are not secret; the validators redact their tokens.
        f.debug_map().entries(self.accounts.iter()).finish()
    }
}
