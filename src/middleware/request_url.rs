//! Which URL Twilio requested, seen from behind whatever terminates TLS.

use std::borrow::Cow;

use http::Uri;
use http::header::{FORWARDED, HOST, HeaderMap, HeaderName, HeaderValue, UPGRADE};
use http::request::Parts;

use super::ConfigError;
use crate::InvalidUrl;
use crate::url::SignedUrl;
use crate::url::redact_userinfo;

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// The scheme Twilio used, when the URL is derived from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// `https://` (and `wss://` for WebSocket upgrades). The default: Twilio webhooks should
    /// always be served over HTTPS.
    #[default]
    Https,
    /// `http://` (and `ws://`): only for local development.
    Http,
}

impl Scheme {
    fn as_str(self, websocket: bool) -> &'static str {
        match (self, websocket) {
            (Self::Https, false) => "https",
            (Self::Https, true) => "wss",
            (Self::Http, false) => "http",
            (Self::Http, true) => "ws",
        }
    }
}

/// How the middleware finds the URL to check.
#[derive(Debug, Clone)]
pub(crate) enum UrlSource {
    /// A configured base joined to the request's path and query.
    Public(PublicUrl),
    /// The request's own authority (`Host`, or the URI's for HTTP/2) and a configured scheme.
    FromRequest {
        scheme: Scheme,
        trust_forwarded: bool,
    },
}

/// A validated public base URL: `scheme://host[:port][/prefix]`, no query, no trailing slash.
#[derive(Debug, Clone)]
pub(crate) struct PublicUrl {
    base: String,
    websocket_base: String,
}

impl PublicUrl {
    pub(crate) fn parse(base: &str) -> Result<Self, ConfigError> {
        // What an error may show: never a password.
        let url = || redact_userinfo(base);
        let parsed = SignedUrl::parse(base)
            .map_err(|reason| ConfigError::InvalidPublicUrl { url: url(), reason })?;
        if parsed.has_userinfo() {
            return Err(ConfigError::PublicUrlHasCredentials { url: url() });
        }
        if base.contains(['?', '#']) {
            return Err(ConfigError::PublicUrlHasQuery { url: url() });
        }
        if base.ends_with('/') {
            return Err(ConfigError::PublicUrlTrailingSlash { url: url() });
        }
        let (scheme, rest) = base.split_once("://").expect("parsed above");
        let websocket_scheme = websocket_scheme(scheme)
            .ok_or_else(|| ConfigError::UnsupportedScheme { url: url() })?;
        Ok(Self {
            base: base.to_owned(),
            websocket_base: format!("{websocket_scheme}://{rest}"),
        })
    }
}

impl PublicUrl {
    /// Whether requests reach it in the clear.
    pub(crate) fn is_plain_http(&self) -> bool {
        self.base
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
    }
}

/// Twilio Media Streams open a WebSocket: `GET` with `Upgrade: websocket`, signed over `wss://`.
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("websocket"))
}

/// The URI as the client sent it, before any router (axum's `nest`) stripped a prefix.
pub(crate) fn original_uri(parts: &Parts) -> &Uri {
    #[cfg(feature = "axum")]
    if let Some(original) = parts.extensions.get::<axum::extract::OriginalUri>() {
        return &original.0;
    }
    &parts.uri
}

/// The path and query as the client sent them.
fn raw_path_and_query(parts: &Parts) -> &str {
    original_uri(parts)
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
}

/// A path prefix the platform in front adds to the path Twilio requested (an API Gateway
/// stage that `lambda_http` puts back, say): `/segment...`, no trailing `/`.
#[derive(Debug, Clone)]
pub(crate) struct PathPrefix(std::sync::Arc<str>);

