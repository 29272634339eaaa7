//! HTTP authentication on arbitrary input: never panics, never passes without the right
//! credentials, and always answers a refusal with at least one challenge.
//!
//! Arbitrary header text alone stalls at the scheme (a fuzzer does not find a valid Digest
//! answer), so most inputs are built: a Digest answer computed the way a client computes it,
//! for the right or a wrong user and password, an age of its nonce, and a few byte edits; or a
//! Basic header of a chosen pair. Then the success, `stale` and each refusal path all run.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twilio_webhook::http_auth::{
    AuthError, Credentials, HttpAuth, basic_authorization, digest_authorization,
};

const LIFETIME: Duration = Duration::from_secs(300);

static RIGHT: LazyLock<Credentials> = LazyLock::new(|| Credentials::new("twilio", "right").unwrap());
static BASIC: LazyLock<HttpAuth> = LazyLock::new(|| HttpAuth::basic([RIGHT.clone()]).unwrap());
static DIGEST: LazyLock<HttpAuth> = LazyLock::new(|| {
    HttpAuth::digest([RIGHT.clone()])
        .unwrap()
        .nonce_secret([7u8; 32])
        .unwrap()
        .nonce_lifetime(LIFETIME)
});

#[derive(Arbitrary, Debug)]
enum Input {
    /// Any `Authorization` text, against both schemes.
    Raw(String),
    /// A Basic header for a chosen pair.
    Basic { user: String, password: String },
    /// A Digest answer to one of the server's own challenges.
    Digest {
        /// Which offered challenge (SHA-256 or MD5) is answered.
        challenge: u8,
        right_user: bool,
        right_password: bool,
        /// How old the nonce is when the answer arrives, in seconds.
        age: u16,
        /// Answered for another request-target than the one checked.
        other_uri: bool,
        cnonce: String,
        /// Byte edits of the header: (position, new byte).
        edits: Vec<(u16, u8)>,
    },
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(header) => {
            for auth in [&*BASIC, &*DIGEST] {
                match auth.check(Some(&header), "POST", "/sms") {
                    // Only the one right Basic header can pass by chance.
                    Ok(who) => {
                        assert_eq!(auth.scheme(), "Basic", "{header:?}");
                        assert_eq!(
                            header.split_once(' ').map(|(_, t)| t.trim()),
                            Some("dHdpbGlvOnJpZ2h0")
                        );
                        assert_eq!(who.user(), "twilio");
                    }
                    Err(refused) => assert!(!refused.challenges().is_empty()),
                }
            }
        }
        Input::Basic { user, password } => {
            let Ok(pair) = Credentials::new(&user, &password) else {
                return;
            };
            let right = user == "twilio" && password == "right";
            match BASIC.check(Some(&basic_authorization(&pair)), "POST", "/sms") {
                Ok(who) => {
                    assert!(right, "passed with {user:?}");
                    assert_eq!(who.user(), "twilio");
                }
                Err(refused) => {
                    assert!(!right, "refused the right pair: {:?}", refused.reason());
                    // The decoded pair is looked at up to 1 KiB.
                    let want = if user.len() + 1 + password.len() > 1024 {
                        AuthError::Malformed
                    } else {
                        AuthError::WrongCredentials
                    };
                    assert_eq!(refused.reason(), want);
                    assert!(!refused.challenges().is_empty());
                }
            }
        }
        Input::Digest {
            challenge,
            right_user,
            right_password,
            age,
            other_uri,
            cnonce,
            edits,
        } => {
            let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            let refused = DIGEST
                .check_at(None, "POST", "/sms", issued)
                .expect_err("no credentials");
            let challenges = refused.challenges();
            let challenge = &challenges[usize::from(challenge) % challenges.len()];
            let pair = Credentials::new(
                if right_user { "twilio" } else { "twilio2" },
                if right_password { "right" } else { "wrong" },
            )
            .unwrap();
            let uri = if other_uri { "/other" } else { "/sms" };
            let cnonce = if cnonce.is_empty() || !cnonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
                "0a4f113b".to_owned()
            } else {
                cnonce
            };
            let Ok(header) = digest_authorization(challenge, &pair, "POST", uri, &cnonce) else {
                return;
            };
            let mut bytes = header.clone().into_bytes();
            for (at, byte) in &edits {
                let at = usize::from(*at) % bytes.len();
                bytes[at] = *byte;
            }
            let Ok(edited) = String::from_utf8(bytes) else {
                return;
            };
            let now = issued + Duration::from_secs(u64::from(age));
            let verdict = DIGEST.check_at(Some(&edited), "POST", "/sms", now);
            let right = right_user && right_password && !other_uri;
            match &verdict {
                Ok(who) => {
                    assert!(right, "passed with wrong credentials: {edited:?}");
                    assert_eq!(who.user(), "twilio");
                    assert!(Duration::from_secs(u64::from(age)) <= LIFETIME);
                }
                Err(refused) => assert!(!refused.challenges().is_empty()),
            }
            // Unedited, the verdict is known exactly.
            if edited == header {
                let fresh = Duration::from_secs(u64::from(age)) <= LIFETIME;
                let want = match (right, fresh) {
                    (true, true) => None,
                    (true, false) => Some(AuthError::StaleNonce),
                    (false, _) if other_uri => Some(AuthError::WrongUri),
                    (false, _) => Some(AuthError::WrongCredentials),
                };
                assert_eq!(verdict.as_ref().err().map(|r| r.reason()), want, "{header}");
                if want == Some(AuthError::StaleNonce) {
                    assert!(
                        verdict.unwrap_err().challenges().iter().any(|c| c.contains("stale=true"))
                    );
                }
            }
        }
    }
});
