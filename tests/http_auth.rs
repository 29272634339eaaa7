//! HTTP Basic and Digest (SPEC §7), through the framework-free `HttpAuth`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use twilio_webhook::http_auth::{
    Algorithm, AuthError, Credentials, HttpAuth, HttpAuthError, basic_authorization,
    digest_authorization,
};

const SECRET: &[u8] = b"a nonce secret every replica shares, 32+ bytes";

fn pair(user: &str, password: &str) -> Credentials {
    Credentials::new(user, password).unwrap()
}

fn digest(pairs: &[(&str, &str)]) -> HttpAuth {
    HttpAuth::digest(pairs.iter().map(|(u, p)| pair(u, p)))
        .unwrap()
        .realm("hooks")
        .unwrap()
        .nonce_secret(SECRET)
        .unwrap()
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_900_000_000)
}

/// Twilio's flow: a request without credentials, a challenge, then the answer to it.
fn answer(auth: &HttpAuth, who: &Credentials, method: &str, uri: &str, which: usize) -> String {
    let refused = auth.check_at(None, method, uri, now()).unwrap_err();
    assert_eq!(refused.reason(), AuthError::Missing);
    digest_authorization(&refused.challenges()[which], who, method, uri, "0a4f113b").unwrap()
}

#[test]
fn basic_flow_challenge_then_credentials() {
    let twilio = pair("twilio", "s3cret pass:with colon");
    let auth = HttpAuth::basic([twilio.clone()]).unwrap();
    let refused = auth.check(None, "POST", "/sms").unwrap_err();
    assert_eq!(refused.reason(), AuthError::Missing);
    assert_eq!(
        refused.challenges(),
        ["Basic realm=\"twilio-webhook\", charset=\"UTF-8\""]
    );
    let header = basic_authorization(&twilio);
    assert_eq!(
        auth.check(Some(&header), "POST", "/sms").unwrap().user(),
        "twilio"
    );
}

#[test]
fn basic_refuses_wrong_pairs_and_malformed_headers() {
    let auth = HttpAuth::basic([pair("twilio", "right")]).unwrap();
    let reason = |header: &str| {
        auth.check(Some(header), "POST", "/sms")
            .unwrap_err()
            .reason()
    };
    assert_eq!(
        reason(&basic_authorization(&pair("twilio", "wrong"))),
        AuthError::WrongCredentials
    );
    assert_eq!(
        reason(&basic_authorization(&pair("other", "right"))),
        AuthError::WrongCredentials
    );
    assert_eq!(
        reason(&basic_authorization(&pair("twilio", "righ"))),
        AuthError::WrongCredentials
    );
    for malformed in [
        "Basic",
        "Basic ",
        "Basic !!!notbase64",
        "Basic dHdpbGlv",                          // "twilio": no ':'
        &format!("Basic {}", "QUFB".repeat(2000)), // too long
        "Basic dHdpbGlvOnJpZ2h0é",
    ] {
        assert_eq!(reason(malformed), AuthError::Malformed, "{malformed}");
    }
    assert_eq!(reason("Bearer abc"), AuthError::WrongScheme);
    assert_eq!(reason(""), AuthError::WrongScheme);
    // The scheme name is case-insensitive.
    let header = basic_authorization(&pair("twilio", "right")).replace("Basic", "bAsIc");
    assert!(auth.check(Some(&header), "POST", "/sms").is_ok());
}

#[test]
fn digest_flow_for_each_algorithm() {
    let twilio = pair("twilio", "digest pass");
    let auth = digest(&[("twilio", "digest pass")]);
    let refused = auth.check_at(None, "POST", "/sms?x=1", now()).unwrap_err();
    let challenges = refused.challenges();
    assert_eq!(challenges.len(), 2);
    assert!(
        challenges[0]
            .starts_with("Digest realm=\"hooks\", qop=\"auth\", algorithm=SHA-256, nonce=\"")
    );
    assert!(challenges[1].contains("algorithm=MD5"));
    for which in 0..2 {
        let header = answer(&auth, &twilio, "POST", "/sms?x=1", which);
        let ok = auth
            .check_at(Some(&header), "POST", "/sms?x=1", now())
            .unwrap();
        assert_eq!(ok.user(), "twilio");
    }
}

