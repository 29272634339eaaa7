//! The URL Twilio signed, and the variants of it that Twilio is known to have signed instead.
//!
//! The URL is never parsed into a URL type and serialised back: a parser that re-encodes `'`,
//! lower-cases the host, resolves `..` or drops `:443` changes the bytes that were signed
//! (twilio-node #1183). We only find where the userinfo and the port are, so that a variant is
//! the original bytes with one piece left out or one piece added.

use core::fmt;

use wide::u8x16;

use crate::error::InvalidUrl;

/// Which form of the request URL the signature was computed over.
///
/// Twilio's own signing is inconsistent about default ports, and its docs say credentials are
/// dropped before signing, so every official SDK tries a few forms. They are tried in this order
/// and the first that verifies wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UrlVariant {
    /// The URL exactly as received.
    AsReceived,
    /// The explicit port removed, or the scheme's default port (`:443`, `:80`) added.
    PortToggled,
    /// The `user[:password]@` removed.
    WithoutUserinfo,
    /// The `user[:password]@` removed and the port toggled.
    WithoutUserinfoPortToggled,
    /// A WebSocket URL (`wss://`, `ws://`) with `/` appended to its path: Twilio's docs say
    /// Media Streams and ConversationRelay handshakes may be signed that way.
    TrailingSlash,
    /// The port toggled and `/` appended to the path (WebSocket URLs).
    PortToggledTrailingSlash,
    /// The userinfo removed and `/` appended to the path (WebSocket URLs).
    WithoutUserinfoTrailingSlash,
    /// The userinfo removed, the port toggled and `/` appended to the path (WebSocket URLs).
    WithoutUserinfoPortToggledTrailingSlash,
}

impl UrlVariant {
    fn keeps_userinfo(self) -> bool {
        matches!(
            self,
            Self::AsReceived
                | Self::PortToggled
                | Self::TrailingSlash
                | Self::PortToggledTrailingSlash
        )
    }

    fn toggles_port(self) -> bool {
        matches!(
            self,
            Self::PortToggled
                | Self::WithoutUserinfoPortToggled
                | Self::PortToggledTrailingSlash
                | Self::WithoutUserinfoPortToggledTrailingSlash
        )
    }

    fn appends_slash(self) -> bool {
        matches!(
            self,
            Self::TrailingSlash
                | Self::PortToggledTrailingSlash
                | Self::WithoutUserinfoTrailingSlash
                | Self::WithoutUserinfoPortToggledTrailingSlash
        )
    }
}

impl fmt::Display for UrlVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AsReceived => "as received",
            Self::PortToggled => "port toggled",
            Self::WithoutUserinfo => "without userinfo",
            Self::WithoutUserinfoPortToggled => "without userinfo, port toggled",
            Self::TrailingSlash => "trailing slash",
            Self::PortToggledTrailingSlash => "port toggled, trailing slash",
            Self::WithoutUserinfoTrailingSlash => "without userinfo, trailing slash",
            Self::WithoutUserinfoPortToggledTrailingSlash => {
                "without userinfo, port toggled, trailing slash"
            }
        })
    }
}

/// A URL split at the places the variants change, without copying or re-encoding it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedUrl<'a> {
    full: &'a str,
    /// `scheme://`
    scheme_prefix: &'a str,
    /// Between `://` and `@`, without the `@`.
    userinfo: Option<&'a str>,
    /// The host as written, brackets included for IPv6.
    host: &'a str,
    /// After the `:`, as written (may be empty: `host:` is legal).
    port: Option<&'a str>,
    /// The path, as written (may be empty).
    path: &'a str,
    /// Query and fragment, as written: from the first `?` or `#` after the path.
    after_path: &'a str,
    /// `:443` or `:80` for the schemes that have one.
    default_port: Option<&'static str>,
    /// A `ws`/`wss` URL whose path does not end with `/`: it has the trailing-slash forms.
    slash_candidate: bool,
}

/// The most pieces a candidate has: scheme, userinfo, `@`, host, `:`, port, path, `/`, rest.
const MAX_PIECES: usize = 9;

/// One candidate URL, as the pieces to feed to the MAC in order.
pub(crate) struct Candidate<'a> {
    pub(crate) variant: UrlVariant,
    pieces: [&'a str; MAX_PIECES],
    len: usize,
}

impl<'a> Candidate<'a> {
    pub(crate) fn pieces(&self) -> &[&'a str] {
        &self.pieces[..self.len]
    }
}

