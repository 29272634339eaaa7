//! The form parameters of a webhook, in the order Twilio signs them, without copying them.
//!
//! A parameter stays a slice of the original body until the string-to-sign is written, once,
//! into a stack buffer that every URL candidate reuses. Only fields that contain `%` or `+`
//! differ from their decoded form; they are decoded sixteen bytes at a time while written.
//! Sorting orders integer keys (the first decoded bytes of the name and the position, in one
//! word), and only names that tie on those bytes are compared in full. A typical webhook is parsed,
//! sorted and written with no heap allocation.

use core::cell::Cell;
use core::cmp::Ordering;

use smallvec::SmallVec;
use wide::u8x16;

use crate::error::MalformedBody;

mod decode;
mod sort;

use decode::Decoded;
use sort::{index_mask, order_ties, rank_sort};

/// Parameters kept inline before spilling to the heap. Twilio's inbound SMS carries about 20,
/// an MMS with 34 media about 100. (64 bytes each, plus 8 of sort key: 9 KiB of stack.)
const INLINE_PARAMS: usize = 128;

/// Bytes past a field that writing it may overwrite: a short field is copied 64 bytes at once.
const SLACK: usize = 64;

/// A form body, with a copy of its last [`SLACK`] bytes followed by zeros: a field near the
/// end of the body is read from the copy, so that every short field has [`SLACK`] bytes of
/// buffer past it and is written by one fixed-size copy (a status callback's body is 66
/// bytes: without the copy, five of its six fields went out of line to a word loop).
pub(crate) struct FormBody<'a> {
    body: &'a [u8],
    /// `body[tail_start..]`, then zeros.
    tail: [u8; 2 * SLACK],
    tail_start: usize,
}

impl<'a> FormBody<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        let tail_start = body.len().saturating_sub(SLACK);
        let mut tail = [0u8; 2 * SLACK];
        match body.last_chunk::<SLACK>() {
            // A fixed-size copy, not a call to memcpy, for every body but the shortest.
            Some(last) => tail[..SLACK].copy_from_slice(last),
            None => tail[..body.len()].copy_from_slice(body),
        }
        Self {
            body,
            tail,
            tail_start,
        }
    }

    /// `body[start..end]`, from the copy when it starts in the last [`SLACK`] bytes.
    #[inline(always)]
    fn field(&self, start: usize, end: usize, encoded: bool) -> Field<'_> {
        let ext = match start.checked_sub(self.tail_start) {
            Some(in_tail) => &self.tail[in_tail..],
            None => &self.body[start..],
        };
        Field {
            ext,
            len: end - start,
            encoded,
        }
    }
}

/// A name or a value: raw bytes, and whether they need form-decoding (`+` or `%XX`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    /// From the start of the field to the end of the buffer it is part of: bytes past the
    /// field may be read (never used) so that short copies move whole words. The field is the
    /// first `len` of them; one slice and a length keep a parameter to 64 bytes.
    ext: &'a [u8],
    len: usize,
    encoded: bool,
}