impl PathPrefix {
    pub(crate) fn parse(prefix: &str) -> Result<Self, ConfigError> {
        let invalid = |reason| ConfigError::InvalidPathPrefix {
            prefix: prefix.to_owned(),
            reason,
        };
        if !prefix.starts_with('/') || prefix.len() < 2 {
            return Err(invalid(
                "it must start with '/' and name at least one segment",
            ));
        }
        if prefix.ends_with('/') {
            return Err(invalid("it must not end with '/'"));
        }
        if prefix.contains("//") {
            return Err(invalid("it must not have an empty segment"));
        }
        if prefix
            .bytes()
            .any(|b| matches!(b, b'?' | b'#') || !b.is_ascii_graphic())
        {
            return Err(invalid(
                "it must be a path: no query, fragment, space or control character",
            ));
        }
        Ok(Self(prefix.into()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// `path_and_query` without the prefix, if it starts with it (whole segments only:
    /// `/prod` is not a prefix of `/production`).
    fn strip<'p>(&self, path_and_query: &'p str) -> Option<&'p str> {
        let rest = path_and_query.strip_prefix(&*self.0)?;
        (rest.is_empty() || rest.starts_with(['/', '?'])).then_some(rest)
    }
}

/// The path and query Twilio requested: as the client sent them, without the platform's
/// `prefix`. `None` when the request's path does not start with the prefix.
pub(crate) fn twilio_path_and_query<'p>(
    parts: &'p Parts,
    prefix: Option<&PathPrefix>,
) -> Option<&'p str> {
    let raw = raw_path_and_query(parts);
    match prefix {
        Some(prefix) => prefix.strip(raw),
        None => Some(raw),
    }
}

impl UrlSource {
    /// The URL Twilio requested, written into `buf` (no allocation for URLs up to 256
    /// bytes), or why it cannot be known.
    pub(crate) fn write_url<'b>(
        &self,
        parts: &Parts,
        path_and_query: &str,
        buf: &'b mut UrlBuf,
    ) -> Result<&'b str, InvalidUrl> {
        let websocket = is_websocket_upgrade(&parts.headers);
        buf.clear();
        match self {
            Self::Public(public) => {
                let base = if websocket {
                    &public.websocket_base
                } else {
                    &public.base
                };
                buf.extend_from_slice(base.as_bytes());
            }
            Self::FromRequest {
                scheme,
                trust_forwarded,
            } => {
                let mut scheme = Cow::Borrowed(scheme.as_str(websocket));
                let mut authority = Cow::Borrowed(request_authority(parts)?);
                if *trust_forwarded && let Some((proto, host)) = forwarded(&parts.headers)? {
                    if let Some(proto) = proto {
                        scheme = match websocket_scheme(&proto) {
                            Some(ws) if websocket => Cow::Borrowed(ws),
                            _ => Cow::Owned(proto),
                        };
                    }
                    if let Some(host) = host {
                        authority = Cow::Owned(host);
                    }
                }
                check_authority(&authority)?;
                buf.extend_from_slice(scheme.as_bytes());
                buf.extend_from_slice(b"://");
                buf.extend_from_slice(authority.as_bytes());
            }
        }
        buf.extend_from_slice(path_and_query.as_bytes());
        // Every piece is a `&str`, so this cannot fail; were it to, the URL is refused.
        core::str::from_utf8(buf).map_err(|_| InvalidUrl::MalformedAuthority)
    }

    #[cfg(test)]
    fn url(&self, parts: &Parts) -> Result<String, InvalidUrl> {
        self.write_url(parts, raw_path_and_query(parts), &mut UrlBuf::new())
            .map(str::to_owned)
    }
}

/// Where a request's URL is assembled: on the stack when it is short, as webhook URLs are.
pub(crate) type UrlBuf = smallvec::SmallVec<[u8; 256]>;

/// The WebSocket scheme signed in place of an HTTP one: `wss` for `https`, `ws` for `http`.
fn websocket_scheme(http_scheme: &str) -> Option<&'static str> {
    if http_scheme.eq_ignore_ascii_case("https") {
        Some("wss")
    } else if http_scheme.eq_ignore_ascii_case("http") {
        Some("ws")
    } else {
        None
    }
}

/// The URI's authority (HTTP/2, absolute-form), else the `Host` header.
fn request_authority(parts: &Parts) -> Result<&str, InvalidUrl> {
    if let Some(authority) = parts.uri.authority() {
        return Ok(authority.as_str());
    }
    super::service::header_str(&parts.headers, &HOST, InvalidUrl::MalformedAuthority)?
        .ok_or(InvalidUrl::EmptyHost)
}