impl<'a> SignedUrl<'a> {
    pub(crate) fn parse(url: &'a str) -> Result<Self, InvalidUrl> {
        // Byte loops rather than substring searches: this runs on every request.
        let bytes = url.as_bytes();
        let scheme_end = bytes
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
            .unwrap_or(bytes.len());
        let scheme = &url[..scheme_end];
        let scheme_ok = bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes[scheme_end..].starts_with(b"://");
        if !scheme_ok {
            return Err(InvalidUrl::MissingScheme);
        }
        let authority_start = scheme_end + 3;
        let after_scheme = &url[authority_start..];
        // The authority ends at the first `/`, `?` or `#`; whether it holds an `@` or a `:`
        // is learnt in the same pass, so the common authority (a host alone) is not searched
        // again.
        let (authority_len, at_or_colon) = find(after_scheme.as_bytes(), |block| {
            let end = eq(block, b'/') | eq(block, b'?') | eq(block, b'#');
            (end, eq(block, b'@') | eq(block, b':'))
        });
        let authority = &after_scheme[..authority_len];
        let rest = &after_scheme[authority_len..];
        let (path_len, _) = find(rest.as_bytes(), |block| {
            let end = eq(block, b'?') | eq(block, b'#');
            (end, end)
        });
        let (path, after_path) = rest.split_at(path_len);

        // Userinfo may itself contain ':' (user:password); the host starts after the last '@'.
        let at = if at_or_colon {
            authority.bytes().rposition(|b| b == b'@')
        } else {
            None
        };
        let (userinfo, host_port) = match at {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };

        let (host, port) = if host_port.starts_with('[') {
            let close = host_port
                .bytes()
                .position(|b| b == b']')
                .ok_or(InvalidUrl::MalformedAuthority)?;
            let after = &host_port[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(InvalidUrl::MalformedAuthority),
            };
            (&host_port[..=close], port)
        } else {
            let colon = match at_or_colon {
                true => host_port.bytes().position(|b| b == b':'),
                false => None,
            };
            match colon {
                Some(colon) => (&host_port[..colon], Some(&host_port[colon + 1..])),
                None => (host_port, None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(InvalidUrl::EmptyHost);
        }
        if port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(InvalidUrl::MalformedAuthority);
        }

        let default_port =
            if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
                Some(":443")
            } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
                Some(":80")
            } else {
                None
            };
        let websocket = scheme.eq_ignore_ascii_case("wss") || scheme.eq_ignore_ascii_case("ws");

