//! Columnar record batches: text columns in one arena per column (no allocation per field),
//! typed columns after validation, record numbers, physical lines and reject verdicts.
//!
//! Validation matches the batch's columns to the schema's fields BY NAME:
//! * a field missing from the batch is NULL in every row, unless it is `required`: then the
//!   whole batch fails with a [`DataError::Source`] ("column X required by the schema is
//!   missing from the header") — every row would be rejected for the same reason;
//! * columns not in the schema are dropped (not loaded); the rejects' raw text keeps them;
//! * after validation the batch holds exactly the schema's fields, in schema order.
//!
//! Raw record text is kept only for rows rejected while reading (the text as read). For rows
//! rejected later it is rebuilt from the fields (RFC 4180 quoting where needed), which equals
//! the source text for records written without needless quotes.

use std::collections::HashMap;

use super::error::{preview, DataError};
use super::field::{run_plan, run_values, Plan, Target};
use super::schema::{FieldType, TableSchema, Typed};

/// An owned value of a heterogeneous column (from Python rows or a transform).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
}

/// A borrowed view of one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(&'a str),
}

/// Text of a float the way Python's `repr` writes the common cases (`1.0`, `0.5`).
pub fn float_text(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "INF" } else { "-INF" }.into()
    } else {
        format!("{v}")
    }
}

impl CellRef<'_> {
    /// The cell as text (NULL is empty, booleans `true`/`false`).
    pub fn to_text(&self) -> String {
        match self {
            CellRef::Null => String::new(),
            CellRef::Int(i) => i.to_string(),
            CellRef::Real(f) => float_text(*f),
            CellRef::Bool(b) => b.to_string(),
            CellRef::Text(s) => (*s).to_string(),
        }
    }
}

impl Value {
    pub fn as_cell(&self) -> CellRef<'_> {
        match self {
            Value::Null => CellRef::Null,
            Value::Int(i) => CellRef::Int(*i),
            Value::Real(f) => CellRef::Real(*f),
            Value::Bool(b) => CellRef::Bool(*b),
            Value::Text(s) => CellRef::Text(s),
        }
    }
}

/// A text column: every value in one buffer, `ends[i]` the end offset of value `i`.
#[derive(Debug, Clone, Default)]
pub struct TextCol {
    buf: String,
    ends: Vec<usize>,
    nulls: Vec<bool>,
}

impl TextCol {
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        TextCol {
            buf: String::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
            nulls: Vec::with_capacity(rows),
        }
    }

    #[inline]
    pub fn push(&mut self, v: Option<&str>) {
        if let Some(s) = v {
            self.buf.push_str(s);
        }
        self.ends.push(self.buf.len());
        self.nulls.push(v.is_none());
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&str> {
        if self.nulls[i] {
            return None;
        }
        let end = self.ends[i];
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(self.slice(start, end))
    }

    /// Every cell in row order: what [`TextCol::get`] returns for rows 0, 1, ..., without
    /// its per-call index work (the validation plans' loop).
    #[inline]
    pub fn cells(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        let mut start = 0;
        self.ends.iter().zip(&self.nulls).map(move |(&end, &null)| {
            let from = std::mem::replace(&mut start, end);
            (!null).then(|| self.slice(from, end))
        })
    }

    /// `buf[start..end]` for a value's bounds (0 or an `ends[k]`, then `ends[k + 1]`).
    #[inline]
    fn slice(&self, start: usize, end: usize) -> &str {
        assert!(start <= end && end <= self.buf.len());
        // SAFETY: `buf` only ever grows by whole `&str`s (`push`, the one place that writes
        // `buf` or `ends`), and `ends` records `buf.len()` after each push, so 0 and every
        // `ends[k]` are char boundaries of `buf` (the only bounds `get` and `cells` pass);
        // `ends` never decreases, so `start <= end`, and `end <= buf.len()` (both checked
        // just above, so a broken invariant panics instead of reading out of bounds). This
        // skips only the two char-boundary checks of `&buf[start..end]` (the writer's
        // hottest Rust function in a profile).
        unsafe { self.buf.get_unchecked(start..end) }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.buf.len()
    }
}