/// An authority from a header must not smuggle a path, query or credentials into the URL.
fn check_authority(authority: &str) -> Result<(), InvalidUrl> {
    if authority.is_empty() {
        return Err(InvalidUrl::EmptyHost);
    }
    if authority
        .bytes()
        .any(|b| matches!(b, b'/' | b'?' | b'#' | b'@' | b'\\') || b <= b' ' || b >= 0x7f)
    {
        return Err(InvalidUrl::MalformedAuthority);
    }
    Ok(())
}

/// A proxy's `proto` and `host`, each if it gave one.
type ProtoAndHost = (Option<String>, Option<String>);

/// `(proto, host)` from `Forwarded` (RFC 7239), else `X-Forwarded-Proto/Host/Port`: the first
/// (client-side) value of each comma-separated list. A proto other than `http`, `https`, `ws`
/// or `wss` is refused: it would make a URL Twilio never requested.
fn forwarded(headers: &HeaderMap) -> Result<Option<ProtoAndHost>, InvalidUrl> {
    let found = if let Some(value) = headers.get(FORWARDED) {
        let value = value.to_str().map_err(|_| InvalidUrl::MalformedAuthority)?;
        let (proto, host) = first_forwarded_element(value)?;
        Some((proto, host))
    } else {
        let proto = first_value(headers.get(&X_FORWARDED_PROTO)).map(str::to_owned);
        let mut host = first_value(headers.get(&X_FORWARDED_HOST)).map(str::to_owned);
        if let Some(port) = first_value(headers.get(&X_FORWARDED_PORT)) {
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(InvalidUrl::MalformedAuthority);
            }
            if let Some(h) = host.as_mut() {
                replace_port(h, port);
            }
        }
        (proto.is_some() || host.is_some()).then_some((proto, host))
    };
    if let Some((Some(proto), _)) = &found
        && !["http", "https", "ws", "wss"]
            .iter()
            .any(|known| proto.eq_ignore_ascii_case(known))
    {
        return Err(InvalidUrl::MissingScheme);
    }
    Ok(found)
}

