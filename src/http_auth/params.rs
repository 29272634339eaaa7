//! The `name=value, name="quoted value"` list of a Digest `Authorization` header (RFC 7616
//! §3.4, RFC 9110 §11.2). Hand-written: no well-kept crate parses the server side, and this
//! one must refuse what a lenient parser would guess at (unterminated quotes, duplicates).

use std::borrow::Cow;

use smallvec::SmallVec;

use super::AuthError;

/// More parameters than this is not a Digest header.
const MAX_PARAMS: usize = 16;

/// The parameters, names as written (compared case-insensitively), values unquoted.
pub(super) struct Params<'a> {
    pairs: SmallVec<[(&'a str, Cow<'a, str>); MAX_PARAMS]>,
}

impl<'a> Params<'a> {
    pub(super) fn parse(text: &'a str) -> Result<Self, AuthError> {
        let mut pairs: SmallVec<[(&'a str, Cow<'a, str>); MAX_PARAMS]> = SmallVec::new();
        let mut rest = text.trim_start_matches([' ', '\t']);
        while !rest.is_empty() {
            let eq = rest.find('=').ok_or(AuthError::Malformed)?;
            let name = rest[..eq].trim_end_matches([' ', '\t']);
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(AuthError::Malformed);
            }
            let after = rest[eq + 1..].trim_start_matches([' ', '\t']);
            let (value, remainder) = match after.strip_prefix('"') {
                Some(quoted) => quoted_string(quoted)?,
                None => {
                    let end = after.find([',', ' ', '\t']).unwrap_or(after.len());
                    let token = &after[..end];
                    if token.is_empty() || !token.bytes().all(is_token_byte) {
                        return Err(AuthError::Malformed);
                    }
                    (Cow::Borrowed(token), &after[end..])
                }
            };
            if pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) || pairs.len() == MAX_PARAMS
            {
                return Err(AuthError::Malformed);
            }
            pairs.push((name, value));
            // Then `,` and the next pair, or the end.
            let remainder = remainder.trim_start_matches([' ', '\t']);
            rest = match remainder.strip_prefix(',') {
                Some(next) => next.trim_start_matches([' ', '\t']),
                None if remainder.is_empty() => remainder,
                None => return Err(AuthError::Malformed),
            };
        }
        Ok(Self { pairs })
    }

    /// The value of `name`, if present.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// A quoted string after its opening `"`: the unescaped value and what follows the closing `"`.
fn quoted_string(text: &str) -> Result<(Cow<'_, str>, &str), AuthError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let raw = &text[..i];
                let value = if escaped {
                    let mut out = String::with_capacity(raw.len());
                    let mut chars = raw.chars();
                    while let Some(c) = chars.next() {
                        out.push(if c == '\\' {
                            chars.next().unwrap_or('\\')
                        } else {
                            c
                        });
                    }
                    Cow::Owned(out)
                } else {
                    Cow::Borrowed(raw)
                };
                return Ok((value, &text[i + 1..]));
            }
            b'\\' => {
                escaped = true;
                i += 2;
            }
            byte if byte < b' ' && byte != b'\t' => return Err(AuthError::Malformed),
            _ => i += 1,
        }
    }
    Err(AuthError::Malformed)
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:@".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_quoted_strings_with_escapes() {
        let params =
            Params::parse(r#"username="Mu\"fasa", realm="a, b", nc=00000001 ,qop=auth"#).unwrap();
        assert_eq!(params.get("USERNAME"), Some("Mu\"fasa"));
        assert_eq!(params.get("realm"), Some("a, b"));
        assert_eq!(params.get("nc"), Some("00000001"));
        assert_eq!(params.get("qop"), Some("auth"));
        assert_eq!(params.get("cnonce"), None);
    }

    #[test]
    fn what_a_lenient_parser_would_guess_at_is_refused() {
        for bad in [
            r#"username="unterminated"#,
            r#"username="a", username="b""#,
            r#"username="a", USERNAME="b""#,
            "username",
            "=value",
            "username=",
            r#"username="a" realm="b""#,
            r#"username="a",, realm="b""#,
            "user name=a",
            "a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11,l=12,m=13,n=14,o=15,p=16,q=17",
            "username=\"a\u{1}\"",
            r#"username="a\"#,
        ] {
            assert!(Params::parse(bad).is_err(), "{bad}");
        }
    }
}