/// One column of a batch.
#[derive(Debug, Clone)]
pub enum Column {
    Text(TextCol),
    Int(Vec<Option<i64>>),
    Real(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Any(Vec<Value>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Text(c) => c.len(),
            Column::Int(v) => v.len(),
            Column::Real(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Any(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn get(&self, i: usize) -> CellRef<'_> {
        match self {
            Column::Text(c) => c.get(i).map_or(CellRef::Null, CellRef::Text),
            Column::Int(v) => v[i].map_or(CellRef::Null, CellRef::Int),
            Column::Real(v) => v[i].map_or(CellRef::Null, CellRef::Real),
            Column::Bool(v) => v[i].map_or(CellRef::Null, CellRef::Bool),
            Column::Any(v) => v[i].as_cell(),
        }
    }
}

/// Why a row was rejected (the first verdict wins).
#[derive(Debug, Clone, PartialEq)]
pub struct RejectInfo {
    pub column: Option<String>,
    pub rule: String,
    pub reason: String,
    /// The raw record as read, when the reader kept it.
    pub raw: Option<String>,
    /// The batch has sensitive columns: `raw` and `reason` had their values masked, so `raw`
    /// is not the record as read (it cannot be replayed from it).
    pub masked: bool,
}

/// What a sensitive value is replaced with in a reject's raw text and reason.
pub const MASK: &str = "***";

/// A batch of records from one source.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    pub record_numbers: Vec<u64>,
    pub lines: Vec<u64>,
    rejects: Vec<Option<Box<RejectInfo>>>,
    num_rejected: usize,
    /// Source bytes this batch covers.
    pub bytes: u64,
    /// The source path, for error messages.
    pub source: Option<String>,
    delimiter: u8,
    /// Raw text per row given to `from_rows` or by a reader (one arena, not a string a row).
    given_raws: Option<TextCol>,
    /// Names of the sensitive columns: masked in every reject's raw text and reason.
    sensitive: Vec<String>,
}

/// A text column's cell as a [`CellRef`].
fn text_cell(c: Option<&str>) -> CellRef<'_> {
    c.map_or(CellRef::Null, CellRef::Text)
}

/// Quote one field for a rebuilt raw record (RFC 4180).
fn write_field(out: &mut String, s: &str, delimiter: char) {
    if s.contains([delimiter, '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

impl RecordBatch {
    /// An empty batch of text columns (what a reader fills).
    pub fn new_text(names: Vec<String>, rows: usize, bytes_per_col: &[usize]) -> Self {
        let columns = (0..names.len())
            .map(|i| {
                Column::Text(TextCol::with_capacity(
                    rows,
                    bytes_per_col.get(i).copied().unwrap_or(0),
                ))
            })
            .collect();
        RecordBatch {
            names,
            columns,
            record_numbers: Vec::with_capacity(rows),
            lines: Vec::with_capacity(rows),
            rejects: Vec::with_capacity(rows),
            num_rejected: 0,
            bytes: 0,
            source: None,
            delimiter: b',',
            given_raws: None,
            sensitive: Vec::new(),
        }
    }

    pub fn set_delimiter(&mut self, d: u8) {
        self.delimiter = d;
    }

    /// Append a row of text fields (exactly one per column).
    #[inline]
    pub fn push_text_row<'a>(
        &mut self,
        fields: impl Iterator<Item = &'a str>,
        record_number: u64,
        line: u64,
    ) {
        for (col, f) in self.columns.iter_mut().zip(fields) {
            if let Column::Text(c) = col {
                c.push(Some(f));
            }
        }
        self.record_numbers.push(record_number);
        self.lines.push(line);
        self.rejects.push(None);
    }

    /// Append a row rejected while reading (all its cells NULL).
    pub fn push_rejected_row(&mut self, record_number: u64, line: u64, info: RejectInfo) {
        for col in &mut self.columns {
            match col {
                Column::Text(c) => c.push(None),
                Column::Int(v) => v.push(None),
                Column::Real(v) => v.push(None),
                Column::Bool(v) => v.push(None),
                Column::Any(v) => v.push(Value::Null),
            }
        }
        self.record_numbers.push(record_number);
        self.lines.push(line);
        self.rejects.push(Some(Box::new(info)));
        self.num_rejected += 1;
    }

    /// Build a batch from values (Python loaders such as JSONL).
    pub fn from_rows(
        names: Vec<String>,
        rows: Vec<Vec<Value>>,
        record_numbers: Vec<u64>,
        lines: Vec<u64>,
        raws: Option<Vec<String>>,
    ) -> Result<Self, DataError> {
        let n = rows.len();
        if record_numbers.len() != n || lines.len() != n {
            return Err(DataError::Value(format!(
                "from_rows: {n} rows but {} record numbers and {} lines",
                record_numbers.len(),
                lines.len()
            )));
        }
        if let Some(r) = &raws {
            if r.len() != n {
                return Err(DataError::Value(format!(
                    "from_rows: {n} rows but {} raws",
                    r.len()
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for name in &names {
            if !seen.insert(name.as_str()) {
                return Err(DataError::Value(format!(
                    "from_rows: column {name:?} appears twice"
                )));
            }
        }
        let mut cols: Vec<Vec<Value>> = (0..names.len()).map(|_| Vec::with_capacity(n)).collect();
        for (i, row) in rows.into_iter().enumerate() {
            if row.len() != names.len() {
                return Err(DataError::Value(format!(
                    "from_rows: row {i} has {} values for {} columns",
                    row.len(),
                    names.len()
                )));
            }
            for (c, v) in cols.iter_mut().zip(row) {
                c.push(v);
            }
        }
        let mut rejects: Vec<Option<Box<RejectInfo>>> = Vec::with_capacity(n);
        rejects.resize_with(n, || None);
        let mut b = RecordBatch {
            names,
            columns: cols.into_iter().map(Column::Any).collect(),
            record_numbers,
            lines,
            rejects,
            num_rejected: 0,
            bytes: 0,
            source: None,
            delimiter: b',',
            given_raws: None,
            sensitive: Vec::new(),
        };
        if let Some(raws) = raws {
            b.bytes = raws.iter().map(|r| r.len() as u64 + 1).sum();
            // Keep the given raw text for each row, used if the row is rejected later.
            let mut arena = TextCol::with_capacity(n, b.bytes as usize);
            for r in &raws {
                arena.push(Some(r));
            }
            b.given_raws = Some(arena);
        }
        Ok(b)
    }

    /// A batch a reader built column by column (the JSONL reader): `columns` and `raws` hold
    /// one entry a row; `rejects` are the rows it rejected while reading (their cells NULL).
    pub fn from_columns(
        names: Vec<String>,
        columns: Vec<Column>,
        record_numbers: Vec<u64>,
        lines: Vec<u64>,
        raws: TextCol,
        rejects: Vec<(usize, RejectInfo)>,
    ) -> Self {
        let n = record_numbers.len();
        debug_assert!(columns.iter().all(|c| c.len() == n) && raws.len() == n);
        let mut verdicts: Vec<Option<Box<RejectInfo>>> = Vec::with_capacity(n);
        verdicts.resize_with(n, || None);
        let num_rejected = rejects.len();
        for (i, info) in rejects {
            verdicts[i] = Some(Box::new(info));
        }
        RecordBatch {
            names,
            columns,
            record_numbers,
            lines,
            rejects: verdicts,
            num_rejected,
            bytes: 0,
            source: None,
            delimiter: b',',
            given_raws: Some(raws),
            sensitive: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.record_numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.record_numbers.is_empty()
    }

    pub fn num_rejected(&self) -> usize {
        self.num_rejected
    }

    pub fn num_valid(&self) -> usize {
        self.len() - self.num_rejected
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    fn check_index(&self, i: usize) -> Result<(), DataError> {
        if i >= self.len() {
            return Err(DataError::Index(format!(
                "row index {i} out of range for a batch of {} rows",
                self.len()
            )));
        }
        Ok(())
    }

    #[inline]
    pub fn is_rejected(&self, i: usize) -> bool {
        self.rejects[i].is_some()
    }

    pub fn reject_info(&self, i: usize) -> Option<&RejectInfo> {
        self.rejects.get(i).and_then(|r| r.as_deref())
    }

    /// Every reject, in row order: (row index, verdict).
    pub fn rejects(&self) -> impl Iterator<Item = (usize, &RejectInfo)> {
        self.rejects
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_deref().map(|r| (i, r)))
    }

    /// Mark a row rejected; the first verdict per row wins. Returns whether this call rejected it.
    pub fn reject(
        &mut self,
        i: usize,
        column: Option<String>,
        rule: &str,
        reason: &str,
    ) -> Result<bool, DataError> {
        self.check_index(i)?;
        if self.rejects[i].is_some() {
            return Ok(false);
        }
        let mut info = RejectInfo {
            column,
            rule: rule.to_string(),
            reason: reason.to_string(),
            raw: Some(self.raw(i)?),
            masked: false,
        };
        self.mask(i, &mut info);
        self.rejects[i] = Some(Box::new(info));
        self.num_rejected += 1;
        Ok(true)
    }

    /// The sensitive columns' names (see [`RecordBatch::set_sensitive`]).
    pub fn sensitive(&self) -> &[String] {
        &self.sensitive
    }

    /// Mark columns sensitive: their values are masked in the raw text and the reason of every
    /// reject of this batch, those made already (by the reader) and those made later.
    pub fn set_sensitive(&mut self, names: &[String]) {
        let mut added = false;
        for n in names {
            if !self.sensitive.contains(n) {
                self.sensitive.push(n.clone());
                added = true;
            }
        }
        if !added {
            return;
        }
        for i in 0..self.rejects.len() {
            if let Some(mut info) = self.rejects[i].take() {
                self.mask(i, &mut info);
                self.rejects[i] = Some(info);
            }
        }
    }

    /// The indices of the sensitive columns present in the batch.
    fn sensitive_columns(&self) -> Vec<usize> {
        self.sensitive
            .iter()
            .filter_map(|n| self.column_index(n))
            .collect()
    }

    /// Mask row `i`'s sensitive values in `info`: the raw text is rebuilt from the cells with
    /// each sensitive cell shown as [`MASK`] (or is [`MASK`] alone when the row's cells are
    /// unknown, as for a record rejected while reading), and every
    /// sensitive value (and its quoted preview) in the reason is replaced by [`MASK`].
    fn mask(&self, i: usize, info: &mut RejectInfo) {
        let cols = self.sensitive_columns();
        if cols.is_empty() || info.masked {
            return;
        }
        let cells: Vec<String> = cols
            .iter()
            .filter_map(|&k| match self.columns[k].get(i) {
                CellRef::Null => None,
                c => Some(c.to_text()),
            })
            .filter(|t| !t.is_empty())
            .collect();
        let all_null = self
            .columns
            .iter()
            .all(|c| matches!(c.get(i), CellRef::Null));
        info.raw = Some(if all_null {
            MASK.to_string()
        } else {
            self.rebuild_raw_masked(i, &cols)
        });
        let mut values = cells;
        // longest first, so a value containing another is replaced whole
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut reason = std::mem::take(&mut info.reason);
        for v in &values {
            reason = reason.replace(&preview(v), &format!("\"{MASK}\""));
            reason = reason.replace(v.as_str(), MASK);
        }
        info.reason = reason;
        info.masked = true;
    }

    /// The row rebuilt as one delimited line, the columns `masked` shown as [`MASK`].
    fn rebuild_raw_masked(&self, i: usize, masked: &[usize]) -> String {
        let d = char::from(self.delimiter);
        let mut out = String::new();
        for (k, c) in self.columns.iter().enumerate() {
            if k > 0 {
                out.push(d);
            }
            if masked.contains(&k) && !matches!(c.get(i), CellRef::Null) {
                out.push_str(MASK);
            } else {
                write_field(&mut out, &c.get(i).to_text(), d);
            }
        }
        out
    }

    /// The row rebuilt as one delimited line from its current cells.
    fn rebuild_raw(&self, i: usize) -> String {
        let d = char::from(self.delimiter);
        let mut out = String::new();
        for (k, c) in self.columns.iter().enumerate() {
            if k > 0 {
                out.push(d);
            }
            write_field(&mut out, &c.get(i).to_text(), d);
        }
        out
    }

    /// The raw record: as read when kept, as given to `from_rows`, or rebuilt from the fields.
    pub fn raw(&self, i: usize) -> Result<String, DataError> {
        self.check_index(i)?;
        if let Some(RejectInfo { raw: Some(r), .. }) = self.rejects[i].as_deref() {
            return Ok(r.clone());
        }
        if let Some(raws) = &self.given_raws {
            return Ok(raws.get(i).unwrap_or_default().to_string());
        }
        Ok(self.rebuild_raw(i))
    }

    /// Replace or add a column (a transform).
    pub fn set_column(&mut self, name: &str, values: Vec<Value>) -> Result<(), DataError> {
        if values.len() != self.len() {
            return Err(DataError::Value(format!(
                "set_column({name:?}): {} values for a batch of {} rows",
                values.len(),
                self.len()
            )));
        }
        match self.column_index(name) {
            Some(k) => self.columns[k] = Column::Any(values),
            None => {
                self.names.push(name.to_string());
                self.columns.push(Column::Any(values));
            }
        }
        Ok(())
    }

    /// Coerce the columns to the schema in place; returns how many rows were newly rejected.
    ///
    /// The schema's sensitive fields become sensitive columns of the batch first.
    pub fn validate(&mut self, schema: &TableSchema) -> Result<usize, DataError> {
        self.validate_for(schema, Target::default())
    }

    /// [`RecordBatch::validate`] for a target that stores NaN / big integers or not.
    ///
    /// Never inlined: one call a batch, and a symbol profiles can name
    /// (`benches/callgrind_reader.py` toggles on it).
    #[inline(never)]
    pub fn validate_for(
        &mut self,
        schema: &TableSchema,
        target: Target,
    ) -> Result<usize, DataError> {
        self.validate_with(schema, target, true)
    }

    /// [`RecordBatch::validate_for`], with each field's text column read by its [`Plan`]
    /// (`specialise`) or every cell through [`Field::coerce_for`] (the reference the plans are
    /// tested against).
    pub(crate) fn validate_with(
        &mut self,
        schema: &TableSchema,
        target: Target,
        specialise: bool,
    ) -> Result<usize, DataError> {
        self.set_sensitive(&schema.sensitive_names());
        let n = self.len();
        let index: HashMap<&str, usize> = self
            .names
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let mut sources = Vec::with_capacity(schema.fields.len());
        for f in &schema.fields {
            let src = index.get(f.name.as_str()).copied();
            if src.is_none() && f.required {
                let msg = format!(
                    "column {:?} required by the schema is missing from the header",
                    f.name
                );
                return Err(match &self.source {
                    Some(p) => DataError::source(p, None, msg),
                    None => DataError::source("<batch>", None, msg),
                });
            }
            sources.push(src);
        }
        let missing = schema.missing_values();
        let mut rejected: Vec<bool> = self.rejects.iter().map(Option::is_some).collect();
        let mut verdicts: Vec<(usize, usize, &'static str, String)> = Vec::new();

        enum Built {
            Col(Column),
            /// Keep the source text column, with these rows set to NULL.
            Pass(usize, Vec<usize>),
        }
        let mut built = Vec::with_capacity(schema.fields.len());
        for (fi, (f, src)) in schema.fields.iter().zip(&sources).enumerate() {
            let Some(src) = *src else {
                built.push(Built::Col(Column::Any(vec![Value::Null; n])));
                continue;
            };
            let col = &self.columns[src];
            let pass = f.text_passthrough() && matches!(col, Column::Text(_));
            let mut out = match f.ftype {
                // a big integer field holds its values as digits (beyond 64 bits)
                FieldType::Integer if f.big => Column::Text(TextCol::with_capacity(n, 16 * n)),
                FieldType::Integer | FieldType::Year => Column::Int(Vec::with_capacity(n)),
                FieldType::Number => Column::Real(Vec::with_capacity(n)),
                FieldType::Boolean => Column::Bool(Vec::with_capacity(n)),
                _ if pass => Column::Any(Vec::new()),
                _ => Column::Text(TextCol::with_capacity(n, 32 * n)),
            };
            let mut nulls = Vec::new();
            // One cell the generic way (a plan's undecided cells, every cell without a plan):
            // its value, or NULL with the row rejected.
            let mut generic = |row: usize, cell, is_rejected: &mut bool| match f
                .coerce_for(cell, missing, target)
            {
                Ok(t) => t,
                Err((rule, reason)) => {
                    *is_rejected = true;
                    verdicts.push((row, fi, rule, reason));
                    Typed::Null
                }
            };
            let plan = match col {
                Column::Text(c) if specialise && c.len() == n => f.plan(missing, target),
                Column::Int(v) if specialise && v.len() == n => f.plan(missing, target),
                Column::Real(v) if specialise && v.len() == n => f.plan(missing, target),
                _ => Plan::Generic,
            };
            match (&plan, col, &mut out) {
                // typed columns (the JSONL reader's integers and floats): bounds only
                (Plan::Int(cells, bounds), Column::Int(src), Column::Int(v)) => run_values(
                    src,
                    &mut rejected,
                    |c| cells.int_value(*bounds, c),
                    |row, c, r| match generic(row, c.map_or(CellRef::Null, CellRef::Int), r) {
                        Typed::Int(x) => Some(x),
                        _ => None,
                    },
                    |x| v.push(x),
                ),
                (Plan::Num(cells, bounds, nan), Column::Real(src), Column::Real(v)) => run_values(
                    src,
                    &mut rejected,
                    |c| cells.real_value(*bounds, *nan, c),
                    |row, c, r| match generic(row, c.map_or(CellRef::Null, CellRef::Real), r) {
                        Typed::Real(x) => Some(x),
                        _ => None,
                    },
                    |x| v.push(x),
                ),
                (Plan::Num(cells, bounds, nan), Column::Int(src), Column::Real(v)) => run_values(
                    src,
                    &mut rejected,
                    |c| cells.real_value(*bounds, *nan, c.map(|i| i as f64)),
                    |row, c, r| match generic(row, c.map_or(CellRef::Null, CellRef::Int), r) {
                        Typed::Real(x) => Some(x),
                        _ => None,
                    },
                    |x| v.push(x),
                ),
                (Plan::Int(cells, bounds), Column::Text(tc), Column::Int(v)) => run_plan(
                    tc,
                    &mut rejected,
                    |c| cells.int(*bounds, c),
                    |row, c, r| match generic(row, text_cell(c), r) {
                        Typed::Int(x) => Some(x),
                        _ => None,
                    },
                    |_, x| v.push(x),
                ),
                (Plan::Num(cells, bounds, nan), Column::Text(tc), Column::Real(v)) => run_plan(
                    tc,
                    &mut rejected,
                    |c| cells.num(*bounds, *nan, c),
                    |row, c, r| match generic(row, text_cell(c), r) {
                        Typed::Real(x) => Some(x),
                        _ => None,
                    },
                    |_, x| v.push(x),
                ),
                (Plan::Bool(cells), Column::Text(tc), Column::Bool(v)) => run_plan(
                    tc,
                    &mut rejected,
                    |c| cells.boolean(c),
                    |row, c, r| match generic(row, text_cell(c), r) {
                        Typed::Bool(x) => Some(x),
                        _ => None,
                    },
                    |_, x| v.push(x),
                ),
                (Plan::Datetime(cells, bounds, text), Column::Text(tc), Column::Text(c)) => {
                    // a planned value is written once into `iso` and copied in; a value the
                    // generic path decided arrives as its text
                    let mut iso = String::with_capacity(40);
                    run_plan(
                        tc,
                        &mut rejected,
                        |cell| cells.datetime(*bounds, *text, cell).map(|t| t.map(Ok)),
                        |row, cell, r| match generic(row, text_cell(cell), r) {
                            Typed::Text(t) => Some(Err(t)),
                            _ => None,
                        },
                        |_, v| match v {
                            Some(Ok(t)) => {
                                iso.clear();
                                t.write_iso(&mut iso);
                                c.push(Some(&iso));
                            }
                            Some(Err(text)) => c.push(Some(&text)),
                            None => c.push(None),
                        },
                    )
                }
                (Plan::Pass(cells, check), Column::Text(tc), _) if pass => run_plan(
                    tc,
                    &mut rejected,
                    |c| cells.pass(check, c),
                    |row, c, r| match generic(row, text_cell(c), r) {
                        Typed::Null => None,
                        _ => Some(()),
                    },
                    |row, x| {
                        if x.is_none() {
                            nulls.push(row)
                        }
                    },
                ),
                _ => {
                    for (row, is_rejected) in rejected.iter_mut().enumerate() {
                        let typed = if *is_rejected {
                            Typed::Null
                        } else {
                            generic(row, col.get(row), is_rejected)
                        };
                        match (&mut out, typed) {
                            (Column::Int(v), Typed::Int(x)) => v.push(Some(x)),
                            (Column::Int(v), _) => v.push(None),
                            (Column::Real(v), Typed::Real(x)) => v.push(Some(x)),
                            (Column::Real(v), _) => v.push(None),
                            (Column::Bool(v), Typed::Bool(x)) => v.push(Some(x)),
                            (Column::Bool(v), _) => v.push(None),
                            (Column::Text(c), Typed::Text(t)) => c.push(Some(&t)),
                            (Column::Text(c), _) => c.push(None),
                            (_, Typed::Null) if pass => nulls.push(row),
                            _ => {}
                        }
                    }
                }
            }
            built.push(if pass {
                Built::Pass(src, nulls)
            } else {
                Built::Col(out)
            });
        }
        // Raw text of the newly rejected rows, rebuilt while every source column is intact.
        let newly = verdicts.len();
        for (row, fi, rule, reason) in verdicts {
            let mut info = RejectInfo {
                column: Some(schema.fields[fi].name.clone()),
                rule: rule.to_string(),
                reason,
                raw: Some(self.raw(row)?),
                masked: false,
            };
            self.mask(row, &mut info);
            self.rejects[row] = Some(Box::new(info));
        }
        self.num_rejected += newly;
        let mut old: Vec<Option<Column>> = std::mem::take(&mut self.columns)
            .into_iter()
            .map(Some)
            .collect();
        self.columns = built
            .into_iter()
            .map(|b| match b {
                Built::Col(c) => c,
                Built::Pass(src, nulls) => match old[src].take() {
                    Some(Column::Text(mut c)) => {
                        for row in nulls {
                            c.nulls[row] = true;
                        }
                        Column::Text(c)
                    }
                    _ => Column::Any(vec![Value::Null; n]),
                },
            })
            .collect();
        self.names = schema.field_names();
        self.given_raws = None;
        Ok(newly)
    }
}

#[cfg(test)]
#[path = "batch_plan_tests.rs"]
mod plan_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_are_masked_in_raw_and_reason() {
        let schema = TableSchema::from_json(
            r#"{"fields": [{"name": "id", "type": "integer"},
                {"name": "card", "type": "integer", "sensitive": true}]}"#,
        )
        .unwrap();
        let mut b = text_batch(&["id", "card"], &[&["1", "4111x1111"], &["2", "4242"]]);
        b.validate(&schema).unwrap();
        let r = b.reject_info(0).unwrap();
        assert!(r.masked);
        assert!(!r.reason.contains("4111"), "{}", r.reason);
        assert_eq!(r.raw.as_deref(), Some("1,***"));
        b.reject(1, Some("card".into()), "luhn", "4242 fails the Luhn check")
            .unwrap();
        let r = b.reject_info(1).unwrap();
        assert_eq!(r.reason, "*** fails the Luhn check");
        assert_eq!(r.raw.as_deref(), Some("2,***"));
        assert!(r.masked);
    }

    #[test]
    fn rejects_made_before_the_columns_are_marked_are_masked_too() {
        let mut b = text_batch(&["id", "card"], &[&["1", "4111"]]);
        b.push_rejected_row(
            2,
            3,
            RejectInfo {
                column: None,
                rule: "row-length".into(),
                reason: "expected 2 fields, found 3".into(),
                raw: Some("2,4111,x".into()),
                masked: false,
            },
        );
        b.reject(0, None, "custom", "card 4111 is odd").unwrap();
        b.set_sensitive(&["card".to_string()]);
        let r = b.reject_info(1).unwrap();
        assert_eq!((r.raw.as_deref(), r.masked), (Some(MASK), true));
        let r = b.reject_info(0).unwrap();
        assert_eq!(r.reason, "card *** is odd");
        assert_eq!(r.raw.as_deref(), Some("1,***"));
    }

    #[test]
    fn without_sensitive_columns_nothing_is_masked() {
        let mut b = text_batch(&["id", "card"], &[&["1", "4111"]]);
        b.set_sensitive(&["other".to_string()]);
        b.reject(0, None, "custom", "card 4111").unwrap();
        let r = b.reject_info(0).unwrap();
        assert_eq!((r.reason.as_str(), r.masked), ("card 4111", false));
    }

    fn text_batch(names: &[&str], rows: &[&[&str]]) -> RecordBatch {
        let mut b = RecordBatch::new_text(names.iter().map(|s| s.to_string()).collect(), 4, &[]);
        for (i, r) in rows.iter().enumerate() {
            b.push_text_row(r.iter().copied(), i as u64 + 1, i as u64 + 2);
        }
        b
    }

    fn schema(json: &str) -> TableSchema {
        TableSchema::from_json(json).unwrap()
    }

    #[test]
    fn validate_coerces_by_name_and_drops_extra_columns() {
        let mut b = text_batch(
            &["extra", "n", "s"],
            &[&["x", "1", "a"], &["y", "zz", "b,c"], &["z", "", ""]],
        );
        let s = schema(
            r#"{"fields": [{"name": "s"}, {"name": "n", "type": "integer"}, {"name": "d", "type": "date"}]}"#,
        );
        assert_eq!(b.validate(&s).unwrap(), 1);
        assert_eq!(b.names, ["s", "n", "d"]);
        assert_eq!(b.columns[0].get(0), CellRef::Text("a"));
        assert_eq!(b.columns[1].get(0), CellRef::Int(1));
        assert_eq!(b.columns[2].get(0), CellRef::Null);
        assert_eq!(
            b.columns[0].get(2),
            CellRef::Null,
            "missing value becomes NULL"
        );
        assert!(b.is_rejected(1));
        let r = b.reject_info(1).unwrap();
        assert_eq!((r.column.as_deref(), r.rule.as_str()), (Some("n"), "type"));
        assert_eq!(r.raw.as_deref(), Some("y,zz,\"b,c\""));
        assert_eq!(b.num_valid(), 2);
    }

    #[test]
    fn first_verdict_wins() {
        let mut b = text_batch(&["n"], &[&["x"]]);
        assert!(b.reject(0, None, "custom", "python said so").unwrap());
        let s = schema(r#"{"fields": [{"name": "n", "type": "integer"}]}"#);
        assert_eq!(b.validate(&s).unwrap(), 0);
        assert_eq!(b.reject_info(0).unwrap().rule, "custom");
        assert!(!b.reject(0, None, "other", "later").unwrap());
        assert_eq!(b.num_rejected(), 1);
        assert!(b.reject(5, None, "r", "r").is_err());
    }

    #[test]
    fn required_column_missing_from_header_fails_the_batch() {
        let mut b = text_batch(&["a"], &[&["1"]]);
        b.source = Some("f.csv".into());
        let s = schema(r#"{"fields": [{"name": "b", "constraints": {"required": true}}]}"#);
        let e = b.validate(&s).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"b\" required by the schema is missing"),
            "{e}"
        );
    }

    #[test]
    fn from_rows_and_set_column() {
        let mut b = RecordBatch::from_rows(
            vec!["a".into(), "b".into()],
            vec![
                vec![Value::Int(1), Value::Text("x".into())],
                vec![Value::Real(2.5), Value::Null],
            ],
            vec![1, 2],
            vec![1, 2],
            Some(vec!["{raw1}".into(), "{raw2}".into()]),
        )
        .unwrap();
        b.set_column("c", vec![Value::Bool(true), Value::Bool(false)])
            .unwrap();
        assert!(b.set_column("c", vec![]).is_err());
        let s = schema(
            r#"{"fields": [{"name": "a", "type": "integer"}, {"name": "b", "constraints": {"required": true}}, {"name": "c", "type": "boolean"}]}"#,
        );
        assert_eq!(b.validate(&s).unwrap(), 1);
        assert_eq!(b.reject_info(1).unwrap().raw.as_deref(), Some("{raw2}"));
        assert_eq!(b.columns[2].get(0), CellRef::Bool(true));
        assert!(
            RecordBatch::from_rows(vec!["a".into()], vec![vec![]], vec![1], vec![1], None).is_err()
        );
    }
}