/// `proto` and `host` of the first element of a `Forwarded` header. Hand-written because no
/// well-kept crate parses RFC 7239, and a naive split on `,` cuts inside quoted values
/// (`host="a,b"`): pairs are `;`-separated, elements `,`-separated, and a value is a token or
/// a quoted string with `\` escapes. Unterminated quotes are refused.
fn first_forwarded_element(value: &str) -> Result<ProtoAndHost, InvalidUrl> {
    let (mut proto, mut host) = (None, None);
    let mut rest = value;
    loop {
        let rest_trimmed = rest.trim_start_matches([' ', '\t', ';']);
        if rest_trimmed.is_empty() || rest_trimmed.starts_with(',') {
            break;
        }
        let eq = rest_trimmed
            .find(['=', ';', ','])
            .filter(|&i| rest_trimmed.as_bytes()[i] == b'=')
            .ok_or(InvalidUrl::MalformedAuthority)?;
        let name = rest_trimmed[..eq].trim();
        let after = &rest_trimmed[eq + 1..];
        let (val, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => out.push(chars.next().ok_or(InvalidUrl::MalformedAuthority)?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or(InvalidUrl::MalformedAuthority)?;
            (out, &quoted[end..])
        } else {
            let end = after.find([';', ',']).unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        if name.eq_ignore_ascii_case("proto") {
            proto = Some(val);
        } else if name.eq_ignore_ascii_case("host") {
            host = Some(val);
        }
        rest = remainder;
    }
    Ok((proto, host))
}

fn first_value(value: Option<&HeaderValue>) -> Option<&str> {
    let first = value?.to_str().ok()?.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// `host[:port]` with its port replaced by `port`; IPv6 brackets respected.
fn replace_port(host: &mut String, port: &str) {
    let port_start = if host.starts_with('[') {
        host.find(']').map(|close| close + 1)
    } else {
        Some(host.find(':').unwrap_or(host.len()))
    };
    if let Some(start) = port_start {
        host.truncate(start);
        host.push(':');
        host.push_str(port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn from_request(trust: bool) -> UrlSource {
        UrlSource::FromRequest {
            scheme: Scheme::Https,
            trust_forwarded: trust,
        }
    }

    #[test]
    fn public_url_is_joined_without_adding_or_dropping_a_slash() {
        let source = UrlSource::Public(PublicUrl::parse("https://example.com/api").unwrap());
        let got = source.url(&parts("/twilio/sms?x=1&y", &[("host", "internal:8080")]));
        assert_eq!(got.unwrap(), "https://example.com/api/twilio/sms?x=1&y");
    }

    #[test]
    fn public_url_must_be_a_base() {
        for (base, error) in [
            (
                "example.com",
                ConfigError::InvalidPublicUrl {
                    url: "example.com".into(),
                    reason: InvalidUrl::MissingScheme,
                },
            ),
            (
                "https://",
                ConfigError::InvalidPublicUrl {
                    url: "https://".into(),
                    reason: InvalidUrl::EmptyHost,
                },
            ),
            (
                "https://example.com/",
                ConfigError::PublicUrlTrailingSlash {
                    url: "https://example.com/".into(),
                },
            ),
            (
                "https://example.com/api?x=1",
                ConfigError::PublicUrlHasQuery {
                    url: "https://example.com/api?x=1".into(),
                },
            ),
            (
                "ftp://example.com",
                ConfigError::UnsupportedScheme {
                    url: "ftp://example.com".into(),
                },
            ),
        ] {
            assert_eq!(PublicUrl::parse(base).err(), Some(error.clone()), "{base}");
            // The message names the value that was wrong.
            assert!(error.to_string().contains(base), "{error}");
        }
        // ... never with its password, whatever else is wrong with it.
        for base in [
            "user:hunter2@example.com/",
            "https://user:hunter2@/x",
            "https://u:hunter2@h/?q",
        ] {
            let error = PublicUrl::parse(base).unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn websocket_upgrades_are_checked_over_wss() {
        let source = UrlSource::Public(PublicUrl::parse("https://example.com").unwrap());
        let req = parts("/media", &[("upgrade", "websocket")]);
        assert_eq!(source.url(&req).unwrap(), "wss://example.com/media");
        let req = parts("/media", &[("host", "h"), ("upgrade", "websocket")]);
        assert_eq!(from_request(false).url(&req).unwrap(), "wss://h/media");
    }

    #[test]
    fn a_trusted_forwarded_proto_becomes_its_websocket_scheme_on_upgrades() {
        let req = parts(
            "/media",
            &[
                ("host", "internal"),
                ("x-forwarded-proto", "HTTPS"),
                ("upgrade", "websocket"),
            ],
        );
        assert_eq!(
            from_request(true).url(&req).unwrap(),
            "wss://internal/media"
        );
        let req = parts(
            "/sms",
            &[("host", "internal"), ("x-forwarded-proto", "HTTPS")],
        );
        assert_eq!(
            from_request(true).url(&req).unwrap(),
            "HTTPS://internal/sms"
        );
    }

    #[test]
    fn derived_url_uses_host_and_the_configured_scheme() {
        let req = parts("/sms?a=1", &[("host", "hooks.example.com:8443")]);
        assert_eq!(
            from_request(false).url(&req).unwrap(),
            "https://hooks.example.com:8443/sms?a=1"
        );
    }

    #[test]
    fn http2_authority_in_the_uri_wins_over_host() {
        let req = parts("https://h2.example.com/sms", &[("host", "other")]);
        assert_eq!(
            from_request(false).url(&req).unwrap(),
            "https://h2.example.com/sms"
        );
    }

    #[test]
    fn forwarded_headers_count_only_when_trusted() {
        let headers = [
            ("host", "internal:8080"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "hooks.example.com, proxy"),
            ("x-forwarded-port", "443"),
        ];
        let req = parts("/sms", &headers);
        assert_eq!(
            from_request(false).url(&req).unwrap(),
            "https://internal:8080/sms"
        );
        assert_eq!(
            from_request(true).url(&req).unwrap(),
            "https://hooks.example.com:443/sms"
        );
        let req = parts(
            "/sms",
            &[
                ("host", "internal"),
                (
                    "forwarded",
                    r#"for=1.2.3.4;proto=https;host="hooks.example.com", for=5.6.7.8"#,
                ),
                ("x-forwarded-host", "ignored.example.com"),
            ],
        );
        assert_eq!(
            from_request(true).url(&req).unwrap(),
            "https://hooks.example.com/sms"
        );
    }

    #[test]
    fn hosts_that_smuggle_url_parts_are_refused() {
        for host in ["evil.com/x", "a@b", "h?x", "h#x", "", "h x"] {
            let req = parts("/sms", &[("host", host)]);
            assert!(from_request(false).url(&req).is_err(), "{host:?}");
        }
        let req = parts("/sms", &[]);
        assert_eq!(from_request(false).url(&req), Err(InvalidUrl::EmptyHost));
    }

    #[test]
    fn trusted_forwarded_protos_must_be_http_or_websocket_schemes() {
        for proto in ["ftp", "javascript", "https:", ""] {
            let req = parts("/sms", &[("host", "h"), ("x-forwarded-proto", proto)]);
            if proto.is_empty() {
                // An empty header is no header.
                assert_eq!(from_request(true).url(&req).unwrap(), "https://h/sms");
                continue;
            }
            assert!(from_request(true).url(&req).is_err(), "{proto:?}");
            let forwarded = format!("proto={proto}");
            let req = parts("/sms", &[("host", "h"), ("forwarded", &forwarded)]);
            assert!(from_request(true).url(&req).is_err(), "{proto:?}");
        }
        for proto in ["http", "HTTPS", "wss", "ws"] {
            let req = parts("/sms", &[("host", "h"), ("x-forwarded-proto", proto)]);
            assert!(from_request(true).url(&req).is_ok(), "{proto}");
        }
        let req = parts("/sms", &[("host", "h"), ("x-forwarded-port", "44x")]);
        assert!(from_request(true).url(&req).is_err());
    }

    #[test]
    fn quoted_forwarded_values_are_read_whole() {
        assert_eq!(
            first_forwarded_element(r#"for="[::1]:80";host="a,b";proto=https, host=c"#),
            Ok((Some("https".into()), Some("a,b".into())))
        );
        assert_eq!(
            first_forwarded_element(r#"host="h\"x";proto="http""#),
            Ok((Some("http".into()), Some("h\"x".into())))
        );
        assert_eq!(
            first_forwarded_element("for=1.2.3.4, host=second"),
            Ok((None, None))
        );
        for bad in [
            r#"host="unterminated"#,
            "host",
            r#"host="x\"#,
            "for=1;;proto",
        ] {
            assert!(first_forwarded_element(bad).is_err(), "{bad}");
        }
        // A quoted host with a comma is one host, not two: it is not a valid authority.
        let req = parts("/sms", &[("host", "h"), ("forwarded", r#"host="a,b""#)]);
        assert_ne!(
            from_request(true).url(&req).ok().as_deref(),
            Some("https://a/sms")
        );
    }

    #[test]
    fn a_public_url_with_credentials_is_refused_and_says_where_they_go() {
        let error = PublicUrl::parse("https://user:secret@hooks.example.com").unwrap_err();
        assert_eq!(
            error,
            ConfigError::PublicUrlHasCredentials {
                url: "https://***@hooks.example.com".into()
            }
        );
        assert!(!error.to_string().contains("secret"));
        assert!(error.to_string().contains("Twilio"));
    }

    #[test]
    fn forwarded_port_replaces_the_port_of_an_ipv6_host() {
        let mut host = "[::1]:8080".to_owned();
        replace_port(&mut host, "443");
        assert_eq!(host, "[::1]:443");
        let mut host = "example.com".to_owned();
        replace_port(&mut host, "8443");
        assert_eq!(host, "example.com:8443");
    }
}
