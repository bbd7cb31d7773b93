//! One JSON value of a JSONL record as a batch value, from its raw text (already checked for
//! JSON syntax by serde_json): what the JSONL loader stored when it ran in Python, kept.
//!
//! * strings, booleans, null: themselves;
//! * integers: `Int` when they fit 64 bits, else their exact digits as text (a field's coercion
//!   decides: an integer field rejects them, a string field keeps them);
//! * other numbers: `Real` (correctly rounded); one that overflows to infinity (`1e400`) makes
//!   the record malformed, as it did with orjson;
//! * objects and arrays: compact JSON text, keys in first-seen order with the last duplicate's
//!   value, strings with orjson's escapes, integers exact, floats spelled as orjson spells them;
//!   a record nested deeper than [`MAX_DEPTH`] levels (the object itself counts) is malformed,
//!   as is a string holding a lone UTF-16 surrogate escape.

use std::fmt::Write;

use super::batch::Value;

/// orjson's nesting limit: a record nested deeper is malformed.
pub const MAX_DEPTH: usize = 1024;

/// The batch value of one raw JSON value at nesting `depth` (1: a key of the record).
pub fn value_of(raw: &str, depth: usize) -> Result<Value, String> {
    let b = raw.as_bytes();
    match b.first() {
        Some(b'"') => string_of(raw).map(Value::Text),
        Some(b't') => Ok(Value::Bool(true)),
        Some(b'f') => Ok(Value::Bool(false)),
        Some(b'n') => Ok(Value::Null),
        Some(b'{' | b'[') => {
            let mut out = String::with_capacity(raw.len());
            let mut p = Parser { b, i: 0 };
            p.write(&mut out, depth + 1)?;
            Ok(Value::Text(out))
        }
        _ => number_of(raw),
    }
}

/// A JSON number: `Int` in 64 bits, exact digits beyond, else `Real`.
fn number_of(raw: &str) -> Result<Value, String> {
    if !raw.bytes().any(|c| matches!(c, b'.' | b'e' | b'E')) {
        return Ok(match raw.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Text(raw.to_string()),
        });
    }
    let f: f64 = raw.parse().map_err(|_| format!("invalid number {raw:?}"))?;
    if f.is_infinite() {
        return Err(format!(
            "number is infinity when parsed as double: {raw:.40}"
        ));
    }
    Ok(Value::Real(f))
}

/// The text of a JSON string literal (quotes included in `raw`).
fn string_of(raw: &str) -> Result<String, String> {
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains('\\') {
        return Ok(inner.to_string());
    }
    serde_json::from_str::<String>(raw).map_err(|e| e.to_string())
}

/// A float as orjson writes it: shortest round-trip digits, fixed notation for decimal
/// exponents -5..=15 (`.0` when integral), else `1.5e+16` / `1e-7`.
pub fn float_json(v: f64, out: &mut String) {
    let sci = format!("{v:e}"); // shortest round-trip digits: "-1.25e-7"
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mant) = mant.strip_prefix('-').map_or(("", mant), |m| ("-", m));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    out.push_str(sign);
    if (-5..=15).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(mant);
        let _ = write!(out, "e{}{}", if exp > 0 { "+" } else { "" }, exp);
    }
}

