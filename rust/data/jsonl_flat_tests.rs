//! Whole reads with flat lines scanned without serde_json (`jsonl_flat`) against every line
//! through serde_json: generated documents (keys and values of every kind and spelling --
//! escapes, unicode, integers beyond 64 bits, floats of every magnitude, nested values, bad
//! keys, duplicate and missing keys, malformed lines, blank lines, CRLF, invalid UTF-8, a BOM,
//! over-long lines), read in generated chunk sizes so lines straddle reads, must give the same
//! columns and batches (cells with their kinds, floats bit for bit, record numbers, lines,
//! bytes, rejects with their reasons and raw text) or the same error.

use std::io::BufReader;

use proptest::prelude::*;

use super::*;
use crate::data::batch::{CellRef, Column};
use crate::data::chunky::Chunky;
use crate::data::jsonl_flat::{scan_line, string_end, KeyOrder, Spelling};

fn cell(c: CellRef<'_>) -> String {
    match c {
        CellRef::Real(f) => format!("Real({f:?} bits {:x})", f.to_bits()),
        other => format!("{other:?}"),
    }
}

fn kind(c: &Column) -> &'static str {
    match c {
        Column::Text(_) => "text",
        Column::Int(_) => "int",
        Column::Real(_) => "real",
        Column::Bool(_) => "bool",
        Column::Any(_) => "any",
    }
}

fn read(data: &[u8], chunk: usize, opts: &JsonlOptions, flat: bool) -> Vec<String> {
    let data = data.to_vec();
    let opened = JsonlReader::from_reader(
        "t.jsonl",
        opts,
        move || BufReader::with_capacity(chunk, Chunky::new(&data, chunk, None)),
        flat,
    );
    let mut r = match opened {
        Ok(r) => r,
        Err(e) => return vec![format!("open: {e}")],
    };
    let mut out = vec![format!("{:?}", r.columns())];
    loop {
        match r.next_batch() {
            Ok(Some(b)) => {
                let kinds: Vec<&str> = b.columns.iter().map(kind).collect();
                out.push(format!(
                    "batch {:?} {:?} {} bytes {kinds:?}",
                    b.record_numbers, b.lines, b.bytes
                ));
                for i in 0..b.len() {
                    let cells: Vec<String> = b.columns.iter().map(|c| cell(c.get(i))).collect();
                    out.push(format!(
                        "{i}: {cells:?} {:?} raw {:?}",
                        b.reject_info(i),
                        b.raw(i).map_err(|e| e.to_string())
                    ));
                }
            }
            Ok(None) => break,
            Err(e) => {
                out.push(format!("error: {e}"));
                break;
            }
        }
    }
    out.push(format!(
        "read {} bytes {}",
        r.records_read(),
        r.bytes_read()
    ));
    out
}

const KEYS: &[&str] = &[
    r#""a""#,
    r#""b""#,
    r#""c""#,
    r#""é""#,
    r#""😀 k""#,
    r#""A""#,
    r#""""#,
    r#""_TC_file_id""#,
    r#""\u0061""#,
    r#""d\"q""#,
    "\"t\tab\"",
    r#""a"#,
];

const VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "nul",
    "tru",
    "falsey",
    "0",
    "-0",
    "01",
    "-",
    "1.",
    ".5",
    "+1",
    "1.5",
    "1.0",
    "-0.0",
    "1e5",
    "1E+5",
    "1e-7",
    "2.5e+3",
    "1e",
    "1e400",
    "-1e400",
    "1e-400",
    "5e-324",
    "0.30000000000000004",
    "9007199254740993",
    "9007199254740993.0",
    "123456789012345678",
    "1234567890123456789",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "NaN",
    "Infinity",
    "0x10",
    r#""""#,
    r#""x""#,
    r#""é😀""#,
    r#""a\nb""#,
    r#""\u00e9""#,
    r#""\ud800""#,
    r#""q\"""#,
    "\"tab\there\"",
    "\"\u{1}\"",
    "\"\u{7f}\"",
    r#""unterminated"#,
    "{}",
    "[]",
    r#"{"x": [1, 2.50, {"y": null}], "x": "\u00e9"}"#,
    r#"[1, "}", 18446744073709551616]"#,
    r#"{"deep": [[[[[]]]]]}"#,
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(VALUES).prop_map(str::to_string),
        2 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        1 => "-?[0-9]{1,3}\\.[0-9]{1,20}(e[+-]?[0-9]{1,3})?",
        2 => any::<i64>().prop_map(|i| i.to_string()),
        1 => "-?[0-9]{1,24}",
        3 => "\"[a-z é😀]{0,6}\"",
    ]
}