#[test]
fn digest_refuses_each_wrong_field_for_its_reason() {
    let twilio = pair("twilio", "digest pass");
    let auth = digest(&[("twilio", "digest pass")]);
    let good = answer(&auth, &twilio, "POST", "/sms", 0);
    let check = |header: &str, method, uri| {
        auth.check_at(Some(header), method, uri, now())
            .unwrap_err()
            .reason()
    };
    assert!(auth.check_at(Some(&good), "POST", "/sms", now()).is_ok());
    // Wrong password, wrong user.
    let wrong = answer(&auth, &pair("twilio", "nope"), "POST", "/sms", 0);
    assert_eq!(check(&wrong, "POST", "/sms"), AuthError::WrongCredentials);
    let other = answer(&auth, &pair("mallory", "digest pass"), "POST", "/sms", 0);
    assert_eq!(check(&other, "POST", "/sms"), AuthError::WrongCredentials);
    // An answer for another path, or replayed on another path or method.
    assert_eq!(check(&good, "POST", "/voice"), AuthError::WrongUri);
    assert_eq!(check(&good, "GET", "/sms"), AuthError::WrongCredentials);
    // Realm, algorithm, qop.
    assert_eq!(
        check(
            &good.replace("realm=\"hooks\"", "realm=\"other\""),
            "POST",
            "/sms"
        ),
        AuthError::WrongRealm
    );
    assert_eq!(
        check(
            &good.replace("algorithm=SHA-256", "algorithm=SHA-512-256"),
            "POST",
            "/sms"
        ),
        AuthError::UnsupportedAlgorithm
    );
    assert_eq!(
        check(
            &good.replace("algorithm=SHA-256", "algorithm=MD5-sess"),
            "POST",
            "/sms"
        ),
        AuthError::UnsupportedAlgorithm
    );
    assert_eq!(
        check(&good.replace("qop=auth", "qop=auth-int"), "POST", "/sms"),
        AuthError::UnsupportedQop
    );
    assert_eq!(
        check(&good.replace(", qop=auth", ""), "POST", "/sms"),
        AuthError::UnsupportedQop
    );
    // Missing nc or cnonce, a malformed nc.
    assert_eq!(
        check(&good.replace(", nc=00000001", ""), "POST", "/sms"),
        AuthError::Malformed
    );
    assert_eq!(
        check(&good.replace(", cnonce=\"0a4f113b\"", ""), "POST", "/sms"),
        AuthError::Malformed
    );
    assert_eq!(
        check(&good.replace("nc=00000001", "nc=1"), "POST", "/sms"),
        AuthError::Malformed
    );
    // Each alone: eight characters but not hex; an empty cnonce.
    assert_eq!(
        check(&good.replace("nc=00000001", "nc=0000000g"), "POST", "/sms"),
        AuthError::Malformed
    );
    assert_eq!(
        check(
            &good.replace("cnonce=\"0a4f113b\"", "cnonce=\"\""),
            "POST",
            "/sms"
        ),
        AuthError::Malformed
    );
    // `userhash`: a hashed user name cannot be matched (refused as malformed); `false` is
    // the plain user name, accepted.
    assert_eq!(
        check(&format!("{good}, userhash=true"), "POST", "/sms"),
        AuthError::Malformed
    );
    assert!(
        auth.check_at(
            Some(&format!("{good}, userhash=false")),
            "POST",
            "/sms",
            now()
        )
        .is_ok()
    );
    // A tampered nonce.
    let nonce_at = good.find("nonce=\"").unwrap() + 7;
    let mut tampered = good.clone();
    let flipped = if &good[nonce_at + 20..nonce_at + 21] == "a" {
        "b"
    } else {
        "a"
    };
    tampered.replace_range(nonce_at + 20..nonce_at + 21, flipped);
    assert_eq!(check(&tampered, "POST", "/sms"), AuthError::InvalidNonce);
    // An MD5 answer when only SHA-256 is offered.
    let sha_only = digest(&[("twilio", "digest pass")])
        .algorithms([Algorithm::Sha256])
        .unwrap();
    let md5_answer = answer(&auth, &twilio, "POST", "/sms", 1);
    assert_eq!(
        sha_only
            .check_at(Some(&md5_answer), "POST", "/sms", now())
            .unwrap_err()
            .reason(),
        AuthError::UnsupportedAlgorithm
    );
}

