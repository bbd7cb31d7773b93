//! A JSON Lines record that is one flat object, scanned without serde_json (as `csv_plain`
//! splits plain CSV lines without csv-core).
//!
//! The common line, `{"key": value, ...}` with keys and string values without escapes or
//! control characters and values that are strings, numbers (integers within 64 bits, floats
//! within range), `true`, `false` or `null`, is read in one pass over its bytes: each key and
//! value handed over as the serde_json path would make it (a string as its span of the line, an
//! integer as `Int`, a float as `Real` parsed as `str::parse` parses it). Anything else -- a
//! nested value, an escape, an integer beyond 64 bits, `1e400`, `{}`, a key the caller does not
//! know, any syntax error -- makes [`scan_line`] give up (`None`), and the caller reads the line
//! through serde_json, which decides its values, or its rejection and the reason's words. So the
//! scanner only has to be exact on the lines it accepts: every line it accepts is valid JSON
//! that serde_json reads to the same pairs (`jsonl_flat_tests.rs` checks both paths agree).

use super::batch::Value;
use super::coerce::{eight_digits_value, EXACT_POW10};

/// One value of a record: a string without escapes is a span of the line.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Slot {
    Null,
    Span(usize, usize),
    Val(Value),
}

/// JSON's whitespace from `i` on: the index of the first other byte.
#[inline(always)]
fn ws(b: &[u8], i: usize) -> usize {
    // the usual cases first: no space, or one
    match b.get(i) {
        Some(b' ') if !matches!(b.get(i + 1), Some(b' ' | b'\t' | b'\n' | b'\r')) => i + 1,
        Some(b' ' | b'\t' | b'\n' | b'\r') => ws_run(b, i),
        _ => i,
    }
}