fn ws() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&["", "", "", " ", "\t", "  ", "\r"][..])
}

prop_compose! {
    fn pair()(
        w in proptest::collection::vec(ws(), 4),
        key in prop_oneof![6 => proptest::sample::select(&KEYS[..3]), 1 => proptest::sample::select(KEYS)],
        value in value(),
    ) -> String {
        format!("{}{key}{}:{}{value}{}", w[0], w[1], w[2], w[3])
    }
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    let object = (ws(), proptest::collection::vec(pair(), 1..5), ws(), ws())
        .prop_map(|(a, pairs, b, c)| format!("{a}{{{}{b}}}{c}", pairs.join(",")).into_bytes());
    let odd = proptest::sample::select(
        &[
            "",
            "   ",
            "\t",
            "[1]",
            "{}",
            " { } ",
            "\"s\"",
            "12",
            "null",
            "{\"a\":1",
            "{\"a\":1}x",
            "{\"a\":1}}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{,}",
            "{\"a\":1 \"b\":2}",
            "{\"a\":1}{\"b\":2}",
            "{\"a\":\"\u{FEFF}\"}",
        ][..],
    )
    .prop_map(|s| s.as_bytes().to_vec());
    let bad_utf8 = Just(b"{\"a\": \"\xff\"}".to_vec());
    prop_oneof![12 => object, 3 => odd, 1 => bad_utf8]
}

prop_compose! {
    fn document()(
        bom in proptest::bool::weighted(0.1),
        lines in proptest::collection::vec((line(), proptest::bool::weighted(0.2)), 0..30),
        last_newline in any::<bool>(),
    ) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        let n = lines.len();
        for (k, (line, crlf)) in lines.into_iter().enumerate() {
            out.extend_from_slice(&line);
            if k + 1 < n || last_newline {
                out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
        }
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn flat_lines_read_as_serde_json_reads_them(
        doc in document(),
        chunk in 3usize..200,
        batch_rows in 1usize..12,
        max_line_bytes in prop_oneof![Just(16 * 1024 * 1024), 20usize..120],
    ) {
        let opts = JsonlOptions { batch_rows, max_line_bytes, ..JsonlOptions::default() };
        let fast = read(&doc, chunk, &opts, true);
        let slow = read(&doc, chunk, &opts, false);
        prop_assert_eq!(fast, slow, "document {:?}", String::from_utf8_lossy(&doc));
    }

    /// The 8-bytes-at-a-time string scan finds what a byte loop finds.
    #[test]
    fn string_end_is_the_byte_loop(
        bytes in proptest::collection::vec(
            prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20,
                        1 => 0x80u8..=0xff],
            0..40),
        from in 0usize..40,
    ) {
        let naive = bytes.iter().enumerate().skip(from).find(|(_, &c)| c == b'"' || c == b'\\' || c < 0x20)
            .and_then(|(k, &c)| (c == b'"').then_some(k));
        prop_assert_eq!(string_end(&bytes, from), naive);
    }

    /// A name matched a word at a time is matched as `starts_with` matches it.
    #[test]
    fn spelling_is_starts_with(name in "[a-zé_]{0,20}", hay in "[a-zé_\"]{0,30}", cut in 0usize..30) {
        let s = Spelling::new(&name);
        let quoted = format!("{name}\"");
        let q = quoted.as_bytes();
        let cut = [&q[..cut.min(q.len())], hay.as_bytes()].concat();
        for at in [hay.as_bytes(), &[q, hay.as_bytes()].concat(), &cut] {
            prop_assert_eq!(s.is_at(at), at.starts_with(q), "{:?} {:?}", name, at);
        }
    }

    /// Every float spelling JSON allows reads to `str::parse`'s value, bit for bit.
    #[test]
    fn floats_are_str_parse_exact(
        f in any::<f64>().prop_filter("finite", |f| f.is_finite()),
        digits in "-?[1-9][0-9]{0,20}\\.[0-9]{1,25}",
        exp in "[eE][+-]?[0-9]{1,3}",
    ) {
        for token in [format!("{f:?}"), format!("{f:e}"), digits.clone(), format!("{digits}{exp}")] {
            let line = format!("{{\"a\": {token}}}");
            let mut got = None;
            let order = KeyOrder::new(&["a".to_string()]);
            let scanned = scan_line(line.as_bytes(), &order, |_| None, |_, slot| got = Some(slot));
            match token.parse::<f64>() {
                Ok(v) if v.is_finite() => {
                    prop_assert!(scanned.is_some(), "{}", token);
                    let Some(Slot::Val(Value::Real(x))) = got else {
                        return Err(TestCaseError::fail(format!("{token}: {got:?}")));
                    };
                    prop_assert_eq!(x.to_bits(), v.to_bits(), "{}", token);
                }
                _ => prop_assert!(scanned.is_none(), "{}", token),
            }
        }
    }
}

