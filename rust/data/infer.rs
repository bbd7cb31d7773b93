//! Table Schema inference from a sample of rows.
//!
//! The rules, per column, over the sampled rows (rows rejected while reading, such as a wrong
//! number of fields, are not part of the sample):
//! * a value equal to one of the missing values (default `""`) is missing; the column gets
//!   `constraints.required = true` when at least one value was sampled and none was missing;
//! * the type is the FIRST of these candidates that accepts every non-missing value:
//!   `year` (only when the column name contains "year", in any case), `integer`, `number`,
//!   `boolean`, `date`, `datetime`, `time`, `object`, `array`; otherwise `string`. A column
//!   with no value at all in the sample is `string`;
//! * "accepts" means exactly what loading does: each candidate is a compiled schema field and
//!   a value fits when [`Field::coerce`] takes it, so an inferred schema loads the sample it
//!   was inferred from without a reject.
//!
//! Consequences: `0`/`1` columns are `integer` (not `boolean`); integers mixed with decimals
//! are `number`; dates mixed with datetimes are `string`; `1.0` is a `number`; values with
//! surrounding spaces are `string` (as loading would reject them as numbers).
//!
//! Several files make one schema: their columns in first-seen order, a column absent from a
//! file counting as missing in that file's rows.

use std::collections::HashMap;

use serde_json::{json, Value as Json};

use super::batch::{CellRef, RecordBatch};
use super::csv_reader::{CsvOptions, CsvReader};
use super::error::DataError;
use super::field_type::FieldType;
use super::schema::{Field, TableSchema};

/// The candidate types, narrowest first (see the module docs).
pub const CANDIDATES: [FieldType; 9] = [
    FieldType::Year,
    FieldType::Integer,
    FieldType::Number,
    FieldType::Boolean,
    FieldType::Date,
    FieldType::Datetime,
    FieldType::Time,
    FieldType::Object,
    FieldType::Array,
];

const INTEGER: usize = 1;
const NUMBER: usize = 2;

#[derive(Debug, Clone)]
struct ColumnGuess {
    name: String,
    /// Bit i: CANDIDATES[i] still accepts every value seen.
    alive: u16,
    missing: u64,
    present: u64,
}

/// Accumulates a sample, batch by batch, and names each column's type.
#[derive(Debug)]
pub struct Inference {
    candidates: Vec<Field>,
    missing_values: Vec<String>,
    columns: Vec<ColumnGuess>,
    index: HashMap<String, usize>,
    rows: u64,
}

impl Inference {
    pub fn new(missing_values: Vec<String>) -> Result<Self, DataError> {
        let fields: Vec<Json> = CANDIDATES
            .iter()
            .map(|t| json!({"name": t.name(), "type": t.name()}))
            .collect();
        let schema = TableSchema::from_json(&json!({ "fields": fields }).to_string())?;
        Ok(Inference {
            candidates: schema.fields,
            missing_values,
            columns: Vec::new(),
            index: HashMap::new(),
            rows: 0,
        })
    }

    /// Rows sampled so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn column(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let year_bit = u16::from(name.to_lowercase().contains("year"));
        let all = (1u16 << CANDIDATES.len()) - 1;
        self.columns.push(ColumnGuess {
            name: name.to_string(),
            alive: (all & !1) | year_bit,
            missing: self.rows,
            present: 0,
        });
        self.index.insert(name.to_string(), self.columns.len() - 1);
        self.columns.len() - 1
    }

    /// Add the batch's valid rows, at most `limit` of them; returns how many were taken.
    pub fn add_batch(&mut self, batch: &RecordBatch, limit: u64) -> u64 {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let rows: Vec<usize> = if batch.num_rejected() == 0 {
            (0..batch.len().min(limit)).collect()
        } else {
            (0..batch.len())
                .filter(|&i| !batch.is_rejected(i))
                .take(limit)
                .collect()
        };
        let taken = rows.len() as u64;
        let mut in_batch = vec![false; self.columns.len()];
        for (ci, name) in batch.names.iter().enumerate() {
            let k = self.column(name);
            in_batch.resize(self.columns.len(), false);
            in_batch[k] = true;
            let col = &batch.columns[ci];
            let guess = &mut self.columns[k];
            let only_empty = self.missing_values.len() == 1 && self.missing_values[0].is_empty();
            for &r in &rows {
                let cell = col.get(r);
                let is_missing = match cell {
                    CellRef::Null => true,
                    CellRef::Text(s) if only_empty => s.is_empty(),
                    CellRef::Text(s) => self.missing_values.iter().any(|m| m == s),
                    _ => false,
                };
                if is_missing {
                    guess.missing += 1;
                    continue;
                }
                guess.present += 1;
                let mut alive = guess.alive;
                while alive != 0 {
                    let i = alive.trailing_zeros() as usize;
                    alive &= alive - 1;
                    if self.candidates[i].coerce(cell, &[]).is_err() {
                        guess.alive &= !(1 << i);
                    } else if i == INTEGER {
                        // Every integer the coercion takes is a number too: skip that check.
                        alive &= !(1 << NUMBER);
                    }
                }
            }
        }
        for (k, seen) in in_batch.iter().enumerate() {
            if !seen {
                self.columns[k].missing += taken;
            }
        }
        self.rows += taken;
        taken
    }

    /// The Table Schema fields inferred so far.
    pub fn fields(&self) -> Vec<Json> {
        self.columns
            .iter()
            .map(|c| {
                let ftype = if c.present == 0 || c.alive == 0 {
                    FieldType::String
                } else {
                    CANDIDATES[c.alive.trailing_zeros() as usize]
                };
                let mut f = json!({"name": c.name, "type": ftype.name()});
                if c.present > 0 && c.missing == 0 {
                    f["constraints"] = json!({"required": true});
                }
                f
            })
            .collect()
    }

    /// The inferred Table Schema document; `sources` name what was sampled (description).
    pub fn schema(&self, sources: &[String]) -> Json {
        let mut doc = json!({
            "fields": self.fields(),
            "description": format!(
                "Inferred by tallyclerk from a sample of {} row{} of {}",
                self.rows,
                if self.rows == 1 { "" } else { "s" },
                sources.join(", ")
            ),
        });
        if self.missing_values != [String::new()] {
            doc["missingValues"] = json!(self.missing_values);
        }
        doc
    }
}

