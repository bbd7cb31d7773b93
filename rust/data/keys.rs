//! Uniqueness within one file: the Table Schema's `unique` fields and `primaryKey`, and the key
//! of `--mode merge`.
//!
//! A [`KeyCheck`] lives for one file: it keeps, per key, a hash map from each key value seen so
//! far (after coercion, so `007` and `7` of an integer field are one value) to the line that
//! first had it. Memory is O(distinct keys of the file). A repeated value is a rejected row
//! (rule `unique` for a field, `primary-key` for the primary key), the first row kept; a
//! primary key with an empty column is rejected too (the spec makes its columns required); an
//! empty `unique` value is no duplicate (as in SQL).

use std::collections::HashMap;

use super::batch::{CellRef, RecordBatch};
use super::error::DataError;

pub const UNIQUE_RULE: &str = "unique";
pub const PRIMARY_KEY_RULE: &str = "primary-key";

/// One key: its columns and its rule (`unique` or `primary-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub columns: Vec<String>,
    pub rule: &'static str,
}

impl KeySpec {
    pub fn primary(columns: Vec<String>) -> Self {
        KeySpec {
            columns,
            rule: PRIMARY_KEY_RULE,
        }
    }

    pub fn unique(column: String) -> Self {
        KeySpec {
            columns: vec![column],
            rule: UNIQUE_RULE,
        }
    }

    /// `unique field "id"` / `primary key "a", "b"`.
    pub fn describe(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| format!("{c:?}")).collect();
        if self.rule == UNIQUE_RULE {
            format!("unique field {}", cols.join(", "))
        } else {
            format!("primary key {}", cols.join(", "))
        }
    }

    /// The column a reject names (the key's only column, else none).
    pub fn reject_column(&self) -> Option<String> {
        (self.columns.len() == 1).then(|| self.columns[0].clone())
    }
}

/// A key value: its cells (hashable form) and how it is shown in a reason.
pub fn key_of(batch: &RecordBatch, cols: &[usize], row: usize) -> Result<(String, String), usize> {
    let mut hashed = String::new();
    let mut shown = Vec::with_capacity(cols.len());
    for (k, &c) in cols.iter().enumerate() {
        let cell = batch.columns[c].get(row);
        match cell {
            CellRef::Null => return Err(k),
            CellRef::Int(i) => hashed.push_str(&format!("i{i}")),
            CellRef::Real(f) => hashed.push_str(&format!("r{}", f.to_bits())),
            CellRef::Bool(b) => hashed.push_str(if b { "b1" } else { "b0" }),
            CellRef::Text(s) => {
                hashed.push('t');
                hashed.push_str(s);
            }
        }
        hashed.push('\u{1f}');
        shown.push(cell.to_text());
    }
    let shown = if shown.len() == 1 {
        shown.remove(0)
    } else {
        format!("({})", shown.join(", "))
    };
    Ok((hashed, preview(&shown)))
}

fn preview(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(80).collect::<String>())
    }
}

/// The within-file uniqueness check of one file (see the module docs).
#[derive(Debug)]
pub struct KeyCheck {
    specs: Vec<KeySpec>,
    seen: Vec<HashMap<String, u64>>,
}

impl KeyCheck {
    pub fn new(specs: Vec<KeySpec>) -> Self {
        let seen = specs.iter().map(|_| HashMap::new()).collect();
        KeyCheck { specs, seen }
    }

    pub fn specs(&self) -> &[KeySpec] {
        &self.specs
    }

    /// Reject the rows of `batch` that repeat a key value seen earlier in the file (or have an
    /// empty primary key column); returns how many rows this call rejected.
    pub fn check(&mut self, batch: &mut RecordBatch) -> Result<usize, DataError> {
        let mut newly = 0;
        for (spec, seen) in self.specs.iter().zip(self.seen.iter_mut()) {
            let cols = key_columns(batch, spec, "the file")?;
            for row in 0..batch.len() {
                if batch.is_rejected(row) {
                    continue;
                }
                let (rule, column, reason) = match key_of(batch, &cols, row) {
                    Err(k) if spec.rule == PRIMARY_KEY_RULE => (
                        spec.rule,
                        Some(spec.columns[k].clone()),
                        format!("key column {:?} is empty", spec.columns[k]),
                    ),
                    Err(_) => continue,
                    Ok((hashed, shown)) => {
                        let line = batch.lines[row];
                        match seen.get(&hashed) {
                            None => {
                                seen.insert(hashed, line);
                                continue;
                            }
                            Some(first) => (
                                spec.rule,
                                spec.reject_column(),
                                format!(
                                    "duplicate {} {shown} for {} (first seen on line {first})",
                                    if spec.rule == UNIQUE_RULE {
                                        "value"
                                    } else {
                                        "key"
                                    },
                                    spec.describe()
                                ),
                            ),
                        }
                    }
                };
                if batch.reject(row, column, rule, &reason)? {
                    newly += 1;
                }
            }
        }
        Ok(newly)
    }
}

/// The batch's column indexes of `spec`'s columns (a missing one is a source error).
pub fn key_columns(
    batch: &RecordBatch,
    spec: &KeySpec,
    what: &str,
) -> Result<Vec<usize>, DataError> {
    spec.columns
        .iter()
        .map(|c| {
            batch.column_index(c).ok_or_else(|| {
                DataError::Config(format!(
                    "key column {c:?} of the {} is not a column of {what}",
                    spec.describe()
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TableSchema;

    fn batch(rows: &[(&str, &str)]) -> RecordBatch {
        let mut b = RecordBatch::new_text(vec!["id".into(), "name".into()], rows.len(), &[8, 8]);
        for (i, (a, n)) in rows.iter().enumerate() {
            b.push_text_row([*a, *n].into_iter(), i as u64 + 1, i as u64 + 2);
        }
        let s = TableSchema::from_json(
            r#"{"fields": [{"name": "id", "type": "integer"}, {"name": "name"}]}"#,
        )
        .unwrap();
        b.validate(&s).unwrap();
        b
    }

    #[test]
    fn repeats_across_batches_are_rejected_first_row_kept() {
        let mut k = KeyCheck::new(vec![KeySpec::unique("id".into())]);
        let mut b1 = batch(&[("7", "a"), ("007", "b"), ("", "c"), ("", "d")]);
        assert_eq!(k.check(&mut b1).unwrap(), 1);
        let r = b1.reject_info(1).unwrap();
        assert_eq!(r.rule, "unique");
        assert_eq!(
            r.reason,
            "duplicate value 7 for unique field \"id\" (first seen on line 2)"
        );
        let mut b2 = batch(&[("8", "x"), ("7", "y")]);
        assert_eq!(k.check(&mut b2).unwrap(), 1);
        assert!(b2.is_rejected(1) && !b2.is_rejected(0));
    }

    #[test]
    fn primary_key_spans_columns_and_refuses_empty_columns() {
        let mut k = KeyCheck::new(vec![KeySpec::primary(vec!["id".into(), "name".into()])]);
        let mut b = batch(&[("1", "a"), ("1", "b"), ("1", "a"), ("", "z")]);
        assert_eq!(k.check(&mut b).unwrap(), 2);
        assert_eq!(b.reject_info(2).unwrap().rule, "primary-key");
        assert!(b.reject_info(2).unwrap().reason.contains("(1, a)"));
        assert_eq!(
            b.reject_info(3).unwrap().reason,
            "key column \"id\" is empty"
        );
    }
}