impl<'a> Field<'a> {
    /// The field's bytes, as written.
    fn raw(self) -> &'a [u8] {
        &self.ext[..self.len]
    }

    /// A field that is already decoded (from `validate`'s `&[(K, V)]`).
    pub(crate) fn decoded(text: &'a str) -> Self {
        Self {
            ext: text.as_bytes(),
            len: text.len(),
            encoded: false,
        }
    }

    /// `body[start..end]`.
    fn in_body(body: &'a [u8], start: usize, end: usize, encoded: bool) -> Self {
        Self {
            ext: &body[start..],
            len: end - start,
            encoded,
        }
    }

    /// The decoded bytes, leniently: an invalid escape is reported through `invalid`.
    fn bytes<'c>(self, invalid: &'c Cell<bool>) -> Decoded<'a, 'c> {
        Decoded {
            raw: self.raw(),
            encoded: self.encoded,
            invalid,
        }
    }

    /// The first 8 decoded bytes, big-endian, zero-padded. Ordering by it never contradicts
    /// ordering by the full bytes (a zero pad only ties with a real zero byte), so it decides
    /// most comparisons and a tie falls through to the full comparison.
    #[inline(always)]
    fn prefix(self, invalid: &Cell<bool>) -> u64 {
        if self.encoded {
            return self.decoded_prefix(invalid);
        }
        self.word(0)
    }

    /// The 8 raw bytes from `offset`, big-endian, zero-padded past the field: ordering by it
    /// orders as the bytes do, but for ties (as [`Self::prefix`]).
    #[inline(always)]
    fn word(self, offset: usize) -> u64 {
        // One word read past the field inside its buffer, masked to the field.
        let n = self.len.saturating_sub(offset).min(8);
        let in_field = if n == 8 {
            u64::MAX
        } else {
            (1u64 << (n * 8)) - 1
        };
        (word_at(self.ext, offset) & in_field).swap_bytes()
    }

    /// [`Self::prefix`] of a field to decode, out of line.
    #[inline(never)]
    fn decoded_prefix(self, invalid: &Cell<bool>) -> u64 {
        let mut bytes = [0u8; 8];
        for (slot, byte) in bytes.iter_mut().zip(self.bytes(invalid)) {
            *slot = byte;
        }
        u64::from_be_bytes(bytes)
    }

    fn cmp(self, other: Self, invalid: &Cell<bool>) -> Ordering {
        let (a, b) = (self.raw(), other.raw());
        if !self.encoded && !other.encoded {
            return a.cmp(b);
        }
        // Bytes that are the same as written decode the same (a field without escapes has no
        // `%` or `+` to decode), so only what follows the common raw prefix is decoded and
        // compared: values under one name often share a long escaped prefix
        // (`https%3A%2F%2F...`), and decoding it for every comparison made a name repeated
        // 1,000 times cost 70 times the HMAC. The prefix is cut back to the start of an
        // escape it ends inside. (Escapes in the skipped prefix are checked when written.)
        let mut common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        if common >= 1 && a[common - 1] == b'%' {
            common -= 1;
        } else if common >= 2 && a[common - 2] == b'%' {
            common -= 2;
        }
        let rest = |field: Self, raw: &'a [u8]| Decoded {
            raw: &raw[common..],
            encoded: field.encoded,
            invalid,
        };
        rest(self, a).cmp(rest(other, b))
    }

    /// Writes the decoded bytes at the start of `out` and returns how many. `out` is at least
    /// [`SLACK`] bytes longer than the raw field (decoding never lengthens); bytes past the
    /// returned length may be overwritten.
    #[inline(always)]
    fn write(self, out: &mut [u8]) -> Result<usize, MalformedBody> {
        // Most fields (names, SIDs, numbers, short bodies) are plain and fit in 64 bytes: one
        // fixed-size copy of 64 (a few vector moves), reading past the field inside its buffer
        // and writing past it into `out`'s slack. Inlined into the caller's loop, so a field
        // costs the copy and not a call; the rest is out of line.
        if !self.encoded
            && self.len <= 64
            && let (Some(from), Some(to)) = (self.ext.get(..64), out.get_mut(..64))
        {
            to.copy_from_slice(from);
            return Ok(self.len);
        }
        self.write_long_or_encoded(out)
    }
}

/// The 8 bytes of `buf` from `i` as a little-endian word, zero-padded past its end.
fn word_at(buf: &[u8], i: usize) -> u64 {
    match buf.get(i..i + 8) {
        Some(chunk) => u64::from_le_bytes(chunk.try_into().expect("8 bytes")),
        None => {
            let mut last = [0u8; 8];
            let tail = buf.get(i..).unwrap_or_default();
            last[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(last)
        }
    }
}

/// Bitmaps of one block of up to 64 bytes of a form body: bit `i` is byte `i`.
struct BlockMasks {
    /// `&` and `=`.
    delimiters: u64,
    /// `=` alone.
    equals: u64,
    /// `%` and `+`.
    escapes: u64,
    /// Bytes >= 0x80 (part of a non-ASCII character).
    high: u64,
}

impl BlockMasks {
    /// Sixteen bytes per step with SSE2 (the x86-64 baseline: no runtime dispatch) through
    /// `wide`, safe code; other targets get `wide`'s portable fallback. Bytes past the end of a
    /// short block are zero, which matches none of the bytes looked for.
    #[inline]
    fn of(block: &[u8]) -> Self {
        let mut padded = [0u8; 64];
        let bytes: &[u8; 64] = match block.try_into() {
            Ok(full) => full,
            Err(_) => {
                padded[..block.len()].copy_from_slice(block);
                &padded
            }
        };
        let mut masks = Self {
            delimiters: 0,
            equals: 0,
            escapes: 0,
            high: 0,
        };
        for (k, lane) in bytes.chunks_exact(16).enumerate() {
            let v = u8x16::new(lane.try_into().expect("16 bytes"));
            let eq = |byte| v.cmp_eq(u8x16::splat(byte));
            let bits = |m: u8x16| u64::from(m.move_mask() as u16) << (16 * k);
            let equals = eq(b'=');
            masks.delimiters |= bits(eq(b'&') | equals);
            masks.equals |= bits(equals);
            masks.escapes |= bits(eq(b'%') | eq(b'+'));
            masks.high |= bits(v);
        }
        masks
    }
}

/// One parameter.
#[derive(Clone, Copy, Debug)]
struct Param<'a> {
    name: Field<'a>,
    value: Field<'a>,
}

