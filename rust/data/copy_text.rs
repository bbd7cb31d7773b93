//! PostgreSQL `COPY ... FROM STDIN` text format of a record batch's valid rows.
//!
//! The format (postgresql.org/docs/current/sql-copy.html, "Text Format"): one line per row,
//! fields separated by a tab, `\N` for NULL, and a backslash before the characters that would
//! otherwise end a field or a row or start an escape: backslash (`\\`), tab (`\t`), newline
//! (`\n`) and carriage return (`\r`). Every other byte, UTF-8 included, goes as it is; since
//! every backslash of the data is doubled, neither a `\N` nor an end-of-data marker `\.` can
//! come from a value.
//!
//! Cells are written by what they hold (the batch's typed columns after validation, or any
//! value a transform put in): booleans `t`/`f`, integers in decimal, floats in the shortest
//! text that reads back as the same double (Python's `repr` spelling: `0.1`, `1.0`, `1e+16`)
//! with `Infinity`, `-Infinity` and `NaN` for the non-finite ones, and text (dates and
//! datetimes are ISO text in the batch) escaped as above.

use std::io::Write;

use super::batch::{CellRef, RecordBatch, Value};

/// Bytes that need a backslash escape inside a COPY text field.
#[inline]
fn needs_escape(b: u8) -> bool {
    matches!(b, b'\\' | b'\t' | b'\n' | b'\r')
}

