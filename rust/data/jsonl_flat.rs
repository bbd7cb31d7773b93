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
use super::coerce::{digits_into, EXACT_POW10};

/// One value of a record: a string without escapes is a span of the line.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Slot {
    Null,
    Span(usize, usize),
    Val(Value),
}

/// JSON's whitespace from `i` on: the index of the first other byte.
#[inline]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The closing quote of the string whose text starts at `i`, when the string holds no escape
/// and no control character (which JSON forbids raw); None otherwise.
#[inline]
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

/// The JSON number starting at `i` (grammar checked here): where it ends and its value as
/// `json_value::value_of` gives it; None for an invalid number, an integer beyond 64 bits or a
/// float that overflows (serde_json's path words or keeps those).
#[inline]
fn number(text: &str, start: usize) -> Option<(usize, Value)> {
    let b = text.as_bytes();
    let neg = b.get(start) == Some(&b'-');
    let int_start = start + usize::from(neg);
    // the digits as one integer (wrapping beyond 19 digits: then unused)
    let mut m = 0u64;
    let int = digits_into(b.get(int_start..)?, &mut m);
    if int == 0 || (int > 1 && b[int_start] == b'0') {
        return None; // no digit, or a leading zero
    }
    let mut i = int_start + int;
    let mut frac = 0;
    let mut exp = false;
    if b.get(i) == Some(&b'.') {
        frac = digits_into(&b[i + 1..], &mut m);
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
    if frac == 0 && !exp {
        // up to 18 digits cannot overflow an i64; longer ones as `value_of` reads them
        if int <= 18 {
            let m = m as i64;
            return Some((i, Value::Int(if neg { -m } else { m })));
        }
        return text.get(start..i)?.parse::<i64>().ok().map(|v| (i, Value::Int(v)));
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
        text.get(start..i)?.parse::<f64>().ok()?
    };
    (!v.is_infinite()).then_some((i, Value::Real(v)))
}

/// The columns' names as a line spells its keys: each name and its closing quote, or None for
/// a name a line cannot spell without an escape (a quote, a backslash, a control character).
pub(super) struct KeyOrder {
    quoted: Vec<Option<Vec<u8>>>,
}

impl KeyOrder {
    pub(super) fn new(columns: &[String]) -> Self {
        let quoted = columns
            .iter()
            .map(|c| {
                let plain = !c.bytes().any(|x| x == b'"' || x == b'\\' || x < 0x20);
                plain.then(|| [c.as_bytes(), b"\""].concat())
            })
            .collect();
        KeyOrder { quoted }
    }
}

/// Scan `text` as one flat JSON object, handing each pair to `put` as (column, value). Keys
/// usually come in the columns' order (`order`): the next column's name is tried first, byte
/// for byte; any other key goes to `column` (None: a key the caller does not know, which
/// serde_json's path must word). Some(()) when the whole line was read (at least one pair);
/// None when serde_json must read it (see the module docs), possibly after some pairs.
#[inline]
pub(super) fn scan_line(
    text: &str,
    order: &KeyOrder,
    column: impl Fn(&str) -> Option<usize>,
    mut put: impl FnMut(usize, Slot),
) -> Option<()> {
    let b = text.as_bytes();
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
        let (col, end) = match order.quoted.get(next) {
            Some(Some(q)) if b[i + 1..].starts_with(q) => (next, i + q.len()),
            _ => {
                let end = string_end(b, i + 1)?;
                (column(text.get(i + 1..end)?)?, end)
            }
        };
        i = ws(b, end + 1);
        if b.get(i) != Some(&b':') {
            return None;
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
            b'-' | b'0'..=b'9' => {
                let (e, v) = number(text, i)?;
                i = e;
                Slot::Val(v)
            }
            _ => return None,
        };
        put(col, slot);
        next = col + 1;
        i = ws(b, i);
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