/// Form parameters, sorted by name then value (bytes of the decoded UTF-8), duplicates removed.
pub(crate) struct SortedParams<'a> {
    /// In wire order.
    params: SmallVec<[Param<'a>; INLINE_PARAMS]>,
    /// Sort keys in signing order, one word each: the name's first bytes in the high bits,
    /// the index into `params` in the bits of [`index_mask`].
    order: SmallVec<[u64; INLINE_PARAMS]>,
    /// An upper bound on the length of the written text.
    len_bound: usize,
}

impl<'a> SortedParams<'a> {
    /// No parameters. Filled in place, never moved afterwards: it is a few KiB of stack.
    pub(crate) fn new() -> Self {
        Self {
            params: SmallVec::new(),
            order: SmallVec::new(),
            len_bound: 0,
        }
    }

    /// Already-decoded pairs, in any order.
    pub(crate) fn fill_from_pairs<P: FormParams + ?Sized>(&mut self, pairs: &'a P) {
        self.params.extend(pairs.pairs().map(|(name, value)| Param {
            name: Field::decoded(name),
            value: Field::decoded(value),
        }));
        // Decoded fields have no escapes, so cannot be invalid; were it otherwise, the
        // parameters would be left out and the signature would fail: closed.
        if self.sort().is_err() {
            self.order.clear();
        }
    }

    /// An `application/x-www-form-urlencoded` body.
    ///
    /// Pairs are separated by `&` (empty pairs are skipped, as every form decoder does); a pair
    /// without `=` has an empty value. Escapes are checked when the text is written.
    ///
    /// More than `max_params` pairs are refused as soon as the next one is seen, so a body
    /// made of tiny pairs (`a&a&a&...`) costs a bounded scan and bounded memory, not a sort of
    /// half a million entries before the MAC can refuse it.
    pub(crate) fn fill_from_form_body(
        &mut self,
        form: &'a FormBody<'a>,
        max_params: usize,
    ) -> Result<(), MalformedBody> {
        let body = form.body;
        // One pass, 64 bytes at a time: bitmaps of the delimiters `&` `=`, of the escapes
        // `%` `+`, and of the bytes >= 0x80. Only delimiters cost a branch; escapes only mark
        // their field; a body without a high byte is ASCII, so valid UTF-8 without a second
        // pass over it.
        let mut field_start = 0;
        let mut name: Option<Field<'a>> = None;
        let mut encoded = false;
        // The blocks with a byte >= 0x80: the first, and one past the last.
        let mut high: Option<(usize, usize)> = None;
        for (block_index, block) in body.chunks(64).enumerate() {
            let i = block_index * 64;
            let masks = BlockMasks::of(block);
            if masks.high != 0 {
                let first = high.map_or(i, |(first, _)| first);
                high = Some((first, i + block.len()));
            }
            let mut delimiters = masks.delimiters;
            let mut escapes = masks.escapes;
            while delimiters != 0 {
                let bit = delimiters.trailing_zeros();
                delimiters &= delimiters - 1;
                let before = (1u64 << bit) - 1;
                encoded |= escapes & before != 0;
                escapes &= !before;
                let pos = i + bit as usize;
                if masks.equals >> bit & 1 != 0 {
                    // The first `=` ends the name; later ones belong to the value.
                    if name.is_none() {
                        name = Some(form.field(field_start, pos, encoded));
                        field_start = pos + 1;
                        encoded = false;
                    }
                } else {
                    self.push_pair(form, name.take(), field_start, pos, encoded);
                    if self.params.len() > max_params {
                        return Err(MalformedBody::TooManyParameters { limit: max_params });
                    }
                    field_start = pos + 1;
                    encoded = false;
                }
            }
            encoded |= escapes != 0;
        }
        self.push_pair(form, name, field_start, body.len(), encoded);
        if self.params.len() > max_params {
            return Err(MalformedBody::TooManyParameters { limit: max_params });
        }
        // After the scan, which stops at the parameter limit: a flood of tiny pairs is
        // refused without reading the rest of it even once. Only the blocks from the first to
        // the last with a high byte need checking: the byte before them and every byte after
        // them is ASCII, so they start and end on character boundaries (an emoji in an SMS
        // body checks one block or two, not the whole body).
        if let Some((start, end)) = high
            && core::str::from_utf8(&body[start..end]).is_err()
        {
            return Err(MalformedBody::InvalidUtf8);
        }
        self.sort()
    }