/// Append `s` escaped for a COPY text field.
pub fn push_text(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if needs_escape(b) {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(match b {
                b'\\' => b"\\\\",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                _ => b"\\r",
            });
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Append an integer in decimal.
#[inline]
fn push_int(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        pos -= 1;
        // `n % 10` is below 10, so it fits a byte
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[pos..]);
}

/// Append a float: the shortest round-trip digits, spelled like Python's `repr` for finite
/// values (so text columns get what `str(x)` gave) and as PostgreSQL spells the others. When
/// two shortest spellings are exactly as close to the double (2^49 + 0.25: `...312.2` and
/// `...312.3`), the last digit may differ from `repr`'s; both read back as the same double.
fn push_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else if v == 0.0 || (1e-4..1e16).contains(&v.abs()) {
        let start = out.len();
        // writing into a Vec cannot fail
        let _ = write!(out, "{v}");
        if !out[start..].contains(&b'.') {
            out.extend_from_slice(b".0");
        }
    } else {
        // `{:e}` is the shortest round-trip mantissa: "1.5e-7" -> "1.5e-07", "1e16" -> "1e+16"
        let text = format!("{v:e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((text.as_str(), "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
    }
}

/// Append one cell as a COPY text field.
#[inline]
pub fn push_cell(out: &mut Vec<u8>, cell: CellRef<'_>) {
    match cell {
        CellRef::Null => out.extend_from_slice(b"\\N"),
        CellRef::Int(v) => push_int(out, v),
        CellRef::Real(v) => push_float(out, v),
        CellRef::Bool(v) => out.push(if v { b't' } else { b'f' }),
        CellRef::Text(s) => push_text(out, s),
    }
}

/// A name in `names` that is not a column of `batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownColumn(pub String);

/// The valid (not rejected) rows of `batch` as COPY text: the named columns in the given order,
/// then the `extra` values (the same in every row, e.g. the file id), each row ending with a
/// newline. An empty result means there is no valid row.
pub fn copy_text(
    batch: &RecordBatch,
    names: &[&str],
    extra: &[Value],
) -> Result<Vec<u8>, UnknownColumn> {
    let columns = names
        .iter()
        .map(|name| {
            batch
                .column_index(name)
                .map(|k| &batch.columns[k])
                .ok_or_else(|| UnknownColumn((*name).to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rows = batch.num_valid();
    if rows == 0 {
        return Ok(Vec::new());
    }
    // Every row ends with the extra values and the newline: encode them once.
    let mut tail = Vec::new();
    for v in extra {
        tail.push(b'\t');
        push_cell(&mut tail, v.as_cell());
    }
    tail.push(b'\n');
    let text_bytes: usize = columns
        .iter()
        .map(|c| match c {
            super::batch::Column::Text(t) => t.bytes(),
            _ => 0,
        })
        .sum();
    let mut out = Vec::with_capacity(text_bytes + rows * (columns.len() * 8 + tail.len()));
    for i in 0..batch.len() {
        if batch.is_rejected(i) {
            continue;
        }
        for (k, col) in columns.iter().enumerate() {
            if k > 0 {
                out.push(b'\t');
            }
            push_cell(&mut out, col.get(i));
        }
        if columns.is_empty() && !extra.is_empty() {
            // no leading tab before the first extra value
            out.extend_from_slice(&tail[1..]);
        } else {
            out.extend_from_slice(&tail);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TableSchema;

    fn text(rows: &[Option<&str>]) -> String {
        let b = RecordBatch::from_rows(
            vec!["s".into()],
            rows.iter()
                .map(|v| vec![v.map_or(Value::Null, |s| Value::Text(s.into()))])
                .collect(),
            (1..=rows.len() as u64).collect(),
            (1..=rows.len() as u64).collect(),
            None,
        )
        .unwrap();
        String::from_utf8(copy_text(&b, &["s"], &[]).unwrap()).unwrap()
    }

    fn cell(c: CellRef<'_>) -> String {
        let mut out = Vec::new();
        push_cell(&mut out, c);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_backslash_tab_newline_and_carriage_return() {
        assert_eq!(text(&[Some("back\\slash")]), "back\\\\slash\n");
        assert_eq!(text(&[Some("tab\there")]), "tab\\there\n");
        assert_eq!(text(&[Some("new\nline")]), "new\\nline\n");
        assert_eq!(text(&[Some("cr\rlf\r\n")]), "cr\\rlf\\r\\n\n");
        assert_eq!(text(&[Some("\\N")]), "\\\\N\n", "a text \\N is not NULL");
        assert_eq!(
            text(&[Some("\\.")]),
            "\\\\.\n",
            "never an end-of-data marker"
        );
        assert_eq!(text(&[Some("end\\")]), "end\\\\\n");
    }

    #[test]
    fn plain_text_and_utf8_go_as_they_are() {
        assert_eq!(
            text(&[Some("plain"), Some("ünï 🙂"), Some("'q\"")]),
            "plain\nünï 🙂\n'q\"\n"
        );
        assert_eq!(text(&[Some("")]), "\n", "an empty string is not NULL");
    }

    #[test]
    fn null_is_backslash_n() {
        assert_eq!(text(&[None, Some("N")]), "\\N\nN\n");
    }

    #[test]
    fn booleans_and_integers() {
        assert_eq!(cell(CellRef::Bool(true)), "t");
        assert_eq!(cell(CellRef::Bool(false)), "f");
        assert_eq!(cell(CellRef::Int(0)), "0");
        assert_eq!(cell(CellRef::Int(-42)), "-42");
        assert_eq!(cell(CellRef::Int(i64::MAX)), i64::MAX.to_string());
        assert_eq!(cell(CellRef::Int(i64::MIN)), i64::MIN.to_string());
    }

    #[test]
    fn floats_round_trip_in_python_repr_spelling() {
        for (v, want) in [
            (1.0, "1.0"),
            (-2.0, "-2.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e300, "1.2345e+300"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
        ] {
            let got = cell(CellRef::Real(v));
            assert_eq!(got, want);
            let back: f64 = got.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{got} reads back");
        }
        assert_eq!(cell(CellRef::Real(f64::INFINITY)), "Infinity");
        assert_eq!(cell(CellRef::Real(f64::NEG_INFINITY)), "-Infinity");
        assert_eq!(cell(CellRef::Real(f64::NAN)), "NaN");
    }

    #[test]
    fn validated_typed_columns_in_the_given_order_with_extra_values() {
        let mut b = RecordBatch::new_text(
            ["i", "x", "ok", "d", "at", "s"].map(String::from).to_vec(),
            3,
            &[],
        );
        b.push_text_row(
            [
                "7",
                "2.5",
                "true",
                "2026-01-02",
                "2026-01-02T03:04:05Z",
                "a\tb",
            ]
            .into_iter(),
            1,
            2,
        );
        b.push_text_row(["", "", "", "", "", ""].into_iter(), 2, 3);
        b.push_text_row(
            ["-1", "-INF", "0", "2020-02-29", "2020-02-29T23:59:59", "c"].into_iter(),
            3,
            4,
        );
        let schema = TableSchema::from_json(
            r#"{"fields": [{"name": "i", "type": "integer"}, {"name": "x", "type": "number"},
                {"name": "ok", "type": "boolean"}, {"name": "d", "type": "date"},
                {"name": "at", "type": "datetime"}, {"name": "s"}]}"#,
        )
        .unwrap();
        assert_eq!(b.validate(&schema).unwrap(), 0);
        let out = copy_text(&b, &["s", "i", "x", "ok", "d", "at"], &[Value::Int(42)]).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.split_terminator('\n').collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("a\\tb\t7\t2.5\tt\t2026-01-02\t2026-01-02"),
            "{out}"
        );
        assert!(lines[0].ends_with("\t42"), "{out}");
        assert_eq!(lines[1], "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t42");
        assert!(
            lines[2].starts_with("c\t-1\t-Infinity\tf\t2020-02-29\t2020-02-29"),
            "{out}"
        );
    }

    #[test]
    fn any_values_and_several_extras() {
        let b = RecordBatch::from_rows(
            vec!["v".into()],
            vec![
                vec![Value::Int(3)],
                vec![Value::Real(0.5)],
                vec![Value::Bool(false)],
                vec![Value::Text("x\\y".into())],
                vec![Value::Null],
            ],
            vec![1, 2, 3, 4, 5],
            vec![1, 2, 3, 4, 5],
            None,
        )
        .unwrap();
        let extra = [Value::Text("t\tx".into()), Value::Null, Value::Bool(true)];
        let out = copy_text(&b, &["v"], &extra).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "3\tt\\tx\t\\N\tt\n0.5\tt\\tx\t\\N\tt\nf\tt\\tx\t\\N\tt\n\
             x\\\\y\tt\\tx\t\\N\tt\n\\N\tt\\tx\t\\N\tt\n"
        );
        let only_extra = copy_text(&b, &[], &[Value::Int(1)]).unwrap();
        assert_eq!(only_extra, b"1\n1\n1\n1\n1\n");
    }

    #[test]
    fn rejected_rows_are_skipped() {
        let mut b = RecordBatch::new_text(vec!["n".into()], 4, &[]);
        for (k, v) in ["1", "x", "3", "4"].iter().enumerate() {
            b.push_text_row(std::iter::once(*v), k as u64 + 1, k as u64 + 2);
        }
        b.push_rejected_row(
            5,
            6,
            crate::data::RejectInfo {
                column: None,
                rule: "read".into(),
                reason: "bad".into(),
                raw: Some("\"".into()),
                masked: false,
            },
        );
        let schema =
            TableSchema::from_json(r#"{"fields": [{"name": "n", "type": "integer"}]}"#).unwrap();
        assert_eq!(b.validate(&schema).unwrap(), 1);
        b.reject(3, None, "custom", "no").unwrap();
        let out = copy_text(&b, &["n"], &[Value::Int(9)]).unwrap();
        assert_eq!(out, b"1\t9\n3\t9\n");
    }

    #[test]
    fn empty_batch_and_all_rejected_give_nothing() {
        let b = RecordBatch::new_text(vec!["a".into()], 0, &[]);
        assert!(copy_text(&b, &["a"], &[Value::Int(1)]).unwrap().is_empty());
        let mut b = RecordBatch::new_text(vec!["a".into()], 1, &[]);
        b.push_text_row(std::iter::once("x"), 1, 2);
        b.reject(0, None, "r", "r").unwrap();
        assert!(copy_text(&b, &["a"], &[]).unwrap().is_empty());
    }

    #[test]
    fn unknown_column_is_named() {
        let b = RecordBatch::new_text(vec!["a".into()], 0, &[]);
        assert_eq!(
            copy_text(&b, &["a", "nope"], &[]),
            Err(UnknownColumn("nope".into()))
        );
    }

    proptest::proptest! {
        #[test]
        fn text_round_trips_through_a_reference_decoder(
            values in proptest::collection::vec(proptest::option::of(".*"), 0..20)
        ) {
            let b = RecordBatch::from_rows(
                vec!["s".into()],
                values.iter().map(|v| vec![v.clone().map_or(Value::Null, Value::Text)]).collect(),
                (1..=values.len() as u64).collect(),
                (1..=values.len() as u64).collect(),
                None,
            ).unwrap();
            let out = String::from_utf8(copy_text(&b, &["s"], &[]).unwrap()).unwrap();
            let decoded: Vec<Option<String>> = out.split_terminator('\n').map(decode).collect();
            proptest::prop_assert_eq!(decoded, values);
        }
    }

    /// A reference decoder of one single-field COPY text line.
    fn decode(field: &str) -> Option<String> {
        if field == "\\N" {
            return None;
        }
        let mut out = String::new();
        let mut chars = field.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('t') => out.push('\t'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some(other) => out.push(other),
                    None => panic!("dangling backslash in {field:?}"),
                }
            } else {
                assert!(
                    c != '\t' && c != '\n' && c != '\r',
                    "raw {c:?} in {field:?}"
                );
                out.push(c);
            }
        }
        Some(out)
    }
}