#[test]
fn a_nonce_from_the_future_is_invalid_and_an_old_one_is_stale() {
    let twilio = pair("twilio", "digest pass");
    let auth = digest(&[("twilio", "digest pass")]).nonce_lifetime(Duration::from_secs(5));
    let header = answer(&auth, &twilio, "POST", "/sms", 0);
    // Checked an hour earlier: the nonce was issued in the future.
    let earlier = now() - Duration::from_secs(3600);
    assert_eq!(
        auth.check_at(Some(&header), "POST", "/sms", earlier)
            .unwrap_err()
            .reason(),
        AuthError::InvalidNonce
    );
    // Checked after the lifetime: stale, and the challenge says so.
    let later = now() + Duration::from_secs(6);
    let stale = auth
        .check_at(Some(&header), "POST", "/sms", later)
        .unwrap_err();
    assert_eq!(stale.reason(), AuthError::StaleNonce);
    assert!(
        stale
            .challenges()
            .iter()
            .all(|c| c.ends_with(", stale=true"))
    );
    // A wrong password with an old nonce is not stale: it is wrong.
    let wrong = answer(&auth, &pair("twilio", "nope"), "POST", "/sms", 0);
    assert_eq!(
        auth.check_at(Some(&wrong), "POST", "/sms", later)
            .unwrap_err()
            .reason(),
        AuthError::WrongCredentials
    );
}

#[test]
fn a_nonce_issued_by_one_instance_verifies_on_another_with_the_same_secret() {
    let twilio = pair("twilio", "digest pass");
    let first = digest(&[("twilio", "digest pass")]);
    let second = digest(&[("twilio", "digest pass")]);
    let header = answer(&first, &twilio, "POST", "/sms", 0);
    assert!(
        second
            .check_at(Some(&header), "POST", "/sms", now())
            .is_ok()
    );
    // Without the shared secret (each its own random one), it does not.
    let lone = HttpAuth::digest([twilio.clone()])
        .unwrap()
        .realm("hooks")
        .unwrap();
    assert_eq!(
        lone.check_at(Some(&header), "POST", "/sms", now())
            .unwrap_err()
            .reason(),
        AuthError::InvalidNonce
    );
}

#[test]
fn rotation_any_pair_passes_and_the_user_is_reported() {
    let (old, new) = (pair("twilio", "old pass"), pair("twilio2", "new pass"));
    let overlap = digest(&[("twilio", "old pass"), ("twilio2", "new pass")]);
    for who in [&old, &new] {
        let header = answer(&overlap, who, "POST", "/sms", 0);
        assert_eq!(
            overlap
                .check_at(Some(&header), "POST", "/sms", now())
                .unwrap()
                .user(),
            who.user()
        );
    }
    let after = digest(&[("twilio2", "new pass")]);
    let header = answer(&after, &old, "POST", "/sms", 0);
    assert_eq!(
        after
            .check_at(Some(&header), "POST", "/sms", now())
            .unwrap_err()
            .reason(),
        AuthError::WrongCredentials
    );
    // Basic too; the same user with two passwords is rotation as well.
    let basic = HttpAuth::basic([pair("twilio", "a"), pair("twilio", "b")]).unwrap();
    for password in ["a", "b"] {
        let header = basic_authorization(&pair("twilio", password));
        assert!(basic.check(Some(&header), "POST", "/sms").is_ok());
    }
    // Two users: each is reported as itself, whichever position it has.
    let (first, second) = (pair("first", "one"), pair("second-user", "two"));
    let two_users = HttpAuth::basic([first.clone(), second.clone()]).unwrap();
    for who in [&first, &second] {
        let header = basic_authorization(who);
        let authenticated = two_users.check(Some(&header), "POST", "/sms").unwrap();
        assert_eq!(authenticated.user(), who.user());
    }
    // Digest with user names of other lengths than the one presented: still found.
    let digest_users = digest(&[("a", "one"), ("a-much-longer-user-name", "two")]);
    for (who, user) in [
        (&pair("a", "one"), "a"),
        (
            &pair("a-much-longer-user-name", "two"),
            "a-much-longer-user-name",
        ),
    ] {
        let header = answer(&digest_users, who, "POST", "/sms", 0);
        let authenticated = digest_users
            .check_at(Some(&header), "POST", "/sms", now())
            .unwrap();
        assert_eq!(authenticated.user(), user);
    }
    // A user name that is a prefix of a configured one is not that user.
    let header = answer(&digest_users, &pair("a-much", "two"), "POST", "/sms", 0);
    assert_eq!(
        digest_users
            .check_at(Some(&header), "POST", "/sms", now())
            .unwrap_err()
            .reason(),
        AuthError::WrongCredentials
    );
}

