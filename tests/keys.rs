//! Keys as deployments have them: rotation, subaccounts, shared keys (HMAC-SHA256).

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use support::{Case, conformance, form_body, sha256_hex};
use tower::{ServiceBuilder, ServiceExt};
use twilio_webhook::middleware::{
    AccountMap, KeyLookup, KeyRequest, KeySource, Rejection, ResponseBody, TwilioWebhookLayer,
    Unverified,
};
use twilio_webhook::{KeyUsed, ValidationError, Validator, Verified, compute_signature};

const OLD: &str = "0e1d2c3b4a5968778695a4b3c2d1e0f9";
const NEW: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const URL: &str = "https://hooks.example.com/sms";
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

// --- Rotation -------------------------------------------------------------------------------

#[test]
fn a_rotated_token_is_accepted_during_the_overlap_and_refused_after_removal() {
    let params = [("From", "+14155550123"), ("Body", "rotation")];
    let by_old = compute_signature(OLD, URL, &params);
    let by_new = compute_signature(NEW, URL, &params);
    let form = form_body(&params);
    let webhook = |signature| {
        twilio_webhook::Webhook::new(URL)
            .content_type(FORM)
            .body(form.as_bytes())
            .signature(Some(signature))
            .signature_settings(None)
    };

    let overlap = Validator::new(OLD).add_auth_token(NEW);
    assert_eq!(
        overlap.verify(&webhook(&by_old)).unwrap().key,
        KeyUsed::AuthToken { index: 0 }
    );
    assert_eq!(
        overlap.verify(&webhook(&by_new)).unwrap().key,
        KeyUsed::AuthToken { index: 1 }
    );
    assert!(overlap.validate(URL, &params, &by_old).is_ok());
    assert!(overlap.validate(URL, &params, &by_new).is_ok());

    let after = Validator::new(NEW);
    assert!(after.validate(URL, &params, &by_new).is_ok());
    assert_eq!(
        after.validate(URL, &params, &by_old),
        Err(ValidationError::SignatureMismatch)
    );
}

#[test]
fn an_empty_secondary_token_is_ignored_not_a_wildcard() {
    let params = [("a", "1")];
    let by_empty = compute_signature("", URL, &params);
    let validator = Validator::new(NEW).add_auth_token("");
    assert_eq!(
        validator.validate(URL, &params, &by_empty),
        Err(ValidationError::SignatureMismatch)
    );
}

// --- Subaccounts ----------------------------------------------------------------------------

const PARENT: (&str, &str) = ("AC00000000000000000000000000000001", "parent-token");
const SUB: (&str, &str) = ("AC00000000000000000000000000000002", "subaccount-token");
const SIBLING: (&str, &str) = ("AC00000000000000000000000000000003", "sibling-token");

fn accounts() -> AccountMap {
    AccountMap::new()
        .insert(PARENT.0, Validator::new(PARENT.1))
        .insert(SUB.0, Validator::new(SUB.1))
        .insert(SIBLING.0, Validator::new(SIBLING.1))
}

async fn call(
    layer: TwilioWebhookLayer,
    request: Request<Full<Bytes>>,
) -> (
    Response<ResponseBody<Full<Bytes>>>,
    usize,
    Option<Verified>,
    Option<Unverified>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new((None, None)));
    let (inner_calls, inner_seen) = (Arc::clone(&calls), Arc::clone(&seen));
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(move |request: Request<Full<Bytes>>| {
                inner_calls.fetch_add(1, Ordering::SeqCst);
                *inner_seen.lock().unwrap() = (
                    request.extensions().get::<Verified>().cloned(),
                    request.extensions().get::<Unverified>().cloned(),
                );
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
            });
    let response = service.oneshot(request).await.unwrap();
    let (verified, unverified) = seen.lock().unwrap().clone();
    (response, calls.load(Ordering::SeqCst), verified, unverified)
}