fn ws_run(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The closing quote of the string whose text starts at `i`, when the string holds no escape
/// and no control character (which JSON forbids raw); None otherwise.
#[inline(always)]
pub(super) fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // 8 bytes at a time: a byte that is `"`, `\` or below 0x20 sets its high bit in `hit`.
    // Each test (a zero byte of `w ^ c`, a byte of `w` below 0x20) can only set spurious bits
    // in bytes above one that truly matches, so the lowest bit set marks the first such byte.
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let quote = w ^ (ONES * u64::from(b'"'));
        let slash = w ^ (ONES * u64::from(b'\\'));
        let hit = (quote.wrapping_sub(ONES) & !quote
            | slash.wrapping_sub(ONES) & !slash
            | w.wrapping_sub(ONES * 0x20) & !w)
            & HIGH;
        if hit != 0 {
            let k = i + (hit.trailing_zeros() / 8) as usize;
            return (b[k] == b'"').then_some(k);
        }
        i += 8;
    }
    loop {
        match *b.get(i)? {
            b'"' => return Some(i),
            b'\\' | 0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// The end of the run of ASCII digits from `i`.
#[inline]
fn digits(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

/// `10^k` for k in 0..=8.
const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Read the run of ASCII digits from `start` into `m` (`m * 10 + digit` for each, wrapping:
/// the caller bounds the count); returns how many there were. Eight bytes at a time: the
/// digits leading a word are counted (a byte is a digit when its high nibble is 3 in the byte
/// and in the byte plus 6, simdjson's test; a carry out of a non-digit byte only disturbs the
/// bytes above it, so the lowest non-digit is exact), shifted to the top of the word and
/// reduced together (`coerce::eight_digits_value`: the zero bytes below count as zeros).
#[inline(always)]
fn digit_run(b: &[u8], start: usize, m: &mut u64) -> usize {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    let mut i = start;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let nibbles = (w & HIGH) | ((w.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4);
        let k = ((nibbles ^ 0x3333_3333_3333_3333).trailing_zeros() / 8) as usize;
        if k == 0 {
            return i - start;
        }
        *m = m
            .wrapping_mul(POW10[k])
            .wrapping_add(eight_digits_value(w << (8 * (8 - k))));
        i += k;
        if k < 8 {
            return i - start;
        }
    }
    while let Some(&c) = b.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        *m = m.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        i += 1;
    }
    i - start
}

/// The JSON number starting at `i` (grammar checked here): where it ends and its value as
/// `json_value::value_of` gives it; None for an invalid number, an integer beyond 64 bits or a
/// float that overflows (serde_json's path words or keeps those).
#[inline(always)]
fn number(b: &[u8], start: usize) -> Option<(usize, Value)> {
    let neg = b.get(start) == Some(&b'-');
    let int_start = start + usize::from(neg);
    // the digits as one integer (wrapping beyond 19 digits: then unused)
    let mut m = 0u64;
    let int = digit_run(b, int_start, &mut m);
    if int == 0 || (int > 1 && b[int_start] == b'0') {
        return None; // no digit, or a leading zero
    }
    let mut i = int_start + int;
    let mut frac = 0;
    let mut exp = false;
    if b.get(i) == Some(&b'.') {
        frac = digit_run(b, i + 1, &mut m);
        if frac == 0 {
            return None;
        }
        i += 1 + frac;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let d = digits(b, i);
        if d == i {
            return None;
        }
        i = d;
        exp = true;
    }
    // the token is ASCII (checked above)
    let token = || std::str::from_utf8(&b[start..i]).ok();
    if frac == 0 && !exp {
        // up to 18 digits cannot overflow an i64; longer ones as `value_of` reads them
        if int <= 18 {
            let m = m as i64;
            return Some((i, Value::Int(if neg { -m } else { m })));
        }
        return token()?.parse::<i64>().ok().map(|v| (i, Value::Int(v)));
    }
    let v = if !exp && int + frac <= 19 && m <= 1 << 53 {
        // Clinger's fast path (as `coerce::parse_plain_decimal`): `m` and `10^frac` are exact
        // doubles, so one correctly rounded division gives `str::parse`'s value
        let v = m as f64 / EXACT_POW10[frac];
        if neg {
            -v
        } else {
            v
        }
    } else {
        token()?.parse::<f64>().ok()?
    };
    (!v.is_infinite()).then_some((i, Value::Real(v)))
}

/// How many ASCII digits lead `b[i..]` (as [`digit_run`], without their value).
#[inline(always)]
fn digit_count(b: &[u8], start: usize) -> usize {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    let mut i = start;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = word(chunk);
        let nibbles = (w & HIGH) | ((w.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4);
        let k = ((nibbles ^ 0x3333_3333_3333_3333).trailing_zeros() / 8) as usize;
        i += k;
        if k < 8 {
            return i - start;
        }
    }
    digits(b, i) - start
}

/// The end of the number-like token starting at `i` (keys-only scan: its spelling is only
/// roughly checked), None when there is none.
#[inline(always)]
fn skip_number(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + usize::from(b.get(start) == Some(&b'-'));
    i += digit_count(b, i);
    if b.get(i) == Some(&b'.') {
        i += 1 + digit_count(b, i + 1);
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(b, i);
    }
    (i > start).then_some(i)
}

/// A column's name as a line spells it when it holds no escape: the name and its closing quote,
/// also as little-endian 8-byte words (zero-padded) with the mask of the bytes that count.
pub(super) struct Spelling {
    bytes: Vec<u8>,
    words: Vec<(u64, u64)>,
}

#[inline(always)]
fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(w)
}

impl Spelling {
    pub(super) fn new(name: &str) -> Self {
        let bytes = [name.as_bytes(), b"\""].concat();
        let words = bytes
            .chunks(8)
            .map(|c| (word(c), u64::MAX >> (8 * (8 - c.len()))))
            .collect();
        Spelling { bytes, words }
    }

    /// Whether `at` starts with this spelling (a word at a time when `at` is long enough).
    #[inline(always)]
    pub(super) fn is_at(&self, at: &[u8]) -> bool {
        if at.len() < 8 * self.words.len() {
            return at.starts_with(&self.bytes);
        }
        for (k, &(w, mask)) in self.words.iter().enumerate() {
            if word(&at[8 * k..8 * k + 8]) & mask != w {
                return false;
            }
        }
        true
    }
}

/// The columns' names as a line spells its keys, in order; None for a name a line cannot spell
/// without an escape (a quote, a backslash, a control character): such keys go to serde_json.
#[derive(Default)]
pub(super) struct KeyOrder {
    names: Vec<Option<Spelling>>,
}

impl KeyOrder {
    #[cfg(test)]
    pub(super) fn new(columns: &[String]) -> Self {
        let mut order = KeyOrder::default();
        columns.iter().for_each(|c| order.push(c));
        order
    }

    /// Add the next column.
    pub(super) fn push(&mut self, name: &str) {
        let plain = !name.bytes().any(|x| x == b'"' || x == b'\\' || x < 0x20);
        self.names.push(plain.then(|| Spelling::new(name)));
    }
}

/// Scan `line` as one flat JSON object, handing each pair to `put` as (column, value). Keys
/// usually come in the columns' order (`order`): the next column's name is tried first, byte
/// for byte; any other key goes to `column` (None: a key the caller does not know, which
/// serde_json's path must word). Some(()) when the whole line was read (at least one pair);
/// None when serde_json must read it (see the module docs), possibly after some pairs.
#[inline]
pub(super) fn scan_line(
    line: &[u8],
    order: &KeyOrder,
    column: impl Fn(&str) -> Option<usize>,
    put: impl FnMut(usize, Slot),
) -> Option<()> {
    scan::<true>(line, order, column, put)
}

/// Whether every key of `line` is a known column, for the first pass (which adds the keys of
/// a line that brings a new one): Some(()) when `line` is a flat object whose keys all are
/// (`column` knows them). The values are skipped, numbers without checking their spelling: a
/// line that is not valid JSON may pass, which is right there -- its keys are all known, so
/// it brings nothing either way. None: the first pass must look at the line itself.
#[inline]
pub(super) fn keys_known(
    line: &[u8],
    order: &KeyOrder,
    column: impl Fn(&str) -> Option<usize>,
) -> Option<()> {
    scan::<false>(line, order, column, |_, _| {})
}

#[inline(always)]
fn scan<const VALUES: bool>(
    b: &[u8],
    order: &KeyOrder,
    column: impl Fn(&str) -> Option<usize>,
    mut put: impl FnMut(usize, Slot),
) -> Option<()> {
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    if b.get(i) != Some(&b'"') {
        return None; // `{}` and anything odd: serde_json words it
    }
    let mut next = 0;
    loop {
        // at a key's opening quote
        let (col, end) = match order.names.get(next) {
            Some(Some(q)) if q.is_at(&b[i + 1..]) => (next, i + q.bytes.len()),
            _ => {
                let end = string_end(b, i + 1)?;
                (column(std::str::from_utf8(&b[i + 1..end]).ok()?)?, end)
            }
        };
        i = end + 1;
        if b.get(i) != Some(&b':') {
            i = ws(b, i);
            if b.get(i) != Some(&b':') {
                return None;
            }
        }
        i = ws(b, i + 1);
        let literal = |word: &[u8]| b.get(i..i + word.len()) == Some(word);
        let slot = match *b.get(i)? {
            b'"' => {
                let e = string_end(b, i + 1)?;
                let s = Slot::Span(i + 1, e);
                i = e + 1;
                s
            }
            b'n' if literal(b"null") => {
                i += 4;
                Slot::Null
            }
            b't' if literal(b"true") => {
                i += 4;
                Slot::Val(Value::Bool(true))
            }
            b'f' if literal(b"false") => {
                i += 5;
                Slot::Val(Value::Bool(false))
            }
            b'-' | b'0'..=b'9' if !VALUES => {
                i = skip_number(b, i)?;
                Slot::Null
            }
            b'-' | b'0'..=b'9' => {
                let (e, v) = number(b, i)?;
                i = e;
                Slot::Val(v)
            }
            _ => return None,
        };
        put(col, slot);
        next = col + 1;
        if !matches!(b.get(i), Some(b',' | b'}')) {
            i = ws(b, i);
        }
        match b.get(i) {
            Some(b',') => {
                i = ws(b, i + 1);
                if b.get(i) != Some(&b'"') {
                    return None;
                }
            }
            Some(b'}') => break,
            _ => return None,
        }
    }
    (ws(b, i + 1) == b.len()).then_some(())
}
