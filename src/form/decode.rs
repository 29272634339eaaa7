//! Form-decoding: `+` is a space, `%XX` a byte. Sixteen bytes at a time while the signed text
//! is written, a byte at a time where fields are compared.

use core::cell::Cell;

use wide::u8x16;

use super::Field;
use crate::error::MalformedBody;

impl Field<'_> {
    /// [`Self::write`] of a plain field over 64 bytes (or at the end of its buffer), or of a
    /// field to decode.
    #[inline(never)]
    pub(super) fn write_long_or_encoded(self, out: &mut [u8]) -> Result<usize, MalformedBody> {
        if !self.encoded {
            let n = self.len;
            // Whole words, reading past the field inside its buffer: one load and one store
            // per 8 bytes instead of a call to memcpy for a dozen bytes.
            let mut k = 0;
            while k < n {
                match self.ext.get(k..k + 8) {
                    Some(word) => out[k..k + 8].copy_from_slice(word),
                    None => {
                        out[k..n].copy_from_slice(&self.ext[k..n]);
                        break;
                    }
                }
                k += 8;
            }
            return Ok(n);
        }
        let raw = self.raw();
        let n = raw.len();
        let (mut i, mut o) = (0, 0);
        let mut non_ascii_escape = false;
        // Sixteen bytes at a time (SSE2 through `wide`, as the scan): `+` becomes a space in
        // the block, the block is stored whole and the output advanced to the first `%` only,
        // where one escape is decoded, and the next block starts right after it.
        // Escape-dense values (URLs: `%3A%2F%2F`) cost a step per escape instead of a byte
        // loop. The block is read past the field inside its buffer (`ext`), and the bytes past
        // the field are masked out of the `%` search; what they put in `out` past `o` is
        // overwritten later: `out` has `SLACK` bytes of room past the raw field, and `o <= i`.
        while i < n
            && let Some(chunk) = self.ext.get(i..i + 16)
        {
            let block = u8x16::new(chunk.try_into().expect("16 bytes"));
            let plus = block.cmp_eq(u8x16::splat(b'+'));
            let spaced = block ^ (plus & u8x16::splat(b'+' ^ b' '));
            out[o..o + 16].copy_from_slice(spaced.as_array_ref());
            let left = n - i;
            let in_field = if left >= 16 {
                u32::MAX
            } else {
                (1 << left) - 1
            };
            let percent = block.cmp_eq(u8x16::splat(b'%')).move_mask() as u32 & in_field;
            if percent == 0 {
                let step = left.min(16);
                i += step;
                o += step;
                continue;
            }
            let before = percent.trailing_zeros() as usize;
            i += before;
            o += before;
            let byte = escape_at(raw, i).ok_or(MalformedBody::InvalidPercentEncoding)?;
            non_ascii_escape |= byte >= 0x80;
            out[o] = byte;
            i += 3;
            o += 1;
        }
        // The last few bytes, one at a time.
        while i < raw.len() {
            match raw[i] {
                b'+' => {
                    out[o] = b' ';
                    i += 1;
                }
                b'%' => {
                    let byte = escape_at(raw, i).ok_or(MalformedBody::InvalidPercentEncoding)?;
                    non_ascii_escape |= byte >= 0x80;
                    out[o] = byte;
                    i += 3;
                }
                byte => {
                    out[o] = byte;
                    i += 1;
                }
            }
            o += 1;
        }
        // The body is UTF-8 and `+` or an ASCII escape keeps it so; only an escaped
        // non-ASCII byte can break it.
        if non_ascii_escape && core::str::from_utf8(&out[..o]).is_err() {
            return Err(MalformedBody::InvalidUtf8);
        }
        Ok(o)
    }
}

/// The byte of the escape `%XX` at `raw[i]`, if it is one.
pub(super) fn escape_at(raw: &[u8], i: usize) -> Option<u8> {
    let hi = HEX[usize::from(*raw.get(i + 1)?)];
    let lo = HEX[usize::from(*raw.get(i + 2)?)];
    // A digit's value is below 16; anything else is `NOT_HEX`, which has a high bit set.
    ((hi | lo) < 16).then_some(hi << 4 | lo)
}

/// What `HEX` holds for a byte that is no hex digit.
const NOT_HEX: u8 = 0xff;

/// The value of each hex digit (either case), [`NOT_HEX`] for every other byte: one load per
/// digit instead of three range tests.
const HEX: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// The decoded bytes of a field. `+` is a space, `%XX` is a byte; an invalid escape yields the
/// `%` as is and sets `invalid`, so a comparison never panics and never hides it.
pub(super) struct Decoded<'a, 'c> {
    pub(super) raw: &'a [u8],
    pub(super) encoded: bool,
    pub(super) invalid: &'c Cell<bool>,
}

impl Iterator for Decoded<'_, '_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let raw = self.raw;
        let (&first, rest) = raw.split_first()?;
        self.raw = rest;
        if !self.encoded {
            return Some(first);
        }
        match first {
            b'+' => Some(b' '),
            b'%' => match escape_at(raw, 0) {
                Some(byte) => {
                    self.raw = &raw[3..];
                    Some(byte)
                }
                None => {
                    self.invalid.set(true);
                    Some(b'%')
                }
            },
            other => Some(other),
        }
    }
}