#[test]
fn bad_configuration_is_refused_and_debug_shows_no_secret() {
    use twilio_webhook::http_auth::HttpAuthError as E;
    assert_eq!(Credentials::new("", "p").err(), Some(E::InvalidUser));
    assert_eq!(Credentials::new("a:b", "p").err(), Some(E::InvalidUser));
    assert_eq!(Credentials::new("a", "").err(), Some(E::InvalidPassword));
    assert_eq!(Credentials::new("a", "p\n").err(), Some(E::InvalidPassword));
    assert_eq!(HttpAuth::basic([]).err(), Some(E::NoCredentials));
    assert_eq!(
        HttpAuth::basic([pair("a", "b")])
            .unwrap()
            .realm("a\"b")
            .err(),
        Some(E::InvalidRealm)
    );
    assert_eq!(
        HttpAuth::digest([pair("a", "b")])
            .unwrap()
            .nonce_secret(b"short")
            .err(),
        Some(E::WeakNonceSecret)
    );
    assert_eq!(
        HttpAuth::digest([pair("a", "b")])
            .unwrap()
            .algorithms([])
            .err(),
        Some(E::NoAlgorithm)
    );
    assert_eq!(Credentials::parse("user:pa:ss").unwrap().user(), "user");
    let auth = digest(&[("twilio", "hunter2")]);
    let shown = format!("{auth:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("nonce secret every"),
        "{shown}"
    );
    assert!(shown.contains("twilio"));
}

#[test]
fn the_client_answers_md5_and_sha_256_in_any_case_and_refuses_other_algorithms() {
    let twilio = pair("twilio", "digest pass");
    let auth = digest(&[("twilio", "digest pass")]);
    let challenge = auth
        .check_at(None, "POST", "/sms", now())
        .unwrap_err()
        .challenges()[1]
        .clone();
    assert!(challenge.contains("algorithm=MD5"), "{challenge}");
    for (spelling, accepted) in [
        ("algorithm=md5", true),
        ("algorithm=MD5", true),
        ("algorithm=sha-256", true),
        ("algorithm=SHA-512", false),
        ("algorithm=MD5-sess", false),
    ] {
        let offered = challenge.replace("algorithm=MD5", spelling);
        let answer = digest_authorization(&offered, &twilio, "POST", "/sms", "0a4f113b");
        assert_eq!(answer.is_ok(), accepted, "{spelling}");
        if !accepted {
            assert_eq!(answer.unwrap_err(), AuthError::UnsupportedAlgorithm);
        }
    }
}

#[test]
fn every_error_has_a_message_of_its_own() {
    let reasons = [
        AuthError::Missing,
        AuthError::Repeated,
        AuthError::Malformed,
        AuthError::WrongScheme,
        AuthError::WrongCredentials,
        AuthError::WrongRealm,
        AuthError::UnsupportedAlgorithm,
        AuthError::UnsupportedQop,
        AuthError::WrongUri,
        AuthError::InvalidNonce,
        AuthError::StaleNonce,
    ]
    .map(|reason| reason.to_string());
    let configuration = [
        HttpAuthError::NoCredentials,
        HttpAuthError::InvalidUser,
        HttpAuthError::InvalidPassword,
        HttpAuthError::InvalidRealm,
        HttpAuthError::NoAlgorithm,
        HttpAuthError::WeakNonceSecret,
    ]
    .map(|error| error.to_string());
    for messages in [&reasons[..], &configuration[..]] {
        let distinct: std::collections::HashSet<&String> = messages.iter().collect();
        assert_eq!(distinct.len(), messages.len(), "{messages:?}");
        assert!(messages.iter().all(|m| m.len() > 10), "{messages:?}");
    }
    assert!(reasons[1].contains("several"));
    assert!(configuration[5].contains("secret"));
}

