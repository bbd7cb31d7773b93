//! A record batch's valid rows as Arrow arrays (one struct array: a record batch), built from
//! the columnar buffers without Python objects. The Python binding hands it out through the
//! Arrow C Data Interface (`__arrow_c_array__`), so pyarrow and DuckDB import it zero-copy.
//!
//! Columns follow the schema's fields in order, typed by the field type: `integer`/`year`
//! Int64, `number` Float64, `boolean` Boolean, `date` Date32, every other type Utf8 (its
//! validated text: a database casts it, e.g. DuckDB's `TIMESTAMPTZ` columns on insert; a
//! profile showed the text-to-date cast in DuckDB's insert). A field the batch
//! lacks is all NULL. Rejected rows are left out. An optional constant Int64 column (the
//! sinks' `_tc_file_id`) goes last.

use std::sync::Arc;

use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer};
use arrow_data::ArrayData;
use arrow_schema::{ArrowError, DataType, Field, Fields};

use super::batch::{CellRef, Column};
use super::coerce::parse_date;
use super::{DataError, FieldType, RecordBatch, TableSchema};

/// The Arrow type a field's values are exported as.
pub fn arrow_type(t: FieldType) -> DataType {
    match t {
        FieldType::Integer | FieldType::Year => DataType::Int64,
        FieldType::Number => DataType::Float64,
        FieldType::Boolean => DataType::Boolean,
        FieldType::Date => DataType::Date32,
        _ => DataType::Utf8,
    }
}

fn arrow_err(e: ArrowError) -> DataError {
    DataError::Value(format!("cannot build an Arrow array: {e}"))
}

fn nulls(valid: Vec<bool>) -> Option<NullBuffer> {
    let nb = NullBuffer::from(valid);
    (nb.null_count() > 0).then_some(nb)
}

/// One column's kept rows as an Arrow array of type `dt`; `None` for a cell that does not fit
/// the type (a value the validation did not produce: the caller falls back).
fn export_column(
    col: Option<&Column>,
    rows: &[usize],
    dt: &DataType,
) -> Result<Option<ArrayData>, DataError> {
    let n = rows.len();
    let cell = |i: usize| col.map_or(CellRef::Null, |c| c.get(i));
    let builder = match dt {
        DataType::Int64 => {
            let mut values = Vec::with_capacity(n);
            let mut valid = Vec::with_capacity(n);
            for &i in rows {
                match cell(i) {
                    CellRef::Null => {
                        values.push(0i64);
                        valid.push(false);
                    }
                    CellRef::Int(v) => {
                        values.push(v);
                        valid.push(true);
                    }
                    _ => return Ok(None),
                }
            }
            ArrayData::builder(DataType::Int64)
                .add_buffer(Buffer::from_vec(values))
                .nulls(nulls(valid))
        }
        DataType::Float64 => {
            let mut values = Vec::with_capacity(n);
            let mut valid = Vec::with_capacity(n);
            for &i in rows {
                let v = match cell(i) {
                    CellRef::Null => None,
                    CellRef::Real(v) => Some(v),
                    #[allow(clippy::cast_precision_loss)] // what Python's float(int) does
                    CellRef::Int(v) => Some(v as f64),
                    _ => return Ok(None),
                };
                values.push(v.unwrap_or(0.0));
                valid.push(v.is_some());
            }
            ArrayData::builder(DataType::Float64)
                .add_buffer(Buffer::from_vec(values))
                .nulls(nulls(valid))
        }
        DataType::Date32 => {
            let mut values = Vec::with_capacity(n);
            let mut valid = Vec::with_capacity(n);
            for &i in rows {
                let v = match cell(i) {
                    CellRef::Null => None,
                    CellRef::Text(s) => match parse_date(s).ok().map(i32::try_from) {
                        Some(Ok(day)) => Some(day),
                        _ => return Ok(None),
                    },
                    _ => return Ok(None),
                };
                values.push(v.unwrap_or(0));
                valid.push(v.is_some());
            }
            ArrayData::builder(DataType::Date32)
                .add_buffer(Buffer::from_vec(values))
                .nulls(nulls(valid))
        }
        DataType::Boolean => {
            let mut values = Vec::with_capacity(n);
            let mut valid = Vec::with_capacity(n);
            for &i in rows {
                let v = match cell(i) {
                    CellRef::Null => None,
                    CellRef::Bool(v) => Some(v),
                    _ => return Ok(None),
                };
                values.push(v.unwrap_or(false));
                valid.push(v.is_some());
            }
            ArrayData::builder(DataType::Boolean)
                .add_buffer(BooleanBuffer::from(values).into_inner())
                .nulls(nulls(valid))
        }
        _ => {
            let mut offsets: Vec<i32> = Vec::with_capacity(n + 1);
            let mut bytes: Vec<u8> = Vec::new();
            let mut valid = Vec::with_capacity(n);
            offsets.push(0);
            for &i in rows {
                match cell(i) {
                    CellRef::Null => valid.push(false),
                    CellRef::Text(s) => {
                        bytes.extend_from_slice(s.as_bytes());
                        valid.push(true);
                    }
                    other => {
                        bytes.extend_from_slice(other.to_text().as_bytes());
                        valid.push(true);
                    }
                }
                let end = i32::try_from(bytes.len()).map_err(|_| {
                    DataError::Value("a text column of a batch exceeds 2 GiB".into())
                })?;
                offsets.push(end);
            }
            ArrayData::builder(DataType::Utf8)
                .add_buffer(Buffer::from_vec(offsets))
                .add_buffer(Buffer::from_vec(bytes))
                .nulls(nulls(valid))
        }
    };
    builder.len(n).build().map(Some).map_err(arrow_err)
}

