//! The `twilio-webhook` binary: the published vectors through `sign` and `check`, each
//! diagnostic, raw request files, JSON bodies, usage errors, and no token in any output.

mod support;

use std::process::{Command, Output};

use support::published;

const BIN: &str = env!("CARGO_BIN_EXE_twilio-webhook");
const TOKEN: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_with(token: Option<&str>, args: &[&str]) -> Run {
    let mut command = Command::new(BIN);
    command
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_SHARED_KEY_SECRET");
    if let Some(token) = token {
        command.env("TWILIO_AUTH_TOKEN", token);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.args(args).output().unwrap();
    let run = Run {
        code: status.code().unwrap(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    // The token is never printed, whatever happened (short published tokens such as "12345"
    // also occur inside the parameters, so only real-length ones are looked for).
    if let Some(token) = token.filter(|t| t.len() >= 16) {
        assert!(
            !run.stdout.contains(token) && !run.stderr.contains(token),
            "the token leaked: {args:?}"
        );
    }
    run
}

fn run(args: &[&str]) -> Run {
    run_with(Some(TOKEN), args)
}

fn sign(url: &str, params: &[(&str, &str)]) -> String {
    let mut args = vec!["sign".to_owned(), "--url".into(), url.into()];
    for (name, value) in params {
        args.push("--param".into());
        args.push(format!("{name}={value}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "one line: {:?}", out.stdout);
    out.stdout.trim_end().to_owned()
}

fn check(url: &str, signature: &str, params: &[(&str, &str)]) -> Run {
    let mut args = vec![
        "check".to_owned(),
        "--url".into(),
        url.into(),
        "--signature".into(),
        signature.into(),
    ];
    for (name, value) in params {
        args.push("--param".into());
        args.push(format!("{name}={value}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

#[test]
fn the_published_vectors_through_sign_and_check() {
    let mut checked = 0;
    for v in published() {
        let (Some(params), None) = (&v.params, &v.body) else {
            continue;
        };
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut args = vec!["check".to_owned(), "--url".into(), v.url.clone()];
        args.extend(["--signature".to_owned(), v.signature.clone()]);
        for (name, value) in &params {
            args.extend(["--param".to_owned(), format!("{name}={value}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_with(Some(&v.token), &args);
        let want = if v.expected_valid { 0 } else { 1 };
        assert_eq!(out.code, want, "{} {}: {}", v.source, v.url, out.stdout);
        // Where the vector signed the URL as received, `sign` reproduces its signature.
        if v.expected_valid && v.signed_string.starts_with(&v.url) {
            let mut args = vec!["sign".to_owned(), "--url".into(), v.url.clone()];
            for (name, value) in &params {
                args.extend(["--param".to_owned(), format!("{name}={value}")]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run_with(Some(&v.token), &args);
            assert_eq!(out.stdout.trim_end(), v.signature, "{} {}", v.source, v.url);
        }
        checked += 1;
    }
    assert!(checked > 30, "{checked}");
}

#[test]
fn a_valid_request_exits_0_and_says_which_url_matched() {
    let url = "https://hooks.example.com/twilio/sms";
    let params = [("From", "+14155550123"), ("Body", "Hi there")];
    let out = check(url, &sign(url, &params), &params);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("VALID: signed over the URL as received")
    );
    assert!(
        out.stdout.contains("Body \"Hi there\""),
        "the sorted parameters are shown"
    );
}

#[test]
fn each_diagnostic_names_the_likely_cause() {
    let signed_url = "https://hooks.example.com/twilio/sms?route=a";
    let params = [("Body", "hi")];
    let signature = sign(signed_url, &params);
    for (received, cause) in [
        (
            "http://hooks.example.com/twilio/sms?route=a",
            "terminates TLS",
        ),
        (
            "https://hooks.example.com/twilio/sms/?route=a",
            "no trailing slash",
        ),
        (
            "https://hooks.example.com/twilio/sms?route=a&extra=1",
            "no match",
        ),
    ] {
        let out = check(received, &signature, &params);
        assert_eq!(out.code, 1, "{received}");
        assert!(out.stdout.contains(cause), "{received}: {}", out.stdout);
    }
    // Signed with a trailing slash, received without.
    let with_slash = sign("https://hooks.example.com/twilio/sms/", &params);
    let out = check("https://hooks.example.com/twilio/sms", &with_slash, &params);
    assert!(out.stdout.contains("ends with '/'"), "{}", out.stdout);
    // Signed without the query a proxy added.
    let bare = sign("https://hooks.example.com/twilio/sms", &params);
    let out = check(
        "https://hooks.example.com/twilio/sms?tracking=1",
        &bare,
        &params,
    );
    assert!(
        out.stdout.contains("query string was added"),
        "{}",
        out.stdout
    );
    // Nothing near matches: another token.
    let other = run_with(
        Some("another token entirely"),
        &["sign", "--url", signed_url, "--param", "Body=hi"],
    );
    let out = check(signed_url, other.stdout.trim_end(), &params);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("No URL variant matches"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("API key secrets cannot validate"));
}

#[test]
fn a_raw_request_file_with_the_host_the_server_saw() {
    let dir = std::env::temp_dir().join(format!("twilio-webhook-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = "From=%2B14155550123&Body=Hello+there";
    let params = [("From", "+14155550123"), ("Body", "Hello there")];
    // Twilio signed the host a tunnel exposed, with its port; the server's public URL differs.
    let signature = sign("https://abc123.tunnel.example:8443/twilio/sms", &params);
    let raw = format!(
        "POST /twilio/sms HTTP/1.1\r\nHost: abc123.tunnel.example:8443\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         X-Twilio-Signature: {signature}\r\n\r\n{body}",
        body.len()
    );
    let file = dir.join("request.http");
    std::fs::write(&file, raw).unwrap();
    let file = file.to_str().unwrap();
    let out = run(&[
        "check",
        "--request",
        file,
        "--public-url",
        "https://hooks.example.com",
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("host your server saw"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("https://abc123.tunnel.example:8443/twilio/sms")
    );
    // With the right public URL, it is valid.
    let out = run(&[
        "check",
        "--request",
        file,
        "--public-url",
        "https://abc123.tunnel.example:8443",
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    // A file that is not a request is a usage error.
    std::fs::write(dir.join("junk"), "not http\0").unwrap();
    let junk = dir.join("junk");
    let out = run(&[
        "check",
        "--request",
        junk.to_str().unwrap(),
        "--public-url",
        "https://h",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn json_bodies_sign_with_body_sha256_and_a_changed_body_fails() {
    let dir = std::env::temp_dir().join(format!("twilio-webhook-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("event.json");
    std::fs::write(&body, r#"{"status":"delivered"}"#).unwrap();
    let body = body.to_str().unwrap();
    let url = "https://hooks.example.com/events";
    let out = run(&[
        "sign",
        "--url",
        url,
        "--body",
        body,
        "--content-type",
        "application/json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let signature = out.stdout.trim_end().to_owned();
    let signed_url = out.stderr.trim_end().rsplit(' ').next().unwrap().to_owned();
    assert!(signed_url.contains("?bodySHA256="), "{signed_url}");
    let ok = run(&[
        "check",
        "--url",
        &signed_url,
        "--signature",
        &signature,
        "--body",
        body,
        "--content-type",
        "application/json",
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    std::fs::write(dir.join("event.json"), r#"{"status":"failed"}"#).unwrap();
    let changed = run(&[
        "check",
        "--url",
        &signed_url,
        "--signature",
        &signature,
        "--body",
        body,
        "--content-type",
        "application/json",
    ]);
    assert_eq!(changed.code, 1);
    assert!(changed.stdout.contains("bodySHA256"), "{}", changed.stdout);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    let url = "https://hooks.example.com/sms";
    let no_token = run_with(None, &["sign", "--url", url]);
    assert_eq!(no_token.code, 2);
    assert!(no_token.stderr.contains("TWILIO_AUTH_TOKEN is not set"));
    for args in [
        &["sign"][..],
        &["sign", "--url", url, "--param", "no-equals-sign"],
        &["sign", "--url", "not a url"],
        &["check", "--url", url],
        &[
            "check",
            "--request",
            "/nonexistent/file",
            "--public-url",
            "https://h",
        ],
        &["check", "--request", "x"],
        &["sign", "--url", url, "--token", "on-the-command-line"],
        &[],
    ] {
        let out = run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.is_empty());
    }
    let help = run(&["check", "--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("--public-url"));
}

/// A scratch directory for one test's files, removed when the test ends.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("twilio-webhook-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_url_that_already_carries_the_right_body_sha256_is_signed_as_it_is() {
    let scratch = Scratch::new("json-hash");
    let json = br#"{"status":"delivered"}"#;
    let body = scratch.file("event.json", json);
    // The URL Twilio calls carries bodySHA256; Twilio's SDKs sign that URL with no parameters.
    let url = format!(
        "https://hooks.example.com/events?bodySHA256={}",
        twilio_webhook::body_sha256(json)
    );
    let out = run(&[
        "sign",
        "--url",
        &url,
        "--body",
        &body,
        "--content-type",
        "application/json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let empty: [(&str, &str); 0] = [];
    assert_eq!(
        out.stdout.trim_end(),
        twilio_webhook::compute_signature(TOKEN, &url, &empty),
        "signed over the URL as given, not with a second bodySHA256"
    );
    assert!(!out.stderr.contains("bodySHA256=") || out.stderr.matches("bodySHA256=").count() == 1);

    // A bodySHA256 that is not this body's hash is an error that says so.
    let wrong = format!(
        "https://hooks.example.com/events?bodySHA256={}",
        "0".repeat(64)
    );
    let out = run(&[
        "sign",
        "--url",
        &wrong,
        "--body",
        &body,
        "--content-type",
        "application/json",
    ]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("bodySHA256"), "{}", out.stderr);
    assert!(out.stderr.contains("not the body's"), "{}", out.stderr);
}

#[test]
fn check_refuses_exactly_the_public_urls_the_layer_refuses_with_its_message() {
    use twilio_webhook::Validator;
    use twilio_webhook::middleware::TwilioWebhookLayer;

    let scratch = Scratch::new("public-url");
    let request = scratch.file(
        "request.http",
        "POST /sms HTTP/1.1\r\nHost: h\r\nX-Twilio-Signature: x\r\nContent-Length: 0\r\n\r\n",
    );
    for base in [
        "https://hooks.example.com/",
        "https://twilio:s3cretpassw0rd@hooks.example.com",
        "https://hooks.example.com?a=1",
        "https://hooks.example.com#x",
        "hooks.example.com",
        "ftp://hooks.example.com",
        "https://",
    ] {
        let layer = TwilioWebhookLayer::new(Validator::new("k")).unwrap();
        let refused = layer.public_url(base).expect_err(base).to_string();
        let out = run(&["check", "--request", &request, "--public-url", base]);
        assert_eq!(out.code, 2, "{base}: a usage error: {}", out.stdout);
        assert!(
            out.stderr.contains(&refused),
            "{base}: the layer's message {refused:?}, got {:?}",
            out.stderr
        );
        assert!(!out.stderr.contains("s3cretpassw0rd"), "{}", out.stderr);
    }
    // What the layer accepts, check accepts (the verdict is then 1: the signature is junk).
    let out = run(&[
        "check",
        "--request",
        &request,
        "--public-url",
        "https://hooks.example.com/api",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
}

#[test]
fn no_output_ever_shows_a_password_from_a_url() {
    let scratch = Scratch::new("userinfo");
    let password = "s3cretpassw0rd";
    let signed = format!("https://twilio:{password}@hooks.example.com/twilio/sms");
    let params = [("Body", "hi")];
    let signature = sign(&signed, &params);
    let json = scratch.file("event.json", "{}");
    let runs = [
        // Valid, as received.
        check(&signed, &signature, &params),
        // Invalid: every near miss printed.
        check(
            &format!("http://twilio:{password}@hooks.example.com/twilio/sms"),
            &signature,
            &params,
        ),
        check(
            &format!("https://twilio:{password}@hooks.example.com:8443/sms?x=1"),
            &signature,
            &params,
        ),
        // A URL the validator cannot parse, and a JSON signing that prints the signed URL.
        run(&[
            "sign",
            "--url",
            &format!("https://twilio:{password}@h:port/sms"),
        ]),
        run(&[
            "sign",
            "--url",
            &signed,
            "--body",
            &json,
            "--content-type",
            "application/json",
        ]),
    ];
    for out in &runs {
        assert!(
            !out.stdout.contains(password) && !out.stderr.contains(password),
            "stdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
    }
    assert_eq!(runs[0].code, 0, "{}", runs[0].stdout);
    assert!(
        runs[0]
            .stdout
            .contains("https://***@hooks.example.com/twilio/sms")
    );
    assert_eq!(runs[1].code, 1);
    assert!(
        runs[1].stdout.contains("terminates TLS"),
        "{}",
        runs[1].stdout
    );
    assert_eq!(runs[3].code, 2);
    assert_eq!(runs[4].code, 0, "{}", runs[4].stderr);
}

#[test]
fn a_flood_of_pairs_is_refused_at_the_parameter_limit_without_decoding_it() {
    let scratch = Scratch::new("flood");
    // 4 MB of `a&`: two million pairs. Decoded whole, this took gigabytes.
    let body = "a&".repeat(2_000_000);
    let raw = format!(
        "POST /sms HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nX-Twilio-Signature: x\r\n\r\n{body}",
        body.len()
    );
    let request = scratch.file("flood.http", raw);
    let out = run(&["check", "--request", &request, "--public-url", "https://h"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("too many parameters"), "{}", out.stderr);
    let body_file = scratch.file("flood.form", &body);
    let out = run(&[
        "sign",
        "--url",
        "https://h/sms",
        "--body",
        &body_file,
        "--content-type",
        "application/x-www-form-urlencoded",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("too many parameters"), "{}", out.stderr);
}

#[test]
fn a_capture_shorter_than_its_content_length_is_called_truncated() {
    let scratch = Scratch::new("truncated");
    let request = scratch.file(
        "cut.http",
        "POST /sms HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 40\r\nX-Twilio-Signature: x\r\n\r\nBody=hi",
    );
    let out = run(&["check", "--request", &request, "--public-url", "https://h"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("truncated"), "{}", out.stderr);
    assert!(out.stderr.contains("40"), "{}", out.stderr);
}

#[test]
fn a_token_that_is_set_but_not_utf8_is_not_called_unset() {
    use std::os::unix::ffi::OsStrExt;

    let out = Command::new(BIN)
        .env("TWILIO_AUTH_TOKEN", std::ffi::OsStr::from_bytes(b"abc\xff"))
        .args(["sign", "--url", "https://h/sms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
    assert!(!stderr.contains("not set"), "{stderr}");
}
