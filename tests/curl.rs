//! Interoperability with a client we did not write: curl (`--basic`, `--digest`, over plain
//! HTTP and over HTTPS with a certificate made here) against the running example server.
//!
//! Without curl these tests skip loudly, unless `TWILIO_WEBHOOK_REQUIRE_CURL=1` (CI), where
//! they fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use twilio_webhook::compute_signature;

const DEMO_AUTH_TOKEN: &str = "demo-auth-token-do-not-use-in-production";

fn curl_available() -> bool {
    let found = Command::new("curl").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("TWILIO_WEBHOOK_REQUIRE_CURL").as_deref() != Ok("1"),
            "curl is required (TWILIO_WEBHOOK_REQUIRE_CURL=1) but not installed"
        );
        eprintln!("\n!!! SKIPPED: a curl interoperability test: curl is not installed.\n");
    }
    found
}

/// The example server, built by `cargo test` beside this test binary.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(env: &[(&str, &str)], tls: bool) -> Self {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap().parent().unwrap();
        let server = dir.join("examples").join("server");
        assert!(server.exists(), "{} not built", server.display());
        // Port 0: the server binds a free port itself and says which, so two tests never
        // race for one.
        let mut child = Command::new(server)
            .env_remove("TWILIO_AUTH_TOKEN")
            .env_remove("REDIS_URL")
            .env_remove("PUBLIC_URL")
            .env("BIND", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Ready once it says where it listens.
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let listening = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("listening on ").map(str::to_owned));
        let base = listening.expect("the example server did not start");
        assert_eq!(base.starts_with("https://"), tls, "{base}");
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl's status code and body for a signed SMS webhook (`body` makes each request distinct,
/// so the duplicate guard does not answer).
fn curl(server: &Server, extra: &[&str], body: &str) -> (u16, String) {
    let url = format!("{}/twilio/sms", server.base);
    let params = [("From", "+15005550006"), ("Body", body)];
    let signature = compute_signature(DEMO_AUTH_TOKEN, &url, &params);
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(&url)
        .args(["-H", &format!("X-Twilio-Signature: {signature}")])
        .args(["--data-urlencode", "From=+15005550006"])
        .args(["--data-urlencode", &format!("Body={body}")])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    let code = code.trim().parse().unwrap_or(0);
    if code == 0 {
        // No HTTP answer at all: say why, for the assertion that follows.
        let why = String::from_utf8_lossy(&output.stderr);
        return (0, format!("curl {}: {why}", output.status));
    }
    (code, body.to_owned())
}

#[test]
fn curl_digest_against_the_example_server_with_each_algorithm() {
    if !curl_available() {
        return;
    }
    for algorithms in ["SHA-256,MD5", "MD5"] {
        let server = Server::start(
            &[
                ("DIGEST_AUTH", "twilio:s3cret pass"),
                ("DIGEST_ALGORITHMS", algorithms),
            ],
            false,
        );
        let (status, body) = curl(&server, &["--digest", "-u", "twilio:s3cret pass"], "digest");
        assert_eq!(status, 200, "{algorithms}: {body}");
        assert!(body.contains("You said: digest"), "{body}");
        // The same request again: a duplicate, answered without the handler.
        let (status, body) = curl(&server, &["--digest", "-u", "twilio:s3cret pass"], "digest");
        assert_eq!((status, body.as_str()), (200, "<Response/>"));
        let (status, _) = curl(&server, &["--digest", "-u", "twilio:wrong"], "wrong");
        assert_eq!(status, 401, "{algorithms}");
        let (status, _) = curl(&server, &[], "none");
        assert_eq!(status, 401);
        // Right credentials, bad signature: 403.
        let (status, _) = curl(
            &server,
            &[
                "--digest",
                "-u",
                "twilio:s3cret pass",
                "-H",
                "X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ],
            "forged",
        );
        assert!(status == 401 || status == 403, "{status}");
    }
}

#[test]
fn curl_basic_against_the_example_server() {
    if !curl_available() {
        return;
    }
    let server = Server::start(&[("BASIC_AUTH", "twilio:s3cret pass")], false);
    let (status, body) = curl(&server, &["--basic", "-u", "twilio:s3cret pass"], "basic");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("You said: basic"));
    let (status, _) = curl(&server, &["--basic", "-u", "twilio:wrong"], "wrong");
    assert_eq!(status, 401);
    // curl's --anyauth follows the challenge the way Twilio does: first without credentials.
    let (status, _) = curl(
        &server,
        &["--anyauth", "-u", "twilio:s3cret pass"],
        "anyauth",
    );
    assert_eq!(status, 200);
}

#[test]
fn curl_over_https_with_a_certificate_made_here() {
    if !curl_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("twilio-webhook-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start(
        &[
            ("TLS_CERT", cert.to_str().unwrap()),
            ("TLS_KEY", key.to_str().unwrap()),
            ("DIGEST_AUTH", "twilio:s3cret pass"),
        ],
        true,
    );
    let cacert = cert.to_str().unwrap();
    let (status, body) = curl(
        &server,
        &["--cacert", cacert, "--digest", "-u", "twilio:s3cret pass"],
        "over tls",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("You said: over tls"));
    // A real handshake: a client that does not trust the certificate is refused by curl.
    let (status, _) = curl(
        &server,
        &["--digest", "-u", "twilio:s3cret pass"],
        "untrusted",
    );
    assert_eq!(status, 0);
    // And plain HTTP to the TLS port gets nothing useful.
    let plain = Server {
        child: Command::new("true").spawn().unwrap(),
        base: server.base.replace("https://", "http://"),
    };
    let (status, _) = curl(&plain, &[], "plain");
    assert_ne!(status, 200);
    let _ = std::fs::remove_dir_all(dir);
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn a_mutated_digest_password_is_refused_by_the_check_curl_passes() {
    // Guards the tests above against a server that lets everything through.
    if !curl_available() {
        return;
    }
    let server = Server::start(&[("DIGEST_AUTH", "twilio:right")], false);
    for (user, password) in [
        ("twilio", "Right"),
        ("Twilio", "right"),
        ("twilio", "right "),
    ] {
        let (status, _) = curl(
            &server,
            &["--digest", "-u", &format!("{user}:{password}")],
            user,
        );
        assert_eq!(status, 401, "{user}:{password}");
    }
}

#[test]
fn the_example_server_names_the_address_it_cannot_listen_on() {
    let exe = std::env::current_exe().unwrap();
    let server = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("server");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(server)
        .env_remove("REDIS_URL")
        .env("BIND", &address)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert!(stderr.contains("set BIND"), "{stderr}");
}
