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
use super::coerce::parse_plain_decimal;

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
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let rest = b.get(i..)?;
    let k = memchr::memchr2(b'"', b'\\', rest)?;
    if rest[k] != b'"' || rest[..k].iter().any(|&c| c < 0x20) {
        return None;
    }
    Some(i + k)
}

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
    let mut i = start;
    let neg = b.get(i) == Some(&b'-');
    if neg {
        i += 1;
    }
    let int_start = i;
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(b, i + 1),
        _ => return None,
    }
    let int_end = i;
    let mut float = false;
    if b.get(i) == Some(&b'.') {
        let d = i + 1;
        i = digits(b, d);
        if i == d {
            return None;
        }
        float = true;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let d = i;
        i = digits(b, d);
        if i == d {
            return None;
        }
        float = true;
    }
    let token = text.get(start..i)?;
    if !float {
        // up to 18 digits cannot overflow an i64; longer ones as `value_of` reads them
        if int_end - int_start <= 18 {
            let m = b[int_start..int_end]
                .iter()
                .fold(0i64, |m, &c| m * 10 + i64::from(c - b'0'));
            return Some((i, Value::Int(if neg { -m } else { m })));
        }
        return token.parse::<i64>().ok().map(|v| (i, Value::Int(v)));
    }
    let v = match parse_plain_decimal(token) {
        Some(v) => v,
        None => token.parse::<f64>().ok()?,
    };
    (!v.is_infinite()).then_some((i, Value::Real(v)))
}

/// Scan `text` as one flat JSON object, handing each key and its value to `on_pair` (which may
/// give up with None, e.g. for a key it does not know). Some(()) when the whole line was read
/// (at least one pair); None when serde_json must read it (see the module docs), possibly
/// after some pairs were handed over.
#[inline]
pub(super) fn scan_line(
    text: &str,
    mut on_pair: impl FnMut(&str, Slot) -> Option<()>,
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
    loop {
        // at a key's opening quote
        let end = string_end(b, i + 1)?;
        let key = text.get(i + 1..end)?;
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
        on_pair(key, slot)?;
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