fn signed_request(token: &str, params: &[(&str, &str)]) -> Request<Full<Bytes>> {
    Request::post("/sms")
        .header("content-type", FORM.unwrap())
        .header("x-twilio-signature", compute_signature(token, URL, params))
        .body(Full::new(Bytes::from(form_body(params))))
        .unwrap()
}

fn layer(source: impl KeySource) -> TwilioWebhookLayer {
    TwilioWebhookLayer::with_key_source(source)
        .public_url("https://hooks.example.com")
        .unwrap()
}

#[tokio::test]
async fn a_subaccount_request_passes_only_with_its_own_token() {
    let params = [("AccountSid", SUB.0), ("Body", "hi")];
    let (response, calls, verified, _) =
        call(layer(accounts()), signed_request(SUB.1, &params)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls, 1);
    assert!(verified.is_some());

    for token in [PARENT.1, SIBLING.1, "unrelated"] {
        let (response, calls, _, _) = call(layer(accounts()), signed_request(token, &params)).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "signed by {token}"
        );
        assert_eq!(
            response.extensions().get::<ValidationError>(),
            Some(&ValidationError::SignatureMismatch)
        );
        assert_eq!(calls, 0);
    }
}

#[tokio::test]
async fn claiming_another_account_does_not_borrow_its_key() {
    // Signed with the subaccount's token but claiming the sibling's AccountSid: checked with
    // the sibling's token, so refused.
    let params = [("AccountSid", SIBLING.0), ("Body", "hi")];
    let (response, calls, _, _) = call(layer(accounts()), signed_request(SUB.1, &params)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(calls, 0);
}

#[tokio::test]
async fn an_unknown_or_missing_account_is_403_unknown_account() {
    for params in [
        vec![
            ("AccountSid", "AC99999999999999999999999999999999"),
            ("Body", "hi"),
        ],
        vec![("Body", "no account sid")],
    ] {
        let (response, calls, _, _) = call(layer(accounts()), signed_request(SUB.1, &params)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.extensions().get::<ValidationError>(),
            Some(&ValidationError::UnknownAccount)
        );
        assert_eq!(calls, 0);
    }
}

#[tokio::test]
async fn a_get_webhook_is_keyed_by_the_account_sid_in_its_query() {
    let url = format!("{URL}?AccountSid={}&CallSid=CA1", SUB.0);
    let request = Request::get(format!("/sms?AccountSid={}&CallSid=CA1", SUB.0))
        .header("x-twilio-signature", compute_signature(SUB.1, &url, &[]))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (response, calls, _, _) = call(layer(accounts()), request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn report_only_passes_an_unknown_account_marked_unverified() {
    let params = [("AccountSid", "AC99999999999999999999999999999999")];
    let (response, calls, verified, unverified) = call(
        layer(accounts()).report_only(),
        signed_request(SUB.1, &params),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls, 1);
    assert!(verified.is_none());
    assert_eq!(
        unverified,
        Some(Unverified(ValidationError::UnknownAccount))
    );
}

/// A source whose store is down.
struct Failing;

impl KeySource for Failing {
    fn validator(&self, _: KeyRequest) -> KeyLookup {
        Box::pin(async { Err("database unreachable".into()) })
    }
}

/// A source that never answers.
struct Hanging;

impl KeySource for Hanging {
    fn validator(&self, _: KeyRequest) -> KeyLookup {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn a_failing_lookup_is_503_and_never_lets_a_request_through() {
    let params = [("AccountSid", SUB.0), ("Body", "hi")];
    for report_only in [false, true] {
        let layer = if report_only {
            layer(Failing).report_only()
        } else {
            layer(Failing)
        };
        let (response, calls, _, _) = call(layer, signed_request(SUB.1, &params)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.extensions().get::<Rejection>(),
            Some(&Rejection::KeyLookupFailed)
        );
        assert_eq!(calls, 0, "report_only = {report_only}");
    }
}

#[tokio::test]
async fn a_lookup_that_times_out_never_lets_a_request_through() {
    let calls = Arc::new(AtomicUsize::new(0));
    let inner_calls = Arc::clone(&calls);
    let service = ServiceBuilder::new()
        .timeout(Duration::from_millis(50))
        .layer(layer(Hanging))
        .service_fn(move |_: Request<Full<Bytes>>| {
            inner_calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        });
    let params = [("AccountSid", SUB.0)];
    let outcome = service.oneshot(signed_request(SUB.1, &params)).await;
    assert!(outcome.is_err(), "the timeout answers, not the handler");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_custom_source_can_key_json_webhooks_by_route() {
    /// `/tenants/{name}/events`: the tenant's token by name.
    struct ByRoute;
    impl KeySource for ByRoute {
        fn validator(&self, request: KeyRequest) -> KeyLookup {
            Box::pin(async move {
                let tenant = request.uri.path().split('/').nth(2).unwrap_or_default();
                Ok(match tenant {
                    "acme" => Some(Arc::new(Validator::new(SUB.1))),
                    _ => None,
                })
            })
        }
    }
    let json = br#"{"event":"x"}"#;
    let hash = sha256_hex(json);
    let path = format!("/tenants/acme/events?bodySHA256={hash}");
    let url = format!("https://hooks.example.com{path}");
    let request = |path: &str, token: &str| {
        Request::post(path)
            .header("content-type", "application/json")
            .header("x-twilio-signature", compute_signature(token, &url, &[]))
            .body(Full::new(Bytes::from_static(json)))
            .unwrap()
    };
    let (response, calls, _, _) = call(layer(ByRoute), request(&path, SUB.1)).await;
    assert_eq!((response.status(), calls), (StatusCode::OK, 1));
    let (response, calls, _, _) = call(layer(ByRoute), request(&path, PARENT.1)).await;
    assert_eq!((response.status(), calls), (StatusCode::FORBIDDEN, 0));
    let other = path.replace("acme", "globex");
    let (response, _, _, _) = call(layer(ByRoute), request(&other, SUB.1)).await;
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::UnknownAccount)
    );
}

// --- Shared keys (HMAC-SHA256) --------------------------------------------------------------

fn shared_key_cases() -> Vec<Case> {
    let shared: Vec<Case> = conformance()
        .into_iter()
        .filter(|c| c.tagged("sharedkey"))
        .collect();
    assert_eq!(shared.len(), 2);
    shared
}

fn key_id(settings: &str) -> &str {
    settings
        .split(',')
        .find_map(|entry| entry.strip_prefix("key="))
        .unwrap()
}

fn shared_key_request(case: &Case, settings: &str) -> Request<Full<Bytes>> {
    let path_and_query = case.url.strip_prefix("https://api.example.com").unwrap();
    Request::post(path_and_query)
        .header("content-type", FORM.unwrap())
        .header(
            "x-twilio-signature",
            case.header_signature.as_deref().unwrap(),
        )
        .header("x-twilio-webhooks-signature-settings", settings)
        .body(Full::new(Bytes::from(case.form_body.clone().unwrap())))
        .unwrap()
}

#[tokio::test]
async fn shared_key_vectors_pass_through_the_layer() {
    for case in shared_key_cases() {
        let settings = case.signature_settings_header.clone().unwrap();
        let validator = Validator::new(NEW)
            .add_shared_key("some-older-key", "older secret")
            .add_shared_key(key_id(&settings), &case.auth_token);
        let layer = TwilioWebhookLayer::new(validator)
            .unwrap()
            .public_url("https://api.example.com")
            .unwrap();
        let (response, calls, verified, _) =
            call(layer, shared_key_request(&case, &settings)).await;
        assert_eq!(
            response.status() == StatusCode::OK,
            case.expected_valid,
            "{}",
            case.name
        );
        assert_eq!(calls, 1, "{}", case.name);
        match verified.unwrap().key {
            KeyUsed::SharedKey { id } => assert_eq!(&*id, key_id(&settings)),
            other => panic!("{}: {other:?}", case.name),
        }
    }
}

#[tokio::test]
async fn shared_key_requests_with_unknown_algorithm_or_key_are_refused() {
    let case = shared_key_cases().remove(0);
    let settings = case.signature_settings_header.clone().unwrap();
    let validator = Validator::new(NEW).add_shared_key(key_id(&settings), &case.auth_token);
    let layer = TwilioWebhookLayer::new(validator)
        .unwrap()
        .public_url("https://api.example.com")
        .unwrap();
    for (settings, error) in [
        (
            settings.replace("HMAC_SHA256", "HMAC_SHA512"),
            ValidationError::UnknownAlgorithm,
        ),
        (
            settings.replace(key_id(&settings), "webhooks_sharedkey_unknown"),
            ValidationError::UnknownSharedKey,
        ),
        (
            "key=,algorithm=HMAC_SHA256".to_string(),
            ValidationError::MalformedSignatureSettings,
        ),
    ] {
        let (response, calls, _, _) =
            call(layer.clone(), shared_key_request(&case, &settings)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{settings}");
        assert_eq!(response.extensions().get::<ValidationError>(), Some(&error));
        assert_eq!(calls, 0);
    }
    // Without the settings header, the SHA-256 signature is not an auth-token signature.
    let mut request = shared_key_request(&case, &settings);
    request
        .headers_mut()
        .remove("x-twilio-webhooks-signature-settings");
    let (response, calls, _, _) = call(layer, request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(calls, 0);
}

#[test]
fn shared_keys_rotate_by_id() {
    let case = shared_key_cases().remove(0);
    let settings = case.signature_settings_header.clone().unwrap();
    let form = case.form_body.clone().unwrap();
    let webhook = twilio_webhook::Webhook::new(&case.url)
        .content_type(FORM)
        .body(form.as_bytes())
        .signature(case.header_signature.as_deref())
        .signature_settings(Some(&settings));
    let both = Validator::new(NEW)
        .add_shared_key("next-key", "next secret")
        .add_shared_key(key_id(&settings), &case.auth_token);
    assert!(both.verify(&webhook).is_ok());
    let removed = Validator::new(NEW).add_shared_key("next-key", "next secret");
    assert_eq!(
        removed.verify(&webhook),
        Err(ValidationError::UnknownSharedKey)
    );
}

#[tokio::test]
async fn an_async_closure_is_a_key_source_and_may_take_its_time() {
    let source = |request: KeyRequest| async move {
        // A database round trip.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let token = match request.account_sid.as_deref() {
            Some(sid) if sid == SUB.0 => Some(SUB.1),
            _ => None,
        };
        Ok::<_, twilio_webhook::middleware::BoxError>(
            token.map(|token| Arc::new(Validator::new(token))),
        )
    };
    let params = [("AccountSid", SUB.0), ("Body", "hi")];
    let (response, calls, verified, _) = call(layer(source), signed_request(SUB.1, &params)).await;
    assert_eq!((response.status(), calls), (StatusCode::OK, 1));
    assert_eq!(verified.unwrap().key, KeyUsed::AuthToken { index: 0 });
    let (response, calls, _, _) = call(layer(source), signed_request(PARENT.1, &params)).await;
    assert_eq!((response.status(), calls), (StatusCode::FORBIDDEN, 0));
}

// --- Cross-account confusion ----------------------------------------------------------------

#[tokio::test]
async fn two_distinct_account_sids_are_refused_wherever_they_are() {
    // A tenant that knows its own token signs a request that also names another account: a
    // handler reading the last AccountSid (as serde maps do) would act for the other account.
    let repeated = [
        ("AccountSid", SUB.0),
        ("AccountSid", SIBLING.0),
        ("Body", "x"),
    ];
    let (response, calls, _, _) = call(layer(accounts()), signed_request(SUB.1, &repeated)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::AmbiguousAccount)
    );
    assert_eq!(calls, 0);

    // The body names one account, the query another.
    let url = format!("{URL}?AccountSid={}", SIBLING.0);
    let params = [("AccountSid", SUB.0), ("Body", "x")];
    let request = Request::post(format!("/sms?AccountSid={}", SIBLING.0))
        .header("content-type", FORM.unwrap())
        .header(
            "x-twilio-signature",
            compute_signature(SUB.1, &url, &params),
        )
        .body(Full::new(Bytes::from(form_body(&params))))
        .unwrap();
    let (response, calls, _, _) = call(layer(accounts()), request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(calls, 0);

    // Spelled with an escape, it is the same name.
    let body = format!("AccountSid={}&Account%53id={}&Body=x", SUB.0, SIBLING.0);
    let signed = [
        ("AccountSid", SUB.0),
        ("AccountSid", SIBLING.0),
        ("Body", "x"),
    ];
    let request = Request::post("/sms")
        .header("content-type", FORM.unwrap())
        .header("x-twilio-signature", compute_signature(SUB.1, URL, &signed))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let (response, calls, _, _) = call(layer(accounts()), request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(calls, 0);
}

#[tokio::test]
async fn the_same_account_sid_repeated_passes_and_verified_names_the_account() {
    let url = format!("{URL}?AccountSid={}", SUB.0);
    let params = [("AccountSid", SUB.0), ("AccountSid", SUB.0), ("Body", "x")];
    let request = Request::post(format!("/sms?AccountSid={}", SUB.0))
        .header("content-type", FORM.unwrap())
        .header(
            "x-twilio-signature",
            compute_signature(SUB.1, &url, &params),
        )
        .body(Full::new(Bytes::from(form_body(&params))))
        .unwrap();
    let (response, calls, verified, _) = call(layer(accounts()), request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls, 1);
    assert_eq!(verified.unwrap().account_sid.as_deref(), Some(SUB.0));
}

#[tokio::test]
async fn an_unknown_account_is_checked_with_a_stand_in_key_and_still_refused() {
    // Refusing an unknown account computes a MAC like a known one (the time of a 403 must
    // not say which accounts are served); signed with the stand-in's own token, still 403.
    let params = [("AccountSid", "AC99999999999999999999999999999999")];
    let stand_in = "twilio-webhook: stands in for an unknown account";
    let (response, calls, _, _) = call(layer(accounts()), signed_request(stand_in, &params)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::UnknownAccount)
    );
    assert_eq!(calls, 0);
}

// --- Which account verified -----------------------------------------------------------------

/// `/tenants/{name}/...`: each tenant's validator by route, told its account or not.
struct ByRoute {
    tag_accounts: bool,
}

impl KeySource for ByRoute {
    fn validator(&self, request: KeyRequest) -> KeyLookup {
        let tag = self.tag_accounts;
        Box::pin(async move {
            let tenant = request.uri.path().split('/').nth(2).unwrap_or_default();
            let (sid, token) = match tenant {
                "a" => SUB,
                "v" => SIBLING,
                _ => return Ok(None),
            };
            let validator = Validator::new(token);
            Ok(Some(Arc::new(if tag {
                validator.account_sid(sid)
            } else {
                validator
            })))
        })
    }
}

fn routed(path: &str, token: &str, params: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let url = format!("https://hooks.example.com{path}");
    Request::post(path)
        .header("content-type", FORM.unwrap())
        .header("x-twilio-signature", compute_signature(token, &url, params))
        .body(Full::new(Bytes::from(form_body(params))))
        .unwrap()
}

#[tokio::test]
async fn a_tenant_signing_another_accounts_sid_with_its_own_token_is_refused() {
    // Tenant A, on its own route, signs AccountSid=<the victim's> with its own token.
    let params = [("AccountSid", SIBLING.0), ("Body", "pay the victim's bill")];
    let request = routed("/tenants/a/sms", SUB.1, &params);
    let (response, calls, _, _) = call(layer(ByRoute { tag_accounts: true }), request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::AccountMismatch)
    );
    assert_eq!(calls, 0);

    // Its own account: passes, and the handler is told A's account.
    let own = [("AccountSid", SUB.0), ("Body", "hi")];
    let (response, _, verified, _) = call(
        layer(ByRoute { tag_accounts: true }),
        routed("/tenants/a/sms", SUB.1, &own),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(verified.unwrap().account_sid.as_deref(), Some(SUB.0));
}

#[tokio::test]
async fn a_key_source_that_does_not_say_its_account_reports_none_never_the_requests_claim() {
    let params = [("AccountSid", SIBLING.0), ("Body", "hi")];
    let (response, calls, verified, _) = call(
        layer(ByRoute {
            tag_accounts: false,
        }),
        routed("/tenants/a/sms", SUB.1, &params),
    )
    .await;
    assert_eq!((response.status(), calls), (StatusCode::OK, 1));
    assert_eq!(
        verified.unwrap().account_sid,
        None,
        "the request's unverified AccountSid is not the account"
    );
}

#[tokio::test]
async fn account_map_entries_know_their_account() {
    let params = [("AccountSid", SUB.0), ("Body", "hi")];
    let (response, _, verified, _) = call(layer(accounts()), signed_request(SUB.1, &params)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(verified.unwrap().account_sid.as_deref(), Some(SUB.0));
    // A query AccountSid that names another account than the body's is refused before any
    // key is looked up; one validator told its account refuses a query naming another.
    let static_layer = TwilioWebhookLayer::new(Validator::new(SUB.1).account_sid(SUB.0))
        .unwrap()
        .public_url("https://hooks.example.com")
        .unwrap();
    let url = format!("{URL}?AccountSid={}", SIBLING.0);
    let params = [("Body", "hi")];
    let request = Request::post(format!("/sms?AccountSid={}", SIBLING.0))
        .header("content-type", FORM.unwrap())
        .header(
            "x-twilio-signature",
            compute_signature(SUB.1, &url, &params),
        )
        .body(Full::new(Bytes::from(form_body(&params))))
        .unwrap();
    let (response, calls, _, _) = call(static_layer, request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.extensions().get::<ValidationError>(),
        Some(&ValidationError::AccountMismatch)
    );
    assert_eq!(calls, 0);
}

#[tokio::test]
async fn account_sid_is_never_read_from_inside_a_json_body() {
    // A genuine JSON webhook whose text holds `&AccountSid=...&`: not a parameter.
    let json = br#"{"Body":"x&AccountSid=AC00000000000000000000000000000003&y","n":1}"#;
    let hash = sha256_hex(json);
    let path = format!("/tenants/a/events?bodySHA256={hash}");
    let url = format!("https://hooks.example.com{path}");
    let request = || {
        Request::post(path.as_str())
            .header("content-type", "application/json")
            .header("x-twilio-signature", compute_signature(SUB.1, &url, &[]))
            .body(Full::new(Bytes::from_static(json)))
            .unwrap()
    };
    // The key source is told no AccountSid...
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = {
        let seen = Arc::clone(&seen);
        move |request: KeyRequest| {
            seen.lock().unwrap().push(request.account_sid.clone());
            async move { Ok(Some(Arc::new(Validator::new(SUB.1).account_sid(SUB.0)))) }
        }
    };
    let (response, calls, verified, _) = call(layer(recorder), request()).await;
    assert_eq!((response.status(), calls), (StatusCode::OK, 1));
    assert_eq!(*seen.lock().unwrap(), [None]);
    // ...and a validator told its account does not see a mismatch in the JSON text.
    assert_eq!(verified.unwrap().account_sid.as_deref(), Some(SUB.0));
    // Nor an ambiguity: a second AccountSid in the text and one in the query would be two.
    let (response, _, _, _) = call(layer(ByRoute { tag_accounts: true }), request()).await;
    assert_eq!(response.status(), StatusCode::OK);
}
