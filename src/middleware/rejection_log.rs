//! One bounded `tracing` event per rejection: the same fields on every path, attacker-chosen
//! text truncated, and a rate limit per reason, so a flood of forged requests costs kilobytes
//! of logs, not gigabytes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::Method;

use super::response::Rejection;
use crate::ValidationError;

/// Events per reason per window; past it, rejections are counted and the count is reported
/// with the next event of that reason.
const BURST: u32 = 10;
/// The window of [`BURST`].
const WINDOW: Duration = Duration::from_secs(60);
/// The longest attacker-controlled text (URL, method) copied into an event, in bytes.
pub(crate) const MAX_FIELD: usize = 160;

/// The reasons counted apart, so a flood of one does not hide another.
const SLOTS: usize = 16;

/// Rate limits rejection events, per reason.
#[derive(Debug)]
pub(crate) struct RejectionLog {
    slots: Mutex<[Slot; SLOTS]>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    window_start: Option<Instant>,
    emitted: u32,
    suppressed: u64,
}

impl Default for RejectionLog {
    fn default() -> Self {
        Self {
            slots: Mutex::new(
                [Slot {
                    window_start: None,
                    emitted: 0,
                    suppressed: 0,
                }; SLOTS],
            ),
        }
    }
}

/// What one rejection event says: the same fields on every path.
pub(crate) struct Event<'a> {
    pub(crate) rejection: &'a Rejection,
    pub(crate) method: &'a Method,
    /// The URL as received, when one was built.
    pub(crate) url: Option<&'a str>,
    pub(crate) report_only: bool,
}

impl RejectionLog {
    /// `Some(suppressed since the last event)` if an event of this reason may be written now.
    fn admit(&self, slot: usize, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked mid-update of a counter.
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut slots[slot];
        if slot
            .window_start
            .is_none_or(|start| now.duration_since(start) >= WINDOW)
        {
            slot.window_start = Some(now);
            slot.emitted = 0;
        }
        if slot.emitted < BURST {
            slot.emitted += 1;
            Some(core::mem::take(&mut slot.suppressed))
        } else {
            slot.suppressed += 1;
            None
        }
    }

    /// Writes the event for a rejection, unless its reason is over its rate.
    pub(crate) fn record(&self, event: Event<'_>) {
        let Some(suppressed) = self.admit(slot(event.rejection), Instant::now()) else {
            return;
        };
        let method = truncate(event.method.as_str());
        let (url, tried) = match event.url.map(crate::url::for_log) {
            Some((url, tried)) => (Some(truncate(&url).into_owned()), tried),
            None => (None, Vec::new()),
        };
        let reason = event.rejection;
        let report_only = event.report_only;
        let hint = lambda_hint(reason, event.url);
        // A request without any signature is what every scanner sends, and one without
        // credentials is how Twilio always starts: routine, not alarming.
        if matches!(
            reason,
            Rejection::Invalid(ValidationError::MissingSignature)
                | Rejection::Unauthorized(crate::http_auth::AuthError::Missing)
        ) {
            tracing::debug!(
                target: "twilio_webhook",
                %reason, %method, url, ?tried, report_only, suppressed, hint,
                "rejected Twilio webhook"
            );
        } else if matches!(reason, Rejection::PathPrefixMissing) {
            // The deployment, not the request, is wrong: every webhook fails the same way.
            tracing::error!(
                target: "twilio_webhook",
                %reason, %method, url, ?tried, report_only, suppressed, hint,
                "rejected Twilio webhook: the layer is configured for another deployment"
            );
        } else {
            tracing::warn!(
                target: "twilio_webhook",
                %reason, %method, url, ?tried, report_only, suppressed, hint,
                "rejected Twilio webhook"
            );
        }
    }
}

impl RejectionLog {
    /// A duplicate answered without the handler: verified traffic, but a replayed capture can
    /// repeat it at will, so it is rate-limited like a rejection.
    pub(crate) fn record_duplicate(&self, parts: &http::request::Parts) {
        let Some(suppressed) = self.admit(slot(&Rejection::Duplicate), Instant::now()) else {
            return;
        };
        // Not signed, so not the key; useful to match Twilio's own logs.
        let idempotency_token = parts
            .headers
            .get("i-twilio-idempotency-token")
            .and_then(|value| value.to_str().ok())
            .map(truncate);
        tracing::info!(
            target: "twilio_webhook",
            method = %truncate(parts.method.as_str()),
            idempotency_token = idempotency_token.as_deref(),
            suppressed,
            "duplicate Twilio webhook answered without the handler"
        );
    }

    /// The replay guard's store failed; `unchecked` requests have gone on unchecked so far
    /// (fail-open), this one among them.
    pub(crate) fn record_store_failure(
        &self,
        error: &dyn std::error::Error,
        fail_closed: bool,
        unchecked: u64,
    ) {
        let Some(suppressed) = self.admit(slot(&Rejection::ReplayStoreFailed), Instant::now())
        else {
            return;
        };
        let error = error.to_string();
        tracing::error!(
            target: "twilio_webhook",
            error = %truncate(&error),
            fail_closed,
            unchecked,
            suppressed,
            "replay guard: the store failed; {}",
            if fail_closed {
                "answered 503 so Twilio retries"
            } else {
                "the request goes on, not checked for duplicates (`unchecked` so far)"
            }
        );
    }

