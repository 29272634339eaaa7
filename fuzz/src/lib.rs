//! A straightforward reference implementation of SPEC §1–3, for differential fuzzing.
//!
//! Written to be obviously right, not fast: owned strings, a sort, a concatenation, every
//! candidate URL built as a `String` and tried in turn. It shares no code with the crate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The reference verdict: does `signature` verify for this request under `token`?
pub fn verify(
    token: &str,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
    signature: &str,
) -> bool {
    if token.is_empty() || signature.is_empty() {
        return false;
    }
    let Some(candidates) = candidates(url) else {
        return false;
    };
    let body_hashes = body_sha256_values(url);
    let params = if !body_hashes.is_empty() {
        Vec::new()
    } else if content_type.is_some_and(is_form) {
        match decode_form(body) {
            Some(params) => params,
            None => return false,
        }
    } else if body.is_empty() {
        Vec::new()
    } else {
        return false;
    };
    let params_text = sorted_text(&params);
    let Ok(tag) = STANDARD.decode(signature) else {
        return false;
    };
    if signature.len() != 28 || tag.len() != 20 {
        return false;
    }
    let signed = candidates.iter().any(|candidate| {
        let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(candidate.as_bytes());
        mac.update(params_text.as_bytes());
        mac.verify_slice(&tag).is_ok()
    });
    if !signed {
        return false;
    }
    let hex: String = Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    body_hashes.iter().all(|claimed| *claimed == hex)
}

/// The signature Twilio would send for `url` (exactly as given) and these decoded params.
pub fn sign(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    mac.update(sorted_text(params).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Every candidate URL, in order, or `None` if the URL cannot be one Twilio requested.
pub fn candidates(url: &str) -> Option<Vec<String>> {
    let (scheme, after) = url.split_once("://")?;
    let mut chars = scheme.chars();
    if !chars.next()?.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(authority_end);
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (host, port) = if host_port.starts_with('[') {
        let close = host_port.find(']')?;
        let after = &host_port[close + 1..];
        let port = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':')?)
        };
        (&host_port[..=close], port)
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    if port.is_some_and(|p| !p.chars().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let lower = scheme.to_ascii_lowercase();
    let default_port = match lower.as_str() {
        "https" | "wss" => Some("443"),
        "http" | "ws" => Some("80"),
        _ => None,
    };
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (path, tail) = rest.split_at(path_end);

    let build = |with_userinfo: bool, toggled: bool, slash: bool| {
        let mut url = format!("{scheme}://");
        if let (true, Some(userinfo)) = (with_userinfo, userinfo) {
            url += userinfo;
            url += "@";
        }
        url += host;
        match (port, toggled) {
            (Some(port), false) => url += &format!(":{port}"),
            (None, true) => url += &format!(":{}", default_port.unwrap()),
            _ => {}
        }
        url += path;
        if slash {
            url += "/";
        }
        url += tail;
        url
    };
    let can_toggle = port.is_some() || default_port.is_some();
    let websocket = lower == "ws" || lower == "wss";
    let mut out = Vec::new();
    for slash in [false, true] {
        if slash && !(websocket && !path.ends_with('/')) {
            continue;
        }
        for with_userinfo in [true, false] {
            if !with_userinfo && userinfo.is_none() {
                continue;
            }
            for toggled in [false, true] {
                if toggled && !can_toggle {
                    continue;
                }
                out.push(build(with_userinfo, toggled, slash));
            }
        }
    }
    // The URL exactly as received comes first (userinfo kept, port as is, no slash).
    debug_assert_eq!(out[0], url);
    Some(out)
}

/// The values of `bodySHA256` in the query (between the first `?` and the first `#`).
pub fn body_sha256_values(url: &str) -> Vec<String> {
    let Some((_, after)) = url.split_once("://") else {
        return Vec::new();
    };
    let before_fragment = after.split('#').next().unwrap_or("");
    let Some((_, query)) = before_fragment.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name == "bodySHA256").then(|| value.to_owned())
        })
        .collect()
}

fn is_form(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// Decodes a form body; `None` for a bad escape or invalid UTF-8 anywhere.
pub fn decode_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    std::str::from_utf8(body).ok()?;
    let mut params = Vec::new();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        params.push((decode(name)?, decode(value)?));
    }
    Some(params)
}

fn decode(field: &[u8]) -> Option<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < field.len() {
        match field[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = field.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Names sorted by bytes, identical pairs dropped, values of one name sorted: name then value.
fn sorted_text(params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort_by(|a, b| {
        a.0.as_bytes()
            .cmp(b.0.as_bytes())
            .then(a.1.as_bytes().cmp(b.1.as_bytes()))
    });
    sorted.dedup();
    sorted.iter().map(|(n, v)| format!("{n}{v}")).collect()
}

/// Form-encodes `params` in order, escaping what must be and, where `escape_more`, a few
/// bytes that need not be (as some clients do).
pub fn encode_form(params: &[(String, String)], escape_more: bool) -> String {
    let encode = |text: &str| {
        let mut out = String::new();
        for b in text.bytes() {
            match b {
                b' ' => out.push('+'),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*'
                    if !(escape_more && b == b'a') =>
                {
                    out.push(b as char)
                }
                _ => out += &format!("%{b:02X}"),
            }
        }
        out
    };
    params
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}