/// The scanner takes the common lines (else the test above would compare serde_json with
/// itself) and leaves the unusual ones to serde_json.
#[test]
fn which_lines_the_scanner_takes() {
    // the benchmark's columns, plus two a line can only spell with escapes
    let names: Vec<String> = [
        "id",
        "customer_id",
        "amount",
        "ratio",
        "sku",
        "region",
        "order_date",
        "note",
        "a",
        "é",
        "q\"",
        "t\t",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let order = KeyOrder::new(&names);
    let takes = |line: &str| {
        let mut pairs = Vec::new();
        scan_line(
            line.as_bytes(),
            &order,
            |k| names.iter().position(|n| n == k),
            |c, v| pairs.push((names[c].clone(), v)),
        )
        .map(|()| pairs)
    };
    let line = r#"{"id": 0, "customer_id": 41158, "amount": 4877.03, "ratio": 0.5049253049340545, "sku": "SKU-82110", "region": "west", "order_date": "2021-11-20", "note": null}"#;
    let pairs = takes(line).unwrap();
    assert_eq!(pairs.len(), 8);
    assert_eq!(pairs[1].1, Slot::Val(Value::Int(41158)));
    assert_eq!(pairs[2].1, Slot::Val(Value::Real(4877.03)));
    let sku = line.find("SKU-82110").unwrap();
    assert_eq!(pairs[4].1, Slot::Span(sku, sku + 9));
    assert_eq!(pairs[7].1, Slot::Null);
    assert_eq!(
        takes(" {\"a\":true,\"a\" : false ,\"é\":-0}\t").unwrap(),
        [
            ("a".into(), Slot::Val(Value::Bool(true))),
            ("a".into(), Slot::Val(Value::Bool(false))),
            ("é".into(), Slot::Val(Value::Int(0))),
        ]
    );
    for line in [
        r#"{}"#,
        r#"[1]"#,
        r#"{"a": {"b": 1}}"#,
        r#"{"a": [1]}"#,
        r#"{"a": "\n"}"#,
        r#"{"\u0061": 1}"#,
        r#"{"a": 9223372036854775808}"#,
        r#"{"a": 1e400}"#,
        r#"{"a": 01}"#,
        r#"{"a": 1.}"#,
        r#"{"a": 1,}"#,
        r#"{"a": 1} x"#,
        "{\"a\": \"\u{1}\"}",
    ] {
        assert!(takes(line).is_none(), "{line}");
    }
    assert!(takes(r#"{"unknown": 1}"#).is_none());
    // names that need escapes are never matched byte for byte
    assert!(takes(r#"{"q\"": 1}"#).is_none());
    assert!(takes("{\"q\"\": 1}").is_none());
    assert!(takes("{\"t\t\": 1}").is_none());
}
