//! The signature header's Base64: a MAC tag of a fixed length, decoded strictly.
//!
//! By hand, not through the `base64` crate's general engine: every request decodes one, and
//! for 28 characters the engine's setup and general loop cost about 375 instructions a call,
//! this about 130 (callgrind, `benches/instructions.rs`). It is exactly as strict as that
//! engine's `STANDARD` (the test below compares them on every one-byte change of real tags):
//! the standard alphabet, `=` padding exactly where the length needs it, and zero in the bits
//! the padding leaves unused, so each tag has one spelling.

/// The value of each Base64 symbol, [`INVALID`] for any other byte.
const SEXTETS: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const INVALID: u8 = 0xff;

/// The `N` bytes that `text` encodes in standard, padded Base64, or `None`.
pub(crate) fn decode<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != N.div_ceil(3) * 4 {
        return None;
    }
    let mut tag = [0u8; N];
    // Any invalid symbol sets a high bit here: one check at the end, no branch per symbol.
    let mut invalid = 0u8;
    let mut sextet = |symbol: u8| {
        let value = SEXTETS[usize::from(symbol)];
        invalid |= value;
        u32::from(value & 0x3f)
    };
    let (quads, last) = text.split_at(N / 3 * 4);
    for (bytes, quad) in tag.chunks_exact_mut(3).zip(quads.chunks_exact(4)) {
        let word = sextet(quad[0]) << 18 | sextet(quad[1]) << 12 | sextet(quad[2]) << 6;
        let word = word | sextet(quad[3]);
        bytes.copy_from_slice(&word.to_be_bytes()[1..]);
    }
    let unused = match (N % 3, last) {
        (0, []) => 0,
        // One byte left: two symbols, `==`; the second symbol's low 4 bits are unused.
        (1, [a, b, b'=', b'=']) => {
            let (a, b) = (sextet(*a), sextet(*b));
            tag[N - 1] = (a << 2 | b >> 4) as u8;
            b & 0x0f
        }
        // Two bytes left: three symbols, `=`; the third symbol's low 2 bits are unused.
        (2, [a, b, c, b'=']) => {
            let word = sextet(*a) << 12 | sextet(*b) << 6 | sextet(*c);
            tag[N - 2] = (word >> 10) as u8;
            tag[N - 1] = (word >> 2) as u8;
            word & 0x03
        }
        _ => return None,
    };
    (invalid & 0x80 == 0 && unused == 0).then_some(tag)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    /// What the `base64` crate's `STANDARD` engine makes of `text`, as a tag of `N` bytes.
    fn by_the_crate<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
        let mut buf = [0u8; 64];
        match STANDARD.decode_slice(text, &mut buf) {
            Ok(len) if len == N && text.len() == N.div_ceil(3) * 4 => {
                Some(buf[..N].try_into().unwrap())
            }
            _ => None,
        }
    }

    /// Every one-byte change of the encoding of a few tags, and every truncation and
    /// extension by one byte: decoded as the crate decodes them.
    fn agrees_with_the_crate<const N: usize>() {
        for seed in 0..8u8 {
            let tag: [u8; N] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ (seed * 29));
            let text = STANDARD.encode(tag).into_bytes();
            assert_eq!(decode::<N>(&text), Some(tag));
            for at in 0..text.len() {
                for byte in 0..=255u8 {
                    let mut changed = text.clone();
                    changed[at] = byte;
                    assert_eq!(
                        decode::<N>(&changed),
                        by_the_crate::<N>(&changed),
                        "{N} bytes, {:?}",
                        String::from_utf8_lossy(&changed)
                    );
                }
            }
            assert_eq!(decode::<N>(&text[..text.len() - 1]), None);
            assert_eq!(decode::<N>(&[&text[..], b"="].concat()), None);
            assert_eq!(decode::<N>(&[&text[..], b"A"].concat()), None);
        }
    }

    #[test]
    fn decodes_as_strictly_as_the_base64_crate_for_each_padding() {
        agrees_with_the_crate::<20>(); // HMAC-SHA1: `=`
        agrees_with_the_crate::<32>(); // HMAC-SHA256: `=`
        agrees_with_the_crate::<19>(); // `==`
        agrees_with_the_crate::<18>(); // no padding
    }

    #[test]
    fn padding_or_a_symbol_out_of_place_is_refused() {
        let text = STANDARD.encode([0xabu8; 20]);
        assert_eq!(text.len(), 28);
        assert_eq!(decode::<20>(b"============================"), None);
        assert_eq!(decode::<20>(&text.replace('=', "A").into_bytes()), None);
        let mut early = text.clone().into_bytes();
        early[10] = b'=';
        assert_eq!(decode::<20>(&early), None);
        assert_eq!(decode::<20>("q".repeat(27).as_bytes()), None);
        // URL-safe symbols are not standard Base64.
        let mut url_safe = STANDARD.encode([0xfbu8; 20]).into_bytes();
        assert!(url_safe.contains(&b'+') || url_safe.contains(&b'/'));
        for byte in &mut url_safe {
            *byte = match *byte {
                b'+' => b'-',
                b'/' => b'_',
                other => other,
            };
        }
        assert_eq!(decode::<20>(&url_safe), None);
    }
}