    /// The pair ending at `end`: `name` if an `=` was seen, and the field since `start`.
    #[inline(always)]
    fn push_pair(
        &mut self,
        form: &'a FormBody<'a>,
        name: Option<Field<'a>>,
        start: usize,
        end: usize,
        encoded: bool,
    ) {
        let field = form.field(start, end, encoded);
        match name {
            Some(name) => self.params.push(Param { name, value: field }),
            // `&&` and a trailing `&` make empty pairs, which are not parameters.
            None if start == end => {}
            // A pair without `=` is a name with an empty value.
            None => self.params.push(Param {
                name: field,
                value: form.field(end, end, false),
            }),
        }
    }

    fn sort(&mut self) -> Result<(), MalformedBody> {
        let invalid = Cell::new(false);
        let params = &self.params;
        let order = &mut self.order;
        // One word per key: the name's 8-byte prefix with its low bits replaced by the index.
        // Cutting the prefix's low bits keeps its order (a smaller prefix never cuts to a
        // larger one), so the keys still order by name first; names that now tie are ordered
        // in full below. A word sorts in about half the steps of a pair of words.
        let index_mask = index_mask(params.len());
        // The raw lengths of all the parameters: a bound on the written text, duplicates
        // (removed below) included.
        let mut len_bound = 0;
        order.extend(params.iter().enumerate().map(|(index, param)| {
            len_bound += param.name.len + param.value.len;
            param.name.prefix(&invalid) & !index_mask | index as u64
        }));
        self.len_bound = len_bound;
        // Up to 32 keys (an SMS has 20), by rank; the standard library's sort_unstable sets
        // up sorting networks and merges first, and measured slower here (SMS valid/floor
        // 2.50 against 2.41 with an insertion sort, same machine, one session).
        if order.len() <= 32 {
            rank_sort(order);
        } else {
            order.sort_unstable();
        }

        // Names that share their prefix (MediaUrl0, MediaUrl1, ...; a repeated name) are
        // ordered by their next bytes, and only they can be duplicates. Most webhooks have
        // none.
        let tie = |a: &u64, b: &u64| (a ^ b) & !index_mask == 0;
        if order.windows(2).any(|pair| tie(&pair[0], &pair[1])) {
            let full = |a: &u64, b: &u64| {
                let (a, b) = (
                    params[(a & index_mask) as usize],
                    params[(b & index_mask) as usize],
                );
                a.name
                    .cmp(b.name, &invalid)
                    .then_with(|| a.value.cmp(b.value, &invalid))
            };
            order_ties(order, params, index_mask, full);
            // Equal names tie on every word, so they are still next to each other and their
            // keys still tie.
            order.dedup_by(|a, b| tie(a, b) && full(a, b).is_eq());
        }
        if invalid.get() {
            return Err(MalformedBody::InvalidPercentEncoding);
        }
        Ok(())
    }

    /// The buffer length [`Self::write`] needs: the raw length of the parameters (decoding
    /// never lengthens), plus room for the last fixed-size copy.
    pub(crate) fn len_bound(&self) -> usize {
        self.len_bound + SLACK
    }

    /// Writes `name value name value ...`, decoded, with no separators, at the start of `out`
    /// (at least [`Self::len_bound`] long) and returns the length written.
    pub(crate) fn write(&self, out: &mut [u8]) -> Result<usize, MalformedBody> {
        let mut len = 0;
        let index_mask = index_mask(self.params.len());
        for key in &self.order {
            let param = self.params[(key & index_mask) as usize];
            len += param.name.write(&mut out[len..])?;
            len += param.value.write(&mut out[len..])?;
        }
        Ok(len)
    }
}

/// The decoded value of every parameter called `name` in a form-encoded `body` (or query
/// string), in order: `None` for one whose value is not valid (a bad escape, not UTF-8). For
/// choosing a key before the signature is checked: nothing here is trusted until it verifies.
pub(crate) fn param_values<'b>(
    body: &'b [u8],
    name: &'b str,
) -> impl Iterator<Item = Option<String>> + 'b {
    body.split(|&b| b == b'&').filter_map(move |pair| {
        // Per pair: a bad escape elsewhere in the body says nothing about this parameter.
        let (raw_name, raw_value) = split_pair(pair);
        // The name compared as it decodes, without allocating for the names that differ.
        let invalid = Cell::new(false);
        let name_field = Field::in_body(raw_name, 0, raw_name.len(), true);
        if !name_field.bytes(&invalid).eq(name.bytes()) || invalid.get() {
            return None;
        }
        Some(decode_field(raw_value).ok())
    })
}

/// A pair's name and value as written: split at the first `=`; without one, an empty value.
fn split_pair(pair: &[u8]) -> (&[u8], &[u8]) {
    match pair.iter().position(|&b| b == b'=') {
        Some(eq) => (&pair[..eq], &pair[eq + 1..]),
        None => (pair, &pair[pair.len()..]),
    }
}