    /// A claim the guard holds could not be renewed, completed or released as it should: the
    /// store lost it or failed. Rate-limited with the store's failures.
    pub(crate) fn record_claim_trouble(&self, what: &str, error: Option<&dyn std::error::Error>) {
        let Some(suppressed) = self.admit(slot(&Rejection::ReplayStoreFailed), Instant::now())
        else {
            return;
        };
        let error = error.map(|error| truncate(&error.to_string()).into_owned());
        tracing::error!(
            target: "twilio_webhook",
            error,
            suppressed,
            "replay guard: {what}"
        );
    }
}

/// Where a URL mismatch on AWS Lambda is most likely explained: the platform rewrites the path
/// (API Gateway stages), the scheme (ALB HTTP listeners) or the query (REST APIs, ALB).
fn lambda_hint(reason: &Rejection, url: Option<&str>) -> Option<&'static str> {
    let url_problem = matches!(
        reason,
        Rejection::Invalid(ValidationError::SignatureMismatch | ValidationError::InvalidUrl(_))
            | Rejection::PathPrefixMissing
    );
    let host = url
        .and_then(|url| url.split_once("://"))
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let on_aws = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
        || host.is_some_and(|host| {
            let host = host.rsplit_once(':').map_or(host, |(host, _)| host);
            host.ends_with(".amazonaws.com") || host.ends_with(".on.aws")
        });
    (url_problem && on_aws).then_some(
        "on AWS Lambda? see the README's \"AWS Lambda\" section: a stage in the path \
         (strip_path_prefix), an ALB HTTP listener (derive_url(Scheme::Http)), a query \
         rebuilt by a REST API or an ALB",
    )
}

/// At most [`MAX_FIELD`] bytes, cut at a character boundary, marked with `…` when cut.
pub(crate) fn truncate(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_FIELD {
        return text.into();
    }
    let mut end = MAX_FIELD;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

fn slot(rejection: &Rejection) -> usize {
    use ValidationError as E;
    match rejection {
        Rejection::Invalid(error) => match error {
            E::MissingSignature => 0,
            E::MalformedSignature | E::MalformedSignatureSettings | E::RepeatedHeader => 1,
            E::SignatureMismatch => 2,
            E::BodyHashMismatch | E::UnsignedBody | E::BodySha256NeedsRawBody => 3,
            E::MalformedBody(_) => 4,
            E::InvalidUrl(_) => 5,
            E::UnknownAccount | E::AmbiguousAccount | E::AccountMismatch | E::NoUsableKey => 6,
            E::UnknownAlgorithm | E::UnknownSharedKey => 7,
        },
        Rejection::PayloadTooLarge { .. } => 8,
        Rejection::BodyUnreadable | Rejection::BodyTimeout { .. } => 9,
        Rejection::KeyLookupFailed | Rejection::ReplayStoreFailed => 10,
        Rejection::Duplicate => 11,
        Rejection::Unauthorized(crate::http_auth::AuthError::Missing) => 12,
        Rejection::Unauthorized(_) => 13,
        Rejection::InProgress => 14,
        Rejection::PathPrefixMissing => 15,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_gets_its_burst_per_window_then_a_count() {
        let log = RejectionLog::default();
        let start = Instant::now();
        for _ in 0..BURST {
            assert_eq!(log.admit(2, start), Some(0));
        }
        for _ in 0..500 {
            assert_eq!(log.admit(2, start), None);
        }
        // Another reason is not held back by the flood.
        assert_eq!(log.admit(0, start), Some(0));
        // The next window reports what was held back.
        let later = start + WINDOW;
        assert_eq!(log.admit(2, later), Some(500));
        assert_eq!(log.admit(2, later), Some(0));
    }

    #[test]
    fn a_url_mismatch_on_an_aws_host_points_at_the_lambda_section() {
        let mismatch = Rejection::Invalid(ValidationError::SignatureMismatch);
        for url in [
            "https://wt6mne2s9k.execute-api.us-east-1.amazonaws.com/prod/sms",
            "https://abc.lambda-url.eu-west-2.on.aws/sms",
            "http://twilio-1.us-east-1.elb.amazonaws.com:80/sms",
        ] {
            let hint = lambda_hint(&mismatch, Some(url)).expect(url);
            assert!(hint.contains("AWS Lambda"), "{hint}");
        }
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
            assert_eq!(
                lambda_hint(&mismatch, Some("https://hooks.example.com/sms")),
                None
            );
        }
        let other = Rejection::Invalid(ValidationError::MissingSignature);
        assert_eq!(
            lambda_hint(&other, Some("https://abc.lambda-url.eu-west-2.on.aws/sms")),
            None
        );
    }

    #[test]
    fn long_fields_are_cut_at_a_character_boundary() {
        let long = "é".repeat(200);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_FIELD + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("/sms"), "/sms");
    }
}