#[test]
fn malformed_digest_headers_are_refused() {
    let auth = digest(&[("twilio", "digest pass")]);
    for header in [
        "Digest",
        "Digest ",
        "Digest username=\"twilio\"",
        "Digest username=\"twilio, realm=\"hooks\"",
        "Digest username=\"a\", username=\"b\"",
        &format!("Digest username=\"{}\"", "x".repeat(10_000)),
        "Digest username=\"twïlio\"",
        "Digest realm=hooks,,nonce=1",
    ] {
        let refused = auth
            .check_at(Some(header), "POST", "/sms", now())
            .unwrap_err();
        assert_ne!(refused.reason(), AuthError::Missing, "{header}");
        assert!(!refused.challenges().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_authorization_values_never_pass_and_never_panic(
        header in prop_oneof![
            any::<String>(),
            "(Basic|Digest|basic|DIGEST) [ -~]{0,300}",
            "Digest (username|realm|nonce|uri|response|qop|nc|cnonce|algorithm)=(\"[ -~]{0,40}\"|[!-~]{0,40})(, ?[a-z]{1,8}=(\"[ -~]{0,40}\"|[!-~]{0,20})){0,10}",
        ],
    ) {
        let basic = HttpAuth::basic([pair("twilio", "right")]).unwrap();
        let digest = digest(&[("twilio", "right")]);
        prop_assert!(basic.check(Some(&header), "POST", "/sms").is_err());
        let refused = digest.check_at(Some(&header), "POST", "/sms", now());
        prop_assert!(refused.is_err());
        prop_assert!(!refused.unwrap_err().challenges().is_empty());
    }
}

#[test]
fn the_scheme_is_named_as_its_challenge_names_it() {
    let basic = HttpAuth::basic([pair("twilio", "s3cret")]).unwrap();
    assert_eq!(basic.scheme(), "Basic");
    assert_eq!(digest(&[("twilio", "s3cret")]).scheme(), "Digest");
}

#[test]
fn a_realm_with_a_quote_backslash_or_control_character_is_refused() {
    let basic = || HttpAuth::basic([pair("twilio", "s3cret")]).unwrap();
    for bad in ["", "a\"b", "a\\b", "a\nb", "\u{7}"] {
        assert_eq!(
            basic().realm(bad).err(),
            Some(HttpAuthError::InvalidRealm),
            "{bad:?}"
        );
    }
    let named = basic().realm("Twilio webhooks").unwrap();
    let challenge = named.check(None, "POST", "/sms").unwrap_err();
    assert!(challenge.challenges()[0].contains("realm=\"Twilio webhooks\""));
}

#[test]
fn an_authorization_over_4_kib_or_not_ascii_is_malformed_before_it_is_parsed() {
    let basic = HttpAuth::basic([pair("twilio", "s3cret")]).unwrap();
    let good = basic_authorization(&pair("twilio", "s3cret"));
    // Exactly at the limit, padded with the spaces a token may carry: still read.
    let at_limit = format!("{good}{}", " ".repeat(4096 - good.len()));
    assert_eq!(at_limit.len(), 4096);
    assert!(basic.check(Some(&at_limit), "POST", "/sms").is_ok());
    let over = format!("{at_limit} ");
    assert_eq!(
        basic
            .check(Some(&over), "POST", "/sms")
            .unwrap_err()
            .reason(),
        AuthError::Malformed
    );
    for non_ascii in [format!("{good}é"), "Basic é".to_owned()] {
        assert_eq!(
            basic
                .check(Some(&non_ascii), "POST", "/sms")
                .unwrap_err()
                .reason(),
            AuthError::Malformed,
            "{non_ascii:?}"
        );
    }
}

#[test]
fn each_scheme_refuses_the_other_as_the_wrong_scheme() {
    let basic = HttpAuth::basic([pair("twilio", "s3cret")]).unwrap();
    let digest = digest(&[("twilio", "s3cret")]);
    let basic_header = basic_authorization(&pair("twilio", "s3cret"));
    assert_eq!(
        digest
            .check(Some(&basic_header), "POST", "/sms")
            .unwrap_err()
            .reason(),
        AuthError::WrongScheme
    );
    let digest_header = answer(&digest, &pair("twilio", "s3cret"), "POST", "/sms", 0);
    assert_eq!(
        basic
            .check(Some(&digest_header), "POST", "/sms")
            .unwrap_err()
            .reason(),
        AuthError::WrongScheme
    );
}

#[test]
fn users_lists_the_configured_user_names() {
    let auth = HttpAuth::basic([pair("twilio", "a"), pair("backup", "b")]).unwrap();
    assert_eq!(auth.users().collect::<Vec<_>>(), ["twilio", "backup"]);
}