        Ok(Self {
            full: url,
            scheme_prefix: &url[..authority_start],
            userinfo,
            host,
            port,
            path,
            after_path,
            default_port,
            slash_candidate: websocket && !path.ends_with('/'),
        })
    }

    /// The query: between the first `?` and the first `#` (SPEC §1.3: a `?` inside the
    /// fragment starts no query).
    pub(crate) fn query(&self) -> &'a str {
        match self.after_path.strip_prefix('?') {
            Some(query) => query.split('#').next().unwrap_or(""),
            None => "",
        }
    }

    /// The value of every `bodySHA256` query parameter, as written.
    pub(crate) fn body_sha256_values(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let query = self.query();
        query.split('&').filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name == "bodySHA256").then_some(value)
        })
    }

    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn has_userinfo(&self) -> bool {
        self.userinfo.is_some()
    }

    pub(crate) fn has_body_sha256(&self) -> bool {
        // [`Self::body_sha256_values`] on bytes, without its `str` searches: this runs on
        // every request, and a parameter is `bodySHA256` when its name (up to the first `=`)
        // is.
        const NAME: &[u8] = b"bodySHA256";
        self.query().as_bytes().split(|&b| b == b'&').any(|pair| {
            pair.strip_prefix(NAME)
                .is_some_and(|rest| matches!(rest.first(), None | Some(b'=')))
        })
    }

    /// The variants there are of this URL, in the order they are tried: as received first.
    pub(crate) fn variants(&self) -> impl Iterator<Item = UrlVariant> + use<> {
        let has_toggle = self.port.is_some() || self.default_port.is_some();
        let has_userinfo = self.userinfo.is_some();
        let slash = self.slash_candidate;
        [
            (UrlVariant::AsReceived, true),
            (UrlVariant::PortToggled, has_toggle),
            (UrlVariant::WithoutUserinfo, has_userinfo),
            (
                UrlVariant::WithoutUserinfoPortToggled,
                has_userinfo && has_toggle,
            ),
            (UrlVariant::TrailingSlash, slash),
            (UrlVariant::PortToggledTrailingSlash, slash && has_toggle),
            (
                UrlVariant::WithoutUserinfoTrailingSlash,
                slash && has_userinfo,
            ),
            (
                UrlVariant::WithoutUserinfoPortToggledTrailingSlash,
                slash && has_userinfo && has_toggle,
            ),
        ]
        .into_iter()
        .filter(|&(_, present)| present)
        .map(|(variant, _)| variant)
    }

    /// The candidates in the order they are tried: as received first.
    pub(crate) fn candidates(&self) -> impl Iterator<Item = Candidate<'a>> + use<'a> {
        let this = *self;
        self.variants()
            .map(move |variant| this.rebuild(variant, this.userinfo))
    }

    /// Hands `variant`'s pieces to `piece` in order, without building a [`Candidate`]: what
    /// the MAC is fed on every request. As received, the URL is one piece.
    #[inline]
    pub(crate) fn for_each_piece(&self, variant: UrlVariant, mut piece: impl FnMut(&'a str)) {
        if variant == UrlVariant::AsReceived {
            piece(self.full);
        } else {
            self.pieces_of(variant, self.userinfo, piece);
        }
    }

    /// The variant assembled from the parts, with `userinfo` standing in for the real one.
    fn rebuild(&self, variant: UrlVariant, userinfo: Option<&'a str>) -> Candidate<'a> {
        let mut pieces = [""; MAX_PIECES];
        let mut len = 0;
        self.pieces_of(variant, userinfo, |piece| {
            pieces[len] = piece;
            len += 1;
        });
        Candidate {
            variant,
            pieces,
            len,
        }
    }

    /// The pieces of `variant`, in order, with `userinfo` standing in for the real one.
    fn pieces_of(
        &self,
        variant: UrlVariant,
        userinfo: Option<&'a str>,
        mut push: impl FnMut(&'a str),
    ) {
        let toggle_port = variant.toggles_port();
        push(self.scheme_prefix);
        if let (true, Some(userinfo)) = (variant.keeps_userinfo(), userinfo) {
            push(userinfo);
            push("@");
        }
        push(self.host);
        match (self.port, toggle_port) {
            (Some(port), false) => {
                push(":");
                push(port);
            }
            (None, true) => {
                if let Some(default_port) = self.default_port {
                    push(default_port);
                }
            }
            (Some(_), true) | (None, false) => {}
        }
        push(self.path);
        if variant.appends_slash() {
            push("/");
        }
        push(self.after_path);
    }

    /// The candidate URL with any userinfo replaced by `***`, for logs.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn redacted(&self, variant: UrlVariant) -> String {
        self.rebuild(variant, self.userinfo.map(|_| "***"))
            .pieces()
            .concat()
    }
}

/// Sixteen bytes of a URL at a time (SSE2 through `wide`, as the form scan; no runtime
/// dispatch): the URL is split on every request, and a byte loop per boundary cost more than
/// a tenth of a status callback's own work. `split(block)` gives, for 16 bytes, the bits of
/// the bytes that end the search and of the bytes to note; the result is the position of the
/// first end (or the length) and whether a noted byte came before it.
#[inline(always)]
fn find(bytes: &[u8], split: impl Fn(u8x16) -> (u8x16, u8x16)) -> (usize, bool) {
    let mut noted = false;
    for (k, chunk) in bytes.chunks(16).enumerate() {
        let block = match <[u8; 16]>::try_from(chunk) {
            Ok(full) => u8x16::new(full),
            Err(_) => {
                // Zero padding is none of the bytes looked for.
                let mut padded = [0u8; 16];
                padded[..chunk.len()].copy_from_slice(chunk);
                u8x16::new(padded)
            }
        };
        let (end, note) = split(block);
        let (end, note) = (end.move_mask() as u32, note.move_mask() as u32);
        if end != 0 {
            let first = end.trailing_zeros();
            let before = (1u32 << first) - 1;
            return (k * 16 + first as usize, noted | (note & before != 0));
        }
        noted |= note != 0;
    }
    (bytes.len(), noted)
}

/// The bytes of `block` equal to `byte`: all ones where they are.
#[inline(always)]
fn eq(block: u8x16, byte: u8) -> u8x16 {
    block.cmp_eq(u8x16::splat(byte))
}

/// Every URL the validator tries for `url`, in order, with which form each is: the URL as
/// received first. For explaining a failing signature; the validator itself never builds
/// these strings.
///
/// ```
/// use twilio_webhook::{UrlVariant, url_variants};
///
/// let tried = url_variants("https://example.com/sms").unwrap();
/// assert_eq!(tried, [
///     (UrlVariant::AsReceived, "https://example.com/sms".to_owned()),
///     (UrlVariant::PortToggled, "https://example.com:443/sms".to_owned()),
/// ]);
/// ```
pub fn url_variants(url: &str) -> Result<Vec<(UrlVariant, String)>, InvalidUrl> {
    let parsed = SignedUrl::parse(url)?;
    Ok(parsed
        .candidates()
        .map(|candidate| (candidate.variant, candidate.pieces().concat()))
        .collect())
}

/// `url` as a message or log may show it: anything before an `@` in its authority (HTTP
/// authentication's `user:password`) replaced by `***`. The rest is unchanged.
///
/// ```
/// use twilio_webhook::redact_userinfo;
///
/// assert_eq!(redact_userinfo("https://twilio:s3cret@example.com/sms?a=b@c"),
///            "https://***@example.com/sms?a=b@c");
/// assert_eq!(redact_userinfo("https://example.com/sms"), "https://example.com/sms");
/// ```
pub fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***{}", &rest[at..]),
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// What a log may show of `url`: the URL as received with any userinfo replaced by `***`, and
/// the variants tried, in order.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn for_log(url: &str) -> (String, Vec<UrlVariant>) {
    match SignedUrl::parse(url) {
        Ok(parsed) => (
            parsed.redacted(UrlVariant::AsReceived),
            parsed
                .candidates()
                .map(|candidate| candidate.variant)
                .collect(),
        ),
        Err(_) => (redact_userinfo(url), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The split `SignedUrl::parse` makes, said with `str`'s own searches: the reference the
    /// 16-byte searches are checked against.
    type Split<'a> = (
        &'a str,
        Option<&'a str>,
        &'a str,
        Option<&'a str>,
        &'a str,
        &'a str,
    );

    fn reference_split(url: &str) -> Option<Split<'_>> {
        let scheme_end = url
            .find(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .unwrap_or(url.len());
        let scheme_ok = url.starts_with(|c: char| c.is_ascii_alphabetic())
            && url[scheme_end..].starts_with("://");
        if !scheme_ok {
            return None;
        }
        let after = &url[scheme_end + 3..];
        let (authority, rest) = after.split_at(after.find(['/', '?', '#']).unwrap_or(after.len()));
        let (path, after_path) = rest.split_at(rest.find(['?', '#']).unwrap_or(rest.len()));
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (host, port) = if host_port.starts_with('[') {
            let close = host_port.find(']')?;
            let after = &host_port[close + 1..];
            match after.strip_prefix(':') {
                Some(port) => (&host_port[..=close], Some(port)),
                None if after.is_empty() => (&host_port[..=close], None),
                None => return None,
            }
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if host.is_empty()
            || host == "[]"
            || port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        Some((
            &url[..scheme_end + 3],
            userinfo,
            host,
            port,
            path,
            after_path,
        ))
    }

    proptest::proptest! {
        /// URLs of every length around the 16-byte blocks, with the bytes that split them
        /// anywhere: the parse agrees with the reference on every one, valid or not.
        #[test]
        fn the_url_is_split_as_str_searches_split_it(
            scheme in proptest::sample::select(&["https://", "wss://", "http://", "h+t://", "https:/", ""][..]),
            pieces in proptest::collection::vec(
                proptest::sample::select(&["a", "host.example.com", "/", "?", "#", "@", ":",
                    "[", "]", "443", "é", "%2F", "user:pw@", "[::1]"][..]),
                0..24,
            ),
        ) {
            let url = format!("{scheme}{}", pieces.concat());
            let parsed = SignedUrl::parse(&url).ok().map(|u| {
                (u.scheme_prefix, u.userinfo, u.host, u.port, u.path, u.after_path)
            });
            proptest::prop_assert_eq!(parsed, reference_split(&url), "{}", url);
        }
    }

    #[test]
    fn an_authority_with_an_at_or_a_colon_past_the_first_block_is_split_there() {
        for pad in 0..40 {
            let host = "h".repeat(pad);
            for (url, userinfo, host_is, port) in [
                (
                    format!("https://u@{host}x:8443/p"),
                    Some("u"),
                    format!("{host}x"),
                    Some("8443"),
                ),
                (
                    format!("https://{host}x:1/p?a:b@c"),
                    None,
                    format!("{host}x"),
                    Some("1"),
                ),
                (
                    format!("https://{host}x/p:1@2"),
                    None,
                    format!("{host}x"),
                    None,
                ),
                (
                    format!("https://{host}@x#y"),
                    Some(host.as_str()),
                    "x".to_owned(),
                    None,
                ),
            ] {
                let Ok(parsed) = SignedUrl::parse(&url) else {
                    assert!(pad == 0 && userinfo == Some(""), "{url}");
                    continue;
                };
                assert_eq!(
                    (parsed.userinfo, parsed.host, parsed.port),
                    (userinfo, &*host_is, port),
                    "{url}"
                );
            }
        }
    }

    fn all(url: &str) -> Vec<(UrlVariant, String)> {
        SignedUrl::parse(url)
            .unwrap()
            .candidates()
            .map(|c| (c.variant, c.pieces().concat()))
            .collect()
    }

    #[test]
    fn for_log_shows_the_url_with_its_userinfo_redacted_and_every_variant_tried() {
        let (url, tried) = for_log("https://twilio:s3cret@hooks.example.com/sms?a=1");
        assert_eq!(url, "https://***@hooks.example.com/sms?a=1");
        assert_eq!(
            tried,
            [
                UrlVariant::AsReceived,
                UrlVariant::PortToggled,
                UrlVariant::WithoutUserinfo,
                UrlVariant::WithoutUserinfoPortToggled,
            ]
        );
        let (plain, tried) = for_log("https://hooks.example.com/sms");
        assert_eq!(plain, "https://hooks.example.com/sms");
        assert_eq!(tried, [UrlVariant::AsReceived, UrlVariant::PortToggled]);
        // A URL that cannot be parsed (a bad port) still hides its password.
        let (bad, tried) = for_log("https://twilio:s3cret@hooks.example.com:port/sms");
        assert_eq!(bad, "https://***@hooks.example.com:port/sms");
        assert!(tried.is_empty());
    }

    #[test]
    fn https_without_port_adds_443() {
        assert_eq!(
            all("https://example.com/sms?a=1"),
            vec![
                (UrlVariant::AsReceived, "https://example.com/sms?a=1".into()),
                (
                    UrlVariant::PortToggled,
                    "https://example.com:443/sms?a=1".into()
                ),
            ]
        );
    }

    #[test]
    fn explicit_port_is_removed_whatever_it_is() {
        assert_eq!(
            all("http://example.com:8080/x")[1].1,
            "http://example.com/x".to_string()
        );
    }

    #[test]
    fn unknown_scheme_has_no_default_port_to_add() {
        assert_eq!(all("ftp://example.com/x").len(), 1);
    }

    #[test]
    fn userinfo_with_colon_and_ipv6_host_with_port() {
        let got = all("https://us:er:pw@[::1]:8443/p?q=1");
        let urls: Vec<_> = got.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://us:er:pw@[::1]:8443/p?q=1",
                "https://us:er:pw@[::1]/p?q=1",
                "https://[::1]:8443/p?q=1",
                "https://[::1]/p?q=1",
            ]
        );
    }

    #[test]
    fn ipv6_without_port_gets_default_port_after_the_bracket() {
        assert_eq!(
            all("wss://[2001:db8::1]/media")[1].1,
            "wss://[2001:db8::1]:443/media"
        );
    }

    #[test]
    fn at_sign_in_the_path_is_not_userinfo() {
        assert_eq!(all("https://example.com/u@x").len(), 2);
    }

    #[test]
    fn uppercase_scheme_still_has_a_default_port() {
        assert_eq!(all("HTTP://example.com/x")[1].1, "HTTP://example.com:80/x");
    }

    #[test]
    fn absurd_urls_are_refused() {
        for (url, want) in [
            ("example.com/sms", InvalidUrl::MissingScheme),
            ("?", InvalidUrl::MissingScheme),
            ("", InvalidUrl::MissingScheme),
            ("://example.com", InvalidUrl::MissingScheme),
            ("1http://example.com", InvalidUrl::MissingScheme),
            ("https://", InvalidUrl::EmptyHost),
            ("https:///path", InvalidUrl::EmptyHost),
            ("https://user@/path", InvalidUrl::EmptyHost),
            ("https://:443/", InvalidUrl::EmptyHost),
            ("https://[]:443/", InvalidUrl::EmptyHost),
            ("https://host:44x3/", InvalidUrl::MalformedAuthority),
            ("https://a:b:c/", InvalidUrl::MalformedAuthority),
            ("https://[::1/", InvalidUrl::MalformedAuthority),
            ("https://[::1]x/", InvalidUrl::MalformedAuthority),
        ] {
            assert_eq!(SignedUrl::parse(url).err(), Some(want), "{url:?}");
        }
    }

    #[test]
    fn has_body_sha256_agrees_with_the_values_it_stands_for() {
        for (query, has) in [
            ("bodySHA256=ab", true),
            ("a=1&bodySHA256", true),
            ("bodySHA256=", true),
            ("x&&bodySHA256=&y", true),
            ("bodySHA256=a=b", true),
            ("bodySHA2567=1", false),
            ("xbodySHA256=1", false),
            ("bodysha256=1", false),
            ("a=bodySHA256", false),
            ("bodySHA25", false),
            ("", false),
        ] {
            let full = format!("https://h/p?{query}");
            let url = SignedUrl::parse(&full).unwrap();
            assert_eq!(url.has_body_sha256(), has, "{query}");
            assert_eq!(url.body_sha256_values().next().is_some(), has, "{query}");
        }
    }

    #[test]
    fn body_sha256_is_found_only_by_its_exact_name_in_the_query() {
        let url = SignedUrl::parse("https://h/p?a=1&bodySHA256=ab&bodysha256=cd#frag").unwrap();
        assert_eq!(url.body_sha256_values().collect::<Vec<_>>(), ["ab"]);
        let url = SignedUrl::parse("https://h/bodySHA256=ab").unwrap();
        assert!(!url.has_body_sha256());
    }

    #[test]
    fn websocket_urls_are_also_tried_with_a_trailing_slash_before_the_query() {
        let urls: Vec<_> = all("wss://u:p@h/media?x=1")
            .into_iter()
            .map(|(_, url)| url)
            .collect();
        assert_eq!(
            urls,
            [
                "wss://u:p@h/media?x=1",
                "wss://u:p@h:443/media?x=1",
                "wss://h/media?x=1",
                "wss://h:443/media?x=1",
                "wss://u:p@h/media/?x=1",
                "wss://u:p@h:443/media/?x=1",
                "wss://h/media/?x=1",
                "wss://h:443/media/?x=1",
            ]
        );
        // Before a fragment too, and on an empty path.
        assert_eq!(all("ws://h:8080/a#f")[2].1, "ws://h:8080/a/#f");
        assert_eq!(all("WSS://h")[2].1, "WSS://h/");
    }

    #[test]
    fn a_trailing_slash_is_never_doubled_nor_removed_nor_added_to_http() {
        let urls: Vec<_> = all("wss://h/media/").into_iter().map(|(_, u)| u).collect();
        assert_eq!(urls, ["wss://h/media/", "wss://h:443/media/"]);
        assert_eq!(all("https://h/media").len(), 2);
        assert_eq!(all("http://h/media").len(), 2);
    }

    #[test]
    fn the_query_ends_at_the_fragment_and_a_question_mark_in_it_starts_none() {
        let url = SignedUrl::parse("https://h/events#x?bodySHA256=ab").unwrap();
        assert!(!url.has_body_sha256());
        let url = SignedUrl::parse("https://h/events?a=1#bodySHA256=ab").unwrap();
        assert!(!url.has_body_sha256());
        let url = SignedUrl::parse("https://h/events?bodySHA256=ab#x?bodySHA256=cd").unwrap();
        assert_eq!(url.body_sha256_values().collect::<Vec<_>>(), ["ab"]);
    }

    #[test]
    fn redaction_hides_userinfo_in_every_variant() {
        let url = SignedUrl::parse("https://user:secret@h:8443/p").unwrap();
        for c in url.candidates() {
            let shown = url.redacted(c.variant);
            assert!(!shown.contains("secret"), "{shown}");
        }
        assert_eq!(url.redacted(UrlVariant::AsReceived), "https://***@h:8443/p");
        assert_eq!(url.redacted(UrlVariant::PortToggled), "https://***@h/p");
    }
}