/// One name or value decoded as Twilio signs it (`+` a space, `%XX` a byte), strictly.
fn decode_field(raw: &[u8]) -> Result<String, MalformedBody> {
    let invalid = Cell::new(false);
    let bytes: Vec<u8> = Field::in_body(raw, 0, raw.len(), true)
        .bytes(&invalid)
        .collect();
    if invalid.get() {
        return Err(MalformedBody::InvalidPercentEncoding);
    }
    String::from_utf8(bytes).map_err(|_| MalformedBody::InvalidUtf8)
}

/// Decoded form parameters, in any order: what [`compute_signature`](crate::compute_signature),
/// [`signed_string`](crate::signed_string) and [`Validator::validate`](crate::Validator::validate)
/// take. Implemented for slices and `Vec`s of `(name, value)` pairs of any string types, and for
/// arrays of `(&str, &str)`, so that `&[]` (a GET or JSON webhook: no parameters) needs no
/// type annotation:
///
/// ```
/// use twilio_webhook::compute_signature;
///
/// let get = compute_signature("token", "https://example.com/status?CallSid=CA1", &[]);
/// let form = compute_signature("token", "https://example.com/sms", &[("Body", "hi")]);
/// let owned = vec![("Body".to_string(), "hi".to_string())];
/// assert_eq!(form, compute_signature("token", "https://example.com/sms", &owned));
/// # assert_ne!(get, form);
/// ```
pub trait FormParams {
    /// The pairs, as names and values.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)>;
    /// How many pairs.
    fn count(&self) -> usize;
}

impl<K: AsRef<str>, V: AsRef<str>> FormParams for [(K, V)] {
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
    fn count(&self) -> usize {
        self.len()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FormParams for Vec<(K, V)> {
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.as_slice().pairs()
    }
    fn count(&self) -> usize {
        self.len()
    }
}

/// Arrays of `(&str, &str)` only: one array impl is what lets `&[]` infer its type.
impl<const N: usize> FormParams for [(&str, &str); N] {
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().copied()
    }
    fn count(&self) -> usize {
        N
    }
}

/// The decoded parameters of an `application/x-www-form-urlencoded` body, in wire order,
/// decoded exactly as the validator decodes them (`+` is a space, `%XX` a byte, a pair without
/// `=` has an empty value, empty pairs are skipped; bad escapes and invalid UTF-8 are errors).
///
/// ```
/// use twilio_webhook::form_params;
///
/// let params = form_params(b"From=%2B14155550123&Body=Hello+there&flag").unwrap();
/// assert_eq!(params, [
///     ("From".to_owned(), "+14155550123".to_owned()),
///     ("Body".to_owned(), "Hello there".to_owned()),
///     ("flag".to_owned(), String::new()),
/// ]);
/// ```
pub fn form_params(body: &[u8]) -> Result<Vec<(String, String)>, MalformedBody> {
    form_params_with_limit(body, usize::MAX)
}

/// [`form_params`], refusing a body of more than `max_params` pairs as the validator does
/// ([`Validator::max_params`](crate::Validator::max_params)): the count is taken before anything
/// is decoded or the body's UTF-8 read, so a flood of tiny pairs costs one scan, not a
/// `String` per pair.
///
/// ```
/// use twilio_webhook::{MalformedBody, form_params_with_limit};
///
/// assert_eq!(form_params_with_limit(b"a=1&b=2", 2).unwrap().len(), 2);
/// assert_eq!(
///     form_params_with_limit(b"a=1&b=2&c=3", 2),
///     Err(MalformedBody::TooManyParameters { limit: 2 })
/// );
/// ```
pub fn form_params_with_limit(
    body: &[u8],
    max_params: usize,
) -> Result<Vec<(String, String)>, MalformedBody> {
    let pairs = || body.split(|&b| b == b'&').filter(|pair| !pair.is_empty());
    if pairs().nth(max_params).is_some() {
        return Err(MalformedBody::TooManyParameters { limit: max_params });
    }
    if core::str::from_utf8(body).is_err() {
        return Err(MalformedBody::InvalidUtf8);
    }
    pairs()
        .map(|pair| {
            let (name, value) = split_pair(pair);
            Ok((decode_field(name)?, decode_field(value)?))
        })
        .collect()
}