/// A string written with orjson's escapes.
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Re-writes syntactically valid JSON text compactly (see the module docs).
struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// The end of the token starting at `self.i` (a string literal or a scalar).
    fn token_end(&self) -> usize {
        let b = self.b;
        let mut j = self.i;
        if b.get(j) == Some(&b'"') {
            j += 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            return (j + 1).min(b.len());
        }
        while j < b.len() && !matches!(b[j], b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
            j += 1;
        }
        j
    }

    fn token(&mut self) -> &str {
        let end = self.token_end();
        let s = std::str::from_utf8(&self.b[self.i..end]).unwrap_or("null");
        self.i = end;
        s
    }

    fn write(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => self.object(out, depth),
            Some(b'[') => self.array(out, depth),
            Some(b'"') => {
                let s = string_of(self.token())?;
                write_json_string(&s, out);
                Ok(())
            }
            Some(_) => {
                let token = self.token();
                match value_of(token, depth)? {
                    Value::Null => out.push_str("null"),
                    Value::Bool(v) => out.push_str(if v { "true" } else { "false" }),
                    Value::Int(v) => {
                        let _ = write!(out, "{v}");
                    }
                    Value::Real(v) => float_json(v, out),
                    Value::Text(digits) => out.push_str(&digits), // an integer beyond 64 bits
                }
                Ok(())
            }
            None => Err("unexpected end of a nested value".into()),
        }
    }

    fn too_deep(depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn array(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        Self::too_deep(depth)?;
        self.i += 1;
        out.push('[');
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            out.push(']');
            return Ok(());
        }
        loop {
            self.write(out, depth + 1)?;
            self.ws();
            let c = self.b.get(self.i).copied();
            self.i += 1;
            if c == Some(b',') {
                out.push(',');
            } else {
                out.push(']');
                return Ok(());
            }
        }
    }

    fn object(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        Self::too_deep(depth)?;
        self.i += 1;
        let mut entries: Vec<(String, String)> = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
        } else {
            loop {
                self.ws();
                let key = string_of(self.token())?;
                self.ws();
                self.i += 1; // the colon
                let mut value = String::new();
                self.write(&mut value, depth + 1)?;
                // a duplicate key keeps its first place and takes the last value (a dict)
                match entries.iter_mut().find(|(k, _)| *k == key) {
                    Some(e) => e.1 = value,
                    None => entries.push((key, value)),
                }
                self.ws();
                let c = self.b.get(self.i).copied();
                self.i += 1;
                if c != Some(b',') {
                    break;
                }
            }
        }
        out.push('{');
        for (n, (k, v)) in entries.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            write_json_string(k, out);
            out.push(':');
            out.push_str(v);
        }
        out.push('}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: &str) -> String {
        match value_of(raw, 1).unwrap() {
            Value::Text(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn floats_as_orjson_writes_them() {
        for (v, want) in [
            (1e20, "1e+20"),
            (1.0, "1.0"),
            (1e-7, "1e-7"),
            (1.5e300, "1.5e+300"),
            (123456789.123, "123456789.123"),
            (0.1, "0.1"),
            (1e5, "100000.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (2.5e-5, "0.000025"),
            (-2.5e-5, "-0.000025"),
            (1e-4, "0.0001"),
            (1e-6, "1e-6"),
            (1.25e-7, "1.25e-7"),
            (9.999e15, "9999000000000000.0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            let mut s = String::new();
            float_json(v, &mut s);
            assert_eq!(s, want, "{v}");
        }
    }

    #[test]
    fn scalars_and_nested_values() {
        assert_eq!(value_of("12", 1).unwrap(), Value::Int(12));
        assert_eq!(value_of("-0", 1).unwrap(), Value::Int(0));
        assert_eq!(
            value_of("18446744073709551615", 1).unwrap(),
            Value::Text("18446744073709551615".into())
        );
        assert_eq!(value_of("1E5", 1).unwrap(), Value::Real(1e5));
        assert!(value_of("1e400", 1).is_err());
        assert_eq!(text(r#""a\u00e9\n""#), "aé\n");
        assert!(value_of(r#""\ud800""#, 1).is_err());
        assert_eq!(
            text(
                r#"{ "b" : [1, 2.50, 123456789012345678901234567890, {"x": "\u001f\"é"}], "a": 2, "b": null }"#
            ),
            r#"{"b":null,"a":2}"#
        );
        assert_eq!(
            text(r#"[1, 2.50, 123456789012345678901234567890, {"x": "\u001f\"é"}, [], {}]"#),
            r#"[1,2.5,123456789012345678901234567890,{"x":"\u001f\"é"},[],{}]"#
        );
        assert!(value_of(r#"[1e400]"#, 1).is_err());
        let deep = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        assert!(value_of(&deep(MAX_DEPTH - 1), 1).is_ok());
        assert!(value_of(&deep(MAX_DEPTH), 1).is_err());
    }
}