/// Infer a Table Schema from the first `rows` valid rows of CSV files read in order.
pub fn infer_csv(
    paths: &[String],
    opts: &CsvOptions,
    rows: u64,
    missing_values: Vec<String>,
) -> Result<Json, DataError> {
    if paths.is_empty() {
        return Err(DataError::Config("infer needs at least one file".into()));
    }
    let mut inf = Inference::new(missing_values)?;
    let mut opts = opts.clone();
    let mut sampled = Vec::new();
    for path in paths {
        if inf.rows() >= rows && !sampled.is_empty() {
            break;
        }
        let batch_rows = |left: u64| usize::try_from(left.clamp(1, 10_000)).unwrap_or(1);
        opts.batch_rows = batch_rows(rows - inf.rows());
        let mut reader = CsvReader::open(path, &opts)?;
        // The header alone names the columns, even when no row of this file is sampled.
        let header = RecordBatch::new_text(reader.header().to_vec(), 0, &[]);
        inf.add_batch(&header, 0);
        sampled.push(path.clone());
        while inf.rows() < rows {
            reader.set_batch_rows(batch_rows(rows - inf.rows()));
            let Some(batch) = reader.next_batch()? else {
                break;
            };
            inf.add_batch(&batch, rows - inf.rows());
        }
    }
    Ok(inf.schema(&sampled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::Value;

    fn infer(names: &[&str], rows: &[&[&str]]) -> Vec<Json> {
        let mut inf = Inference::new(vec![String::new()]).unwrap();
        let rows: Vec<Vec<Value>> = rows
            .iter()
            .map(|r| r.iter().map(|s| Value::Text(s.to_string())).collect())
            .collect();
        let n = rows.len() as u64;
        let b = RecordBatch::from_rows(
            names.iter().map(|s| s.to_string()).collect(),
            rows,
            (1..=n).collect(),
            (2..=n + 1).collect(),
            None,
        )
        .unwrap();
        inf.add_batch(&b, u64::MAX);
        inf.fields()
    }

    fn types(fields: &[Json]) -> Vec<&str> {
        fields.iter().map(|f| f["type"].as_str().unwrap()).collect()
    }

    #[test]
    fn narrowest_type_that_fits_every_value() {
        let f = infer(
            &["i", "n", "b", "d", "t", "tm", "s", "y", "year", "o", "a"],
            &[
                &[
                    "1",
                    "1",
                    "true",
                    "2024-01-01",
                    "2024-01-01T00:00:00Z",
                    "12:00:00",
                    "x",
                    "2024",
                    "2024",
                    "{}",
                    "[]",
                ],
                &[
                    "-2",
                    "1.5",
                    "FALSE",
                    "2024-02-29",
                    "2024-01-01 10:00:00",
                    "23:59:59",
                    "1",
                    "1999",
                    "1999",
                    "{\"a\": 1}",
                    "[1]",
                ],
            ],
        );
        assert_eq!(
            types(&f),
            [
                "integer", "number", "boolean", "date", "datetime", "time", "string", "integer",
                "year", "object", "array"
            ]
        );
        assert!(f
            .iter()
            .all(|x| x["constraints"]["required"] == json!(true)));
    }

    #[test]
    fn candidate_indexes() {
        assert_eq!(CANDIDATES[INTEGER], FieldType::Integer);
        assert_eq!(CANDIDATES[NUMBER], FieldType::Number);
    }

    #[test]
    fn widening_and_missing() {
        let f = infer(
            &["a", "b", "c", "d", "e"],
            &[
                &["0", "2024-01-01", "", " 1", "1e3"],
                &["1", "2024-01-01T00:00:00", "", "2", ""],
            ],
        );
        assert_eq!(
            types(&f),
            ["integer", "string", "string", "string", "number"]
        );
        assert_eq!(f[0]["constraints"]["required"], json!(true));
        assert!(f[2].get("constraints").is_none());
        assert!(f[4].get("constraints").is_none());
    }

    #[test]
    fn csv_files_sample_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("b.csv");
        std::fs::write(&a, "id,x\n1,2\n2,3\n").unwrap();
        std::fs::write(&b, "id,y\n3,true\n4,x\n").unwrap();
        let paths = [a.display().to_string(), b.display().to_string()];
        let s = infer_csv(&paths, &CsvOptions::default(), 3, vec![String::new()]).unwrap();
        let f = s["fields"].as_array().unwrap();
        assert_eq!(types(f), ["integer", "integer", "boolean"]);
        assert_eq!(f[0]["constraints"]["required"], json!(true));
        assert!(f[1].get("constraints").is_none());
        assert!(s["description"].as_str().unwrap().contains("3 rows"));
        let again = TableSchema::from_json(&s.to_string()).unwrap();
        assert_eq!(again.fields.len(), 3);
        let one = infer_csv(&paths, &CsvOptions::default(), 2, vec![String::new()]).unwrap();
        assert_eq!(one["fields"].as_array().unwrap().len(), 2);
    }
}