/// The batch's valid rows as one Arrow struct array (see the module documentation), or `None`
/// when a column holds values its field type does not produce (an unvalidated batch).
pub fn export(
    batch: &RecordBatch,
    schema: &TableSchema,
    constant: Option<(&str, i64)>,
) -> Result<Option<ArrayData>, DataError> {
    let rows: Vec<usize> = (0..batch.len())
        .filter(|&i| !batch.is_rejected(i))
        .collect();
    let mut fields = Vec::with_capacity(schema.fields.len() + 1);
    let mut children = Vec::with_capacity(schema.fields.len() + 1);
    for f in &schema.fields {
        let dt = arrow_type(f.ftype);
        let col = batch.column_index(&f.name).map(|k| &batch.columns[k]);
        let Some(data) = export_column(col, &rows, &dt)? else {
            return Ok(None);
        };
        fields.push(Field::new(f.name.clone(), dt, true));
        children.push(data);
    }
    if let Some((name, value)) = constant {
        if schema.fields.iter().any(|f| f.name == name) {
            return Err(DataError::Value(format!(
                "column {name:?} is both a schema field and the constant column"
            )));
        }
        let data = ArrayData::builder(DataType::Int64)
            .len(rows.len())
            .add_buffer(Buffer::from_vec(vec![value; rows.len()]))
            .build()
            .map_err(arrow_err)?;
        fields.push(Field::new(name, DataType::Int64, true));
        children.push(data);
    }
    let fields: Fields = fields.into_iter().map(Arc::new).collect();
    ArrayData::builder(DataType::Struct(fields))
        .len(rows.len())
        .child_data(children)
        .build()
        .map(Some)
        .map_err(arrow_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Value;

    fn schema() -> TableSchema {
        TableSchema::from_json(
            r#"{"fields": [{"name": "id", "type": "integer"},
                {"name": "x", "type": "number"}, {"name": "ok", "type": "boolean"},
                {"name": "day", "type": "date"}, {"name": "gone", "type": "string"}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn valid_rows_typed_and_rejects_left_out() {
        let mut b = RecordBatch::new_text(
            vec!["id".into(), "x".into(), "ok".into(), "day".into()],
            3,
            &[],
        );
        b.push_text_row(["1", "1.5", "true", "2024-01-02"].into_iter(), 1, 2);
        b.push_text_row(["x", "2", "false", "2024-01-03"].into_iter(), 2, 3);
        b.push_text_row(["3", "", "", ""].into_iter(), 3, 4);
        let s = schema();
        assert_eq!(b.validate(&s).unwrap(), 1);
        let data = export(&b, &s, Some(("_tc_file_id", 7))).unwrap().unwrap();
        assert_eq!(data.len(), 2);
        let kids = data.child_data();
        assert_eq!(kids.len(), 6);
        assert_eq!(kids[0].buffer::<i64>(0), &[1, 3]);
        assert_eq!(kids[1].buffer::<f64>(0)[0], 1.5);
        assert_eq!(kids[1].null_count(), 1);
        assert_eq!(kids[2].null_count(), 1);
        assert_eq!(kids[3].buffer::<i32>(0), &[19724, 0]);
        assert_eq!(kids[3].null_count(), 1);
        assert_eq!(kids[4].null_count(), 2);
        assert_eq!(kids[5].buffer::<i64>(0), &[7, 7]);
    }

    #[test]
    fn unvalidated_values_that_do_not_fit_give_none() {
        let b = RecordBatch::from_rows(
            vec!["id".into()],
            vec![vec![Value::Text("a".into())]],
            vec![1],
            vec![1],
            None,
        )
        .unwrap();
        assert!(export(&b, &schema(), None).unwrap().is_none());
    }
}
