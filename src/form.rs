//! The form parameters of a webhook, in the order Twilio signs them, without copying them.
//!
//! A parameter is kept as a slice of the original body. Only slices that contain `%` or `+`
//! differ from their decoded form; those are decoded on the fly, when compared and when fed
//! to the MAC, so a typical webhook is parsed, sorted and signed with no heap allocation.

use core::cmp::Ordering;

use smallvec::SmallVec;

use crate::error::MalformedBody;

/// Parameters kept inline before spilling to the heap. Twilio's inbound SMS carries about 20
/// and a 10-media MMS about 40.
const INLINE_PARAMS: usize = 64;

/// A name or a value: raw bytes, and whether they need form-decoding (`+` or `%XX`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    raw: &'a [u8],
    encoded: bool,
}

impl<'a> Field<'a> {
    /// A field that is already decoded (from `validate`'s `&[(K, V)]`).
    pub(crate) fn decoded(text: &'a str) -> Self {
        Self {
            raw: text.as_bytes(),
            encoded: false,
        }
    }

    /// A field straight from a form body. Escapes must already be checked.
    fn from_form(raw: &'a [u8]) -> Self {
        let encoded = raw.iter().any(|&b| b == b'%' || b == b'+');
        Self { raw, encoded }
    }

    fn bytes(self) -> Decoded<'a> {
        Decoded {
            raw: self.raw,
            encoded: self.encoded,
        }
    }

    /// Feeds the decoded bytes to `sink`, in as few calls as a small stack buffer allows.
    pub(crate) fn feed(self, sink: &mut impl FnMut(&[u8])) {
        if !self.encoded {
            sink(self.raw);
            return;
        }
        let mut buf = [0u8; 256];
        let mut len = 0;
        for byte in self.bytes() {
            if len == buf.len() {
                sink(&buf);
                len = 0;
            }
            buf[len] = byte;
            len += 1;
        }
        sink(&buf[..len]);
    }

    fn cmp(self, other: Self) -> Ordering {
        if !self.encoded && !other.encoded {
            self.raw.cmp(other.raw)
        } else {
            self.bytes().cmp(other.bytes())
        }
    }

    fn eq(self, other: Self) -> bool {
        (self.raw == other.raw && self.encoded == other.encoded) || self.cmp(other).is_eq()
    }
}

/// The decoded bytes of a field. `+` is a space, `%XX` is a byte.
struct Decoded<'a> {
    raw: &'a [u8],
    encoded: bool,
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.raw.split_first()?;
        if !self.encoded {
            self.raw = rest;
            return Some(first);
        }
        match first {
            b'+' => {
                self.raw = rest;
                Some(b' ')
            }
            b'%' => {
                // Escapes were validated when the body was parsed.
                let byte = hex_value(rest[0]) << 4 | hex_value(rest[1]);
                self.raw = &rest[2..];
                Some(byte)
            }
            _ => {
                self.raw = rest;
                Some(first)
            }
        }
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// One parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Param<'a> {
    pub(crate) name: Field<'a>,
    pub(crate) value: Field<'a>,
}

/// Form parameters, sorted by name then value (bytes of the decoded UTF-8), duplicates removed.
pub(crate) struct SortedParams<'a> {
    params: SmallVec<[Param<'a>; INLINE_PARAMS]>,
}

impl<'a> SortedParams<'a> {
    /// From already-decoded pairs, in any order.
    pub(crate) fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &'a [(K, V)]) -> Self {
        Self::sorted(
            pairs
                .iter()
                .map(|(name, value)| Param {
                    name: Field::decoded(name.as_ref()),
                    value: Field::decoded(value.as_ref()),
                })
                .collect(),
        )
    }

    /// From an `application/x-www-form-urlencoded` body.
    ///
    /// Pairs are separated by `&` (empty pairs are skipped, as every form decoder does); a pair
    /// without `=` has an empty value.
    pub(crate) fn from_form_body(body: &'a [u8]) -> Result<Self, MalformedBody> {
        if core::str::from_utf8(body).is_err() {
            return Err(MalformedBody::InvalidUtf8);
        }
        let mut params = SmallVec::new();
        for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = Field::from_form(name);
            let value = Field::from_form(value);
            check_escapes(name)?;
            check_escapes(value)?;
            params.push(Param { name, value });
        }
        Ok(Self::sorted(params))
    }

    fn sorted(mut params: SmallVec<[Param<'a>; INLINE_PARAMS]>) -> Self {
        params.sort_unstable_by(|a, b| a.name.cmp(b.name).then_with(|| a.value.cmp(b.value)));
        params.dedup_by(|a, b| a.name.eq(b.name) && a.value.eq(b.value));
        Self { params }
    }

    /// Feeds `name value name value ...` to `sink`, with no separators.
    pub(crate) fn feed(&self, sink: &mut impl FnMut(&[u8])) {
        for param in &self.params {
            param.name.feed(sink);
            param.value.feed(sink);
        }
    }
}