/// `params` as an `application/x-www-form-urlencoded` body, as Twilio encodes it: `+` for a
/// space, `%XX` for every byte but letters, digits and `-._*`. The inverse of [`form_params`].
///
/// ```
/// use twilio_webhook::form_body;
///
/// assert_eq!(form_body(&[("To", "+1 415"), ("Body", "é&=")]), "To=%2B1+415&Body=%C3%A9%26%3D");
/// ```
pub fn form_body<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut out = String::new();
    let encode = |text: &str, out: &mut String| {
        for byte in text.bytes() {
            match byte {
                b' ' => out.push('+'),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(char::from(byte));
                }
                _ => {
                    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
                    out.push('%');
                    out.push(char::from(DIGITS[usize::from(byte >> 4)]));
                    out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
                }
            }
        }
    };
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode(name.as_ref(), &mut out);
        out.push('=');
        encode(value.as_ref(), &mut out);
    }
    out
}

/// Runs `f` with a zeroed buffer of at least `len` bytes: on the stack when that is small, as
/// it is for every webhook Twilio documents, else on the heap.
pub(crate) fn with_buffer<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    if len <= 256 {
        f(&mut [0u8; 256])
    } else if len <= 1024 {
        f(&mut [0u8; 1024])
    } else if len <= 4096 {
        f(&mut [0u8; 4096])
    } else if len <= 16 * 1024 {
        // An MMS with many media: still no allocation.
        f(&mut [0u8; 16 * 1024])
    } else {
        f(&mut vec![0u8; len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans and sorts `body`, with at most `max_params` parameters.
    fn fill(body: &[u8], max_params: usize) -> Result<(), MalformedBody> {
        let form = FormBody::new(body);
        SortedParams::new().fill_from_form_body(&form, max_params)
    }

    fn signed(body: &str) -> Result<String, MalformedBody> {
        let form = FormBody::new(body.as_bytes());
        let mut params = SortedParams::new();
        params.fill_from_form_body(&form, usize::MAX)?;
        let mut out = vec![0u8; params.len_bound()];
        let len = params.write(&mut out)?;
        out.truncate(len);
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

    /// Parameters in the order of a plain sort of the decoded pairs, duplicates removed.
    fn sorted_plainly(body: &str) -> String {
        let mut pairs = form_params(body.as_bytes()).unwrap();
        pairs.sort();
        pairs.dedup();
        pairs
            .into_iter()
            .map(|(name, value)| name + &value)
            .collect()
    }

    /// `body` signed the plain way: every field decoded byte by byte, the pairs sorted as
    /// bytes and deduplicated.
    fn reference_signed(body: &str) -> Option<String> {
        let decode = |raw: &str| {
            let invalid = Cell::new(false);
            let bytes: Vec<u8> = Field::in_body(raw.as_bytes(), 0, raw.len(), true)
                .bytes(&invalid)
                .collect();
            (!invalid.get()).then_some(bytes)
        };
        let mut pairs = Vec::new();
        for pair in body.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            pairs.push((decode(name)?, decode(value)?));
        }
        pairs.sort();
        pairs.dedup();
        let text: Vec<u8> = pairs
            .into_iter()
            .flat_map(|(n, v)| [n, v].concat())
            .collect();
        String::from_utf8(text).ok()
    }

    proptest::proptest! {
        /// Names that tie for one, two or three words (`MediaContentType12`), repeated, and
        /// spelt with escapes (`Media%55rl1` is `MediaUrl1`), in any order: the order and
        /// the duplicates removed are those of a plain sort of the decoded pairs.
        #[test]
        fn names_that_tie_for_words_are_ordered_as_a_plain_sort_orders_them(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(&["MediaUrl", "MediaContentType", "Media%55rl",
                        "MediaContent%54ype", "AddOns", "a", "a%00", "MediaContentTypeX"][..]),
                    proptest::option::of(0usize..40),
                    proptest::sample::select(&["", "x", "x%00", "y", "image%2Fjpeg", "a+b"][..]),
                ),
                0..120,
            ),
        ) {
            let body = pairs
                .iter()
                .map(|(name, n, value)| match n {
                    Some(n) => format!("{name}{n}={value}"),
                    None => format!("{name}={value}"),
                })
                .collect::<Vec<_>>()
                .join("&");
            proptest::prop_assert_eq!(signed(&body).ok(), reference_signed(&body), "{}", body);
        }
    }

    #[test]
    fn names_alike_in_every_byte_the_sort_key_keeps_are_ordered_in_full() {
        // A sort key keeps 7 bytes of the name up to 256 parameters, fewer beyond: names that
        // differ only in the 7th, 8th or a later byte, among 3 to 5,000 parameters (sorted by
        // rank up to 32, by the standard library beyond).
        for count in [3usize, 20, 32, 33, 300, 5000] {
            let body: Vec<String> = (0..count)
                .map(|n| {
                    let n = n.wrapping_mul(7919) % count;
                    let tail = ["", "a", "b", "aa"][n % 4];
                    format!(
                        "Abcde{}{}{tail}={}",
                        (b'a' + (n / 4 % 3) as u8) as char,
                        n % 5,
                        n % 7
                    )
                })
                .collect();
            let body = body.join("&");
            assert_eq!(
                signed(&body).unwrap(),
                sorted_plainly(&body),
                "{count} parameters"
            );
        }
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
    fn long_encoded_values_spill_past_the_inline_buffer() {
        let value = "%41".repeat(5000);
        assert_eq!(
            signed(&format!("k={value}")).unwrap(),
            format!("k{}", "A".repeat(5000))
        );
    }

    #[test]
    fn chosen_values_decode_as_the_byte_decoder_decodes_them() {
        let cases = [
            "k=a+b+c+d+e+f+g+h+i+j",
            "k=%41%42%43%44%45%46%47%48%49",
            "k=12345678%2B12345678+12345678",
            "k=+++++++++++++++++",
            "k=%E2%98%95+coffee+%F0%9F%93%B8+pics+and+more+text+here",
        ];
        for body in cases {
            let value = body.strip_prefix("k=").unwrap();
            let expected: Vec<u8> = Field::in_body(value.as_bytes(), 0, value.len(), true)
                .bytes(&Cell::new(false))
                .collect();
            let expected = format!("k{}", String::from_utf8(expected).unwrap());
            assert_eq!(signed(body).unwrap(), expected, "{body}");
        }
    }

    #[test]
    fn a_block_read_past_the_field_decodes_nothing_of_the_next_one() {
        // Values that end at every offset of a 16-byte block, followed by escapes and `+`.
        for len in 0..48 {
            for head in ["+", "%41", "x"] {
                for next in ["&%25+=%2B", "%2B", "&+%41=+"] {
                    let value = format!("{head}{}", "y".repeat(len));
                    let body = format!("k={value}{next}");
                    let mut out = vec![0u8; value.len() + SLACK];
                    let field = Field::in_body(body.as_bytes(), 2, 2 + value.len(), true);
                    let written = field.write_long_or_encoded(&mut out).unwrap();
                    let decoded = head.replace('+', " ").replace("%41", "A");
                    let expected = format!("{decoded}{}", "y".repeat(len));
                    assert_eq!(&out[..written], expected.as_bytes(), "{body}");
                }
            }
        }
    }

    proptest::proptest! {
        /// The block decoder against the byte-at-a-time one, on values of every length made of
        /// escapes (valid, non-ASCII, broken), `+` and plain bytes, with a next parameter that
        /// starts with `%` and `+` right where the value ends: the bytes a block reads past the
        /// field must change nothing.
        #[test]
        fn the_block_decoder_agrees_with_the_byte_decoder(
            pieces in proptest::collection::vec(
                proptest::sample::select(&["a", "Z9", "+", "%2F", "%3a", "%C3%A9", "%E2%98%95",
                    "%F0%9F%93%B8", "%zz", "%4", "%", "%C3", "-._*"][..]),
                0..60,
            ),
            next in proptest::sample::select(&["", "&%25+=%2B", "&+%41=+", "%"][..]),
        ) {
            let value = pieces.concat();
            let body = format!("k={value}{next}");
            let invalid = Cell::new(false);
            let reference: Vec<u8> = Field::in_body(value.as_bytes(), 0, value.len(), true)
                .bytes(&invalid)
                .collect();
            let mut out = vec![0u8; value.len() + SLACK];
            let field = Field::in_body(body.as_bytes(), 2, 2 + value.len(), true);
            match field.write_long_or_encoded(&mut out) {
                Ok(len) => {
                    proptest::prop_assert!(!invalid.get(), "{body}: accepted a bad escape");
                    proptest::prop_assert_eq!(&out[..len], &reference[..], "{}", body);
                    proptest::prop_assert!(core::str::from_utf8(&reference).is_ok());
                }
                Err(MalformedBody::InvalidPercentEncoding) => {
                    proptest::prop_assert!(invalid.get(), "{body}: refused a good escape");
                }
                Err(MalformedBody::InvalidUtf8) => {
                    proptest::prop_assert!(!invalid.get());
                    proptest::prop_assert!(core::str::from_utf8(&reference).is_err());
                }
                Err(other) => proptest::prop_assert!(false, "{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn plus_inside_a_word_of_other_bytes_is_the_only_byte_changed() {
        // Exercises every byte position of two 16-byte blocks.
        for at in 0..32 {
            let mut value = vec![b'x'; 32];
            value[at] = b'+';
            let body = format!("k={}", String::from_utf8(value.clone()).unwrap());
            value[at] = b' ';
            assert_eq!(
                signed(&body).unwrap(),
                format!("k{}", String::from_utf8(value).unwrap())
            );
        }
    }

    #[test]
    fn param_values_decodes_names_and_values_and_finds_every_copy() {
        let values = |body: &[u8], name| param_values(body, name).collect::<Vec<_>>();
        let body = b"To=%2B1&Account%53id=AC%31&AccountSid=AC2";
        assert_eq!(
            values(body, "AccountSid"),
            [Some("AC1".to_owned()), Some("AC2".to_owned())]
        );
        assert_eq!(values(body, "To"), [Some("+1".to_owned())]);
        assert_eq!(values(body, "From"), []);
        assert_eq!(values(b"AccountSid=%FF", "AccountSid"), [None]);
        assert_eq!(values(b"AccountSid=%zz", "AccountSid"), [None]);
        assert_eq!(
            values(b"%zz=1&AccountSid=AC1", "AccountSid"),
            [Some("AC1".to_owned())]
        );
    }

    #[test]
    fn bad_escapes_are_refused() {
        for body in [
            "a=%",
            "a=%4",
            "a=%4g",
            "a=%%41",
            "%zz=1",
            "a=100%",
            "a=12345678%zz",
            "%=1",
            // An invalid duplicate is refused, not de-duplicated away.
            "a=%4&a=%4",
            "a=%254&a=%4",
            "a=%4&a=%254",
        ] {
            assert_eq!(
                signed(body),
                Err(MalformedBody::InvalidPercentEncoding),
                "{body}"
            );
        }
    }

    #[test]
    fn more_pairs_than_the_limit_are_refused_without_scanning_the_rest() {
        let too_many = MalformedBody::TooManyParameters { limit: 3 };
        let form = FormBody::new(b"a=1&b=2&c=3");
        let mut params = SortedParams::new();
        assert_eq!(params.fill_from_form_body(&form, 3), Ok(()));
        for body in ["a=1&b=2&c=3&d=4", "a&a&a&a", "a&b&c&d&", "a=1&b=2&c=3&d"] {
            let form = FormBody::new(body.as_bytes());
            let mut params = SortedParams::new();
            assert_eq!(
                params.fill_from_form_body(&form, 3),
                Err(too_many),
                "{body}"
            );
        }
        // Empty pairs are not parameters and do not count.
        let form = FormBody::new(b"&&&a=1&&&b=2&&&");
        let mut params = SortedParams::new();
        assert_eq!(params.fill_from_form_body(&form, 2), Ok(()));
        // Refused after the fourth pair: nothing past it is kept.
        let flood = "a&".repeat(500_000);
        let form = FormBody::new(flood.as_bytes());
        let mut params = SortedParams::new();
        assert_eq!(params.fill_from_form_body(&form, 3), Err(too_many));
        assert!(params.params.len() <= 4);
    }

    #[test]
    fn invalid_utf8_after_decoding_is_refused() {
        for body in ["a=%FF", "a=%C3", "a=%C3%28", "%ED%A0%80=1", "a=%F0%9F%98"] {
            assert_eq!(signed(body), Err(MalformedBody::InvalidUtf8), "{body}");
        }
        assert_eq!(fill(b"a=\xff", 10).err(), Some(MalformedBody::InvalidUtf8));
        // A lead byte escaped, followed by a raw non-ASCII character, is not UTF-8 either.
        assert_eq!(signed("a=%C3\u{a9}"), Err(MalformedBody::InvalidUtf8));
        assert_eq!(signed("a=%C3%A9").unwrap(), "a\u{e9}");
    }

    #[test]
    fn raw_bytes_are_checked_as_utf8_wherever_they_fall_across_the_scan_blocks() {
        // Characters and broken sequences at every offset around the 64-byte blocks, some
        // straddling a boundary, one or two of them in a long ASCII body: refused exactly when
        // the body is not UTF-8.
        let pieces: [&[u8]; 6] = [
            "\u{e9}".as_bytes(),
            "\u{1f600}".as_bytes(),
            b"\xc3",
            b"\x80",
            b"\xf0\x9f\x98",
            b"\xed\xa0\x80",
        ];
        for first in 0..200 {
            for (k, piece) in pieces.iter().enumerate() {
                let mut body = vec![b'a'; 260];
                body[2] = b'=';
                body[first + 3..first + 3 + piece.len()].copy_from_slice(piece);
                let second = pieces[(k + first) % pieces.len()];
                body[250..250 + second.len()].copy_from_slice(second);
                let got = fill(&body, 10).err();
                let want = core::str::from_utf8(&body)
                    .is_err()
                    .then_some(MalformedBody::InvalidUtf8);
                assert_eq!(got, want, "{piece:?} at {}, then {second:?}", first + 3);
            }
        }
    }
}