/// Every `%` is followed by two hex digits, and the decoded bytes are UTF-8.
///
/// The whole body is already known to be UTF-8, and `+` and `%XX` below 0x80 turn ASCII into
/// ASCII, so only fields with an escape of a non-ASCII byte need their decoded form checked.
fn check_escapes(field: Field<'_>) -> Result<(), MalformedBody> {
    if !field.encoded {
        return Ok(());
    }
    let raw = field.raw;
    let mut non_ascii_escape = false;
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            match (raw.get(i + 1), raw.get(i + 2)) {
                (Some(hi), Some(lo)) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                    non_ascii_escape |= hex_value(*hi) >= 8;
                    i += 3;
                }
                _ => return Err(MalformedBody::InvalidPercentEncoding),
            }
        } else {
            i += 1;
        }
    }
    if non_ascii_escape {
        let decoded: SmallVec<[u8; 512]> = field.bytes().collect();
        if core::str::from_utf8(&decoded).is_err() {
            return Err(MalformedBody::InvalidUtf8);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(body: &str) -> Result<String, MalformedBody> {
        let params = SortedParams::from_form_body(body.as_bytes())?;
        let mut out = Vec::new();
        params.feed(&mut |bytes: &[u8]| out.extend_from_slice(bytes));
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn decodes_plus_and_percent_and_sorts_by_decoded_name() {
        assert_eq!(signed("b=1+2&a=%2B1&c%20d=x").unwrap(), "a+1b1 2c dx");
    }

    #[test]
    fn a_name_sorts_by_its_decoded_bytes_not_its_escapes() {
        // "%41" is "A", which sorts before "B" although '%' sorts before both.
        assert_eq!(signed("B=2&%41=1").unwrap(), "A1B2");
        // "%61" is "a", which sorts after "B".
        assert_eq!(signed("%61=1&B=2").unwrap(), "B2a1");
    }

    #[test]
    fn pair_without_equals_has_an_empty_value_and_empty_pairs_are_skipped() {
        assert_eq!(signed("flag&&b=&=v").unwrap(), "vbflag");
    }

    #[test]
    fn repeated_pairs_are_deduplicated_even_when_encoded_differently() {
        assert_eq!(signed("To=%2B1&To=%2b1&To=+1").unwrap(), "To 1To+1");
        assert_eq!(signed("a=x&a=x&a=%78").unwrap(), "ax");
    }

    #[test]
    fn long_encoded_values_are_fed_across_the_stack_buffer() {
        let value = "%41".repeat(1000);
        assert_eq!(signed(&format!("k={value}")).unwrap(), format!("k{}", "A".repeat(1000)));
    }

    #[test]
    fn bad_escapes_are_refused() {
        for body in ["a=%", "a=%4", "a=%4g", "a=%%41", "%zz=1", "a=100%"] {
            assert_eq!(signed(body), Err(MalformedBody::InvalidPercentEncoding), "{body}");
        }
    }

    #[test]
    fn invalid_utf8_after_decoding_is_refused() {
        for body in ["a=%FF", "a=%C3", "a=%C3%28", "%ED%A0%80=1", "a=%F0%9F%98"] {
            assert_eq!(signed(body), Err(MalformedBody::InvalidUtf8), "{body}");
        }
        assert_eq!(
            SortedParams::from_form_body(b"a=\xff").err(),
            Some(MalformedBody::InvalidUtf8)
        );
        // A lead byte escaped, followed by a raw non-ASCII character, is not UTF-8 either.
        assert_eq!(signed("a=%C3\u{a9}"), Err(MalformedBody::InvalidUtf8));
        assert_eq!(signed("a=%C3%A9").unwrap(), "a\u{e9}");
    }
}
