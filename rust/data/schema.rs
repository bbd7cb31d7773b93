//! Frictionless Table Schema, compiled: field types, constraints and the coercion of one value.
//!
//! Supported: types `string`, `integer`, `number`, `boolean`, `date`, `datetime`, `time`,
//! `year`, `object` and `array` (JSON text) (format absent or `default`); constraints `required`, `enum`, `minimum`/`maximum` (integer, number, date,
//! datetime), `minLength`/`maxLength` (characters) and `pattern` (a full match, Rust `regex`
//! syntax); `trueValues`/`falseValues` on boolean fields; `missingValues` (default `[""]`).
//! Anything else that changes how values are read (an unknown type, format or constraint) is a
//! [`DataError::Schema`] naming the field; descriptive keys (`title`, `description`, ...) and
//! unknown top-level keys are ignored.

use std::borrow::Cow;
use std::collections::HashSet;

use regex::Regex;
use serde_json::{json, Map, Value as Json};

use super::batch::CellRef;
use super::coerce::{self, DateTime};
use super::error::{preview, DataError};
pub use super::field_type::FieldType;
use super::temporal;

/// A typed value produced by coercion.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<'a> {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(Cow<'a, str>),
}

/// A comparable bound for minimum/maximum and the members of `enum`.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Int(i64),
    Num(f64),
    Bool(bool),
    Text(String),
    Day(i64),
    Time(i64, u32),
}

impl Key {
    fn le(&self, other: &Key) -> bool {
        match (self, other) {
            (Key::Int(a), Key::Int(b)) => a <= b,
            (Key::Num(a), Key::Num(b)) => a <= b,
            (Key::Day(a), Key::Day(b)) => a <= b,
            (Key::Time(a, an), Key::Time(b, bn)) => (a, an) <= (b, bn),
            _ => false,
        }
    }
}

/// One compiled field.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ftype: FieldType,
    pub required: bool,
    /// `"sensitive": true`: the value is masked wherever a reject can show it.
    pub sensitive: bool,
    enum_values: Option<Vec<Key>>,
    enum_display: String,
    minimum: Option<(Key, String)>,
    maximum: Option<(Key, String)>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    pattern: Option<(String, Regex)>,
    true_values: Vec<String>,
    false_values: Vec<String>,
    constraints: Map<String, Json>,
}

/// A rejected value: the rule that failed and a reason naming the value.
pub type Verdict = (&'static str, String);

/// A compiled Table Schema.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub fields: Vec<Field>,
    missing_values: Vec<String>,
    doc: Json,
}

fn schema_err(field: &str, msg: impl std::fmt::Display) -> DataError {
    DataError::Schema(format!("Table Schema field {field:?}: {msg}"))
}

fn string_list(v: &Json, what: &str, field: Option<&str>) -> Result<Vec<String>, DataError> {
    let err = || {
        let msg = format!("{what} must be a list of strings");
        match field {
            Some(f) => schema_err(f, msg),
            None => DataError::Schema(format!("Table Schema: {msg}")),
        }
    };
    v.as_array()
        .ok_or_else(err)?
        .iter()
        .map(|x| x.as_str().map(str::to_string).ok_or_else(err))
        .collect()
}

impl Field {
    fn compile(v: &Json) -> Result<Field, DataError> {
        let obj = v.as_object().ok_or_else(|| {
            DataError::Schema("Table Schema: each field must be an object".into())
        })?;
        let name = match obj.get("name") {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            Some(Json::String(_)) => {
                return Err(DataError::Schema(
                    "Table Schema: a field has an empty name".into(),
                ))
            }
            _ => {
                return Err(DataError::Schema(
                    "Table Schema: every field needs a \"name\" (a string)".into(),
                ))
            }
        };
        let ftype = match obj.get("type") {
            None => FieldType::String,
            Some(Json::String(t)) => FieldType::parse(t).ok_or_else(|| {
                schema_err(
                    &name,
                    format!(
                        "type {t:?} is not supported (supported: {})",
                        FieldType::supported()
                    ),
                )
            })?,
            Some(_) => return Err(schema_err(&name, "\"type\" must be a string")),
        };
        match obj.get("format") {
            None => {}
            Some(Json::String(f)) if f == "default" => {}
            Some(f) => {
                return Err(schema_err(
                    &name,
                    format!("format {f} is not supported (only \"default\")"),
                ))
            }
        }
        let mut field = Field {
            name,
            ftype,
            required: false,
            sensitive: false,
            enum_values: None,
            enum_display: String::new(),
            minimum: None,
            maximum: None,
            min_length: None,
            max_length: None,
            pattern: None,
            true_values: ["true", "True", "TRUE", "1"].map(String::from).to_vec(),
            false_values: ["false", "False", "FALSE", "0"].map(String::from).to_vec(),
            constraints: Map::new(),
        };
        match obj.get("sensitive") {
            None => {}
            Some(Json::Bool(b)) => field.sensitive = *b,
            Some(_) => {
                return Err(schema_err(
                    &field.name,
                    "\"sensitive\" must be true or false",
                ))
            }
        }
        if let Some(tv) = obj.get("trueValues") {
            field.true_values = string_list(tv, "trueValues", Some(&field.name))?;
        }
        if let Some(fv) = obj.get("falseValues") {
            field.false_values = string_list(fv, "falseValues", Some(&field.name))?;
        }
        match obj.get("constraints") {
            None => {}
            Some(Json::Object(c)) => {
                field.constraints = c.clone();
                for (k, v) in c {
                    field.constraint(k, v)?;
                }
            }
            Some(_) => return Err(schema_err(&field.name, "\"constraints\" must be an object")),
        }
        Ok(field)
    }

    /// A bound or enum member in this field's type, from JSON.
    fn key(&self, v: &Json, what: &str) -> Result<(Key, String), DataError> {
        let bad = || {
            schema_err(
                &self.name,
                format!("{what} {v} is not a valid {}", self.ftype.name()),
            )
        };
        let key = match (self.ftype, v) {
            (FieldType::Integer | FieldType::Year, Json::Number(n)) => {
                Key::Int(n.as_i64().ok_or_else(bad)?)
            }
            (FieldType::Year, Json::String(s)) => {
                Key::Int(temporal::parse_year(s).map_err(|_| bad())?)
            }
            (FieldType::Integer, Json::String(s)) => {
                Key::Int(coerce::parse_int(s).map_err(|_| bad())?)
            }
            (FieldType::Number, Json::Number(n)) => Key::Num(n.as_f64().ok_or_else(bad)?),
            (FieldType::Number, Json::String(s)) => {
                Key::Num(coerce::parse_number(s).map_err(|_| bad())?)
            }
            (FieldType::Date, Json::String(s)) => {
                Key::Day(coerce::parse_date(s).map_err(|_| bad())?)
            }
            (FieldType::Datetime, Json::String(s)) => {
                let t = coerce::parse_datetime(s).map_err(|_| bad())?;
                Key::Time(t.secs, t.nanos)
            }
            (FieldType::String, Json::String(s)) => Key::Text(s.clone()),
            (FieldType::Boolean, Json::Bool(b)) => Key::Bool(*b),
            (FieldType::Boolean, Json::String(s)) => {
                if self.true_values.contains(s) {
                    Key::Bool(true)
                } else if self.false_values.contains(s) {
                    Key::Bool(false)
                } else {
                    return Err(bad());
                }
            }
            _ => return Err(bad()),
        };
        let shown = match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        Ok((key, shown))
    }

    fn constraint(&mut self, k: &str, v: &Json) -> Result<(), DataError> {
        let name = self.name.clone();
        let length = |v: &Json| {
            v.as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| schema_err(&name, format!("{k} must be a non-negative integer")))
        };
        match k {
            "required" => {
                self.required = v
                    .as_bool()
                    .ok_or_else(|| schema_err(&name, "required must be true or false"))?
            }
            "enum" => {
                let items = v
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| schema_err(&name, "enum must be a non-empty list"))?;
                let mut keys = Vec::with_capacity(items.len());
                let mut shown = Vec::with_capacity(items.len());
                for it in items {
                    let (key, s) = self.key(it, "enum value")?;
                    keys.push(key);
                    shown.push(format!("{s:?}"));
                }
                self.enum_values = Some(keys);
                let mut display = shown.join(", ");
                if display.len() > 200 {
                    display = format!(
                        "{}... ({} values)",
                        &shown[..3.min(shown.len())].join(", "),
                        shown.len()
                    );
                }
                self.enum_display = format!("[{display}]");
            }
            "minimum" | "maximum" => {
                if !matches!(
                    self.ftype,
                    FieldType::Integer
                        | FieldType::Number
                        | FieldType::Date
                        | FieldType::Datetime
                        | FieldType::Year
                ) {
                    return Err(schema_err(
                        &name,
                        format!(
                            "{k} applies to integer, number, date, datetime and year fields, \
                             not {}",
                            self.ftype.name()
                        ),
                    ));
                }
                let b = self.key(v, k)?;
                if k == "minimum" {
                    self.minimum = Some(b);
                } else {
                    self.maximum = Some(b);
                }
            }
            "minLength" => self.min_length = Some(length(v)?),
            "maxLength" => self.max_length = Some(length(v)?),
            "pattern" => {
                let p = v
                    .as_str()
                    .ok_or_else(|| schema_err(&name, "pattern must be a string"))?;
                let re = Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                    schema_err(&name, format!("pattern {p:?} does not compile: {e}"))
                })?;
                self.pattern = Some((p.to_string(), re));
            }
            other => {
                return Err(schema_err(
                    &name,
                    format!(
                        "constraint {other:?} is not supported (supported: required, enum, \
                         minimum, maximum, minLength, maxLength, pattern)"
                    ),
                ))
            }
        }
        Ok(())
    }

    /// Coerce one cell to this field's type and check its constraints.
    ///
    /// `missing` are the schema's missing values (they become NULL). Returns the typed value or
    /// the failed rule and a reason naming the value.
    pub fn coerce<'a>(&self, cell: CellRef<'a>, missing: &[String]) -> Result<Typed<'a>, Verdict> {
        let cell = match cell {
            CellRef::Text(s) if missing.iter().any(|m| m == s) => CellRef::Null,
            c => c,
        };
        if let CellRef::Null = cell {
            if self.required {
                return Err(("required", "a value is required".to_string()));
            }
            return Ok(Typed::Null);
        }
        let typed = self.convert(cell)?;
        if self.enum_values.is_some() || self.minimum.is_some() || self.maximum.is_some() {
            self.check_bounds(&typed, cell)?;
        }
        if self.min_length.is_some() || self.max_length.is_some() || self.pattern.is_some() {
            let text: Cow<'_, str> = match (&cell, &typed) {
                (CellRef::Text(s), _) => Cow::Borrowed(*s),
                (_, Typed::Text(t)) => Cow::Borrowed(t.as_ref()),
                (c, _) => Cow::Owned(c.to_text()),
            };
            self.check_text(&text)?;
        }
        Ok(typed)
    }

    fn type_error(&self, cell: CellRef<'_>, msg: &str) -> Verdict {
        let shown = match cell {
            CellRef::Text(s) => preview(s),
            other => other.to_text(),
        };
        ("type", format!("{shown} {msg}"))
    }

    fn convert<'a>(&self, cell: CellRef<'a>) -> Result<Typed<'a>, Verdict> {
        let err = |msg: &str| self.type_error(cell, msg);
        Ok(match (self.ftype, cell) {
            (_, CellRef::Null) => Typed::Null,
            (FieldType::String, CellRef::Text(s)) => Typed::Text(Cow::Borrowed(s)),
            (FieldType::String, c) => Typed::Text(Cow::Owned(c.to_text())),
            (FieldType::Integer, CellRef::Text(s)) => {
                Typed::Int(coerce::parse_int(s).map_err(err)?)
            }
            (FieldType::Integer, CellRef::Int(i)) => Typed::Int(i),
            (FieldType::Integer, _) => return Err(err("is not an integer")),
            (FieldType::Number, c) => {
                let v = match c {
                    CellRef::Text(s) => coerce::parse_number(s).map_err(err)?,
                    CellRef::Int(i) => i as f64,
                    CellRef::Real(f) => f,
                    _ => return Err(err("is not a number")),
                };
                if v.is_nan() {
                    return Err(err("is NaN, which SQLite would store as NULL"));
                }
                Typed::Real(v)
            }
            (FieldType::Boolean, CellRef::Bool(b)) => Typed::Bool(b),
            (FieldType::Boolean, CellRef::Text(s)) => {
                if self.true_values.iter().any(|t| t == s) {
                    Typed::Bool(true)
                } else if self.false_values.iter().any(|t| t == s) {
                    Typed::Bool(false)
                } else {
                    return Err(err("is not a boolean"));
                }
            }
            (FieldType::Boolean, _) => return Err(err("is not a boolean")),
            (FieldType::Date, CellRef::Text(s)) => {
                coerce::parse_date(s).map_err(err)?;
                Typed::Text(Cow::Borrowed(s))
            }
            (FieldType::Datetime, CellRef::Text(s)) => {
                let t = coerce::parse_datetime(s).map_err(err)?;
                Typed::Text(Cow::Owned(t.to_iso()))
            }
            (FieldType::Time, CellRef::Text(s)) => {
                Typed::Text(Cow::Owned(temporal::parse_time(s).map_err(err)?))
            }
            (FieldType::Year, CellRef::Text(s)) => {
                Typed::Int(temporal::parse_year(s).map_err(err)?)
            }
            (FieldType::Year, CellRef::Int(i)) if (0..=9999).contains(&i) => Typed::Int(i),
            (FieldType::Object | FieldType::Array, CellRef::Text(s)) => {
                let want_object = self.ftype == FieldType::Object;
                match serde_json::from_str::<Json>(s) {
                    Ok(Json::Object(_)) if want_object => Typed::Text(Cow::Borrowed(s)),
                    Ok(Json::Array(_)) if !want_object => Typed::Text(Cow::Borrowed(s)),
                    _ if want_object => return Err(err("is not a JSON object")),
                    _ => return Err(err("is not a JSON array")),
                }
            }
            (FieldType::Date, _) => return Err(err("is not a date (YYYY-MM-DD)")),
            (FieldType::Datetime, _) => return Err(err("is not a datetime")),
            (FieldType::Time, _) => return Err(err("is not a time")),
            (FieldType::Year, _) => return Err(err("is not a year")),
            (FieldType::Object, _) => return Err(err("is not a JSON object")),
            (FieldType::Array, _) => return Err(err("is not a JSON array")),
        })
    }

    fn key_of(&self, typed: &Typed<'_>) -> Option<Key> {
        Some(match (self.ftype, typed) {
            (_, Typed::Null) => return None,
            (_, Typed::Int(i)) => Key::Int(*i),
            (_, Typed::Real(f)) => Key::Num(*f),
            (_, Typed::Bool(b)) => Key::Bool(*b),
            (FieldType::Date, Typed::Text(s)) => Key::Day(coerce::parse_date(s).ok()?),
            (FieldType::Datetime, Typed::Text(s)) => {
                let DateTime { secs, nanos, .. } = coerce::parse_datetime(s).ok()?;
                Key::Time(secs, nanos)
            }
            (_, Typed::Text(s)) => Key::Text(s.to_string()),
        })
    }

    fn check_bounds(&self, typed: &Typed<'_>, cell: CellRef<'_>) -> Result<(), Verdict> {
        let shown = || match cell {
            CellRef::Text(s) => preview(s),
            c => c.to_text(),
        };
        // Strings only have `enum`: compare without building a key (no allocation per value).
        if let (FieldType::String, Typed::Text(s), Some(values)) =
            (self.ftype, typed, &self.enum_values)
        {
            let s: &str = s;
            if values.iter().any(|k| matches!(k, Key::Text(t) if t == s)) {
                return Ok(());
            }
            return Err((
                "enum",
                format!("{} is not one of {}", shown(), self.enum_display),
            ));
        }
        let Some(key) = self.key_of(typed) else {
            return Ok(());
        };
        if let Some(values) = &self.enum_values {
            if !values.contains(&key) {
                return Err((
                    "enum",
                    format!("{} is not one of {}", shown(), self.enum_display),
                ));
            }
        }
        if let Some((min, text)) = &self.minimum {
            if !min.le(&key) {
                return Err((
                    "minimum",
                    format!("{} is less than the minimum {text}", shown()),
                ));
            }
        }
        if let Some((max, text)) = &self.maximum {
            if !key.le(max) {
                return Err((
                    "maximum",
                    format!("{} is more than the maximum {text}", shown()),
                ));
            }
        }
        Ok(())
    }

    fn check_text(&self, s: &str) -> Result<(), Verdict> {
        if self.min_length.is_some() || self.max_length.is_some() {
            let n = s.chars().count();
            if let Some(min) = self.min_length {
                if n < min {
                    return Err((
                        "minLength",
                        format!(
                            "{} has {n} characters, fewer than minLength {min}",
                            preview(s)
                        ),
                    ));
                }
            }
            if let Some(max) = self.max_length {
                if n > max {
                    return Err((
                        "maxLength",
                        format!(
                            "{} has {n} characters, more than maxLength {max}",
                            preview(s)
                        ),
                    ));
                }
            }
        }
        if let Some((p, re)) = &self.pattern {
            if !re.is_match(s) {
                return Err((
                    "pattern",
                    format!("{} does not match the pattern {p:?}", preview(s)),
                ));
            }
        }
        Ok(())
    }

    /// `{"name", "type", "sqlite_type", "constraints"}` for `TableSchema.fields()`.
    pub fn describe(&self) -> Json {
        json!({
            "name": self.name,
            "type": self.ftype.name(),
            "sqlite_type": self.ftype.sqlite_type(),
            "constraints": Json::Object(self.constraints.clone()),
            "sensitive": self.sensitive,
        })
    }
}

impl TableSchema {
    /// Compile a Table Schema JSON document.
    pub fn from_json(text: &str) -> Result<Self, DataError> {
        let doc: Json = serde_json::from_str(text)
            .map_err(|e| DataError::Schema(format!("Table Schema is not valid JSON: {e}")))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| DataError::Schema("Table Schema must be a JSON object".into()))?;
        let fields_json = obj
            .get("fields")
            .and_then(Json::as_array)
            .ok_or_else(|| DataError::Schema("Table Schema needs a \"fields\" list".into()))?;
        if fields_json.is_empty() {
            return Err(DataError::Schema("Table Schema has no fields".into()));
        }
        let fields = fields_json
            .iter()
            .map(Field::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen = HashSet::new();
        for f in &fields {
            if !seen.insert(f.name.as_str()) {
                return Err(DataError::Schema(format!(
                    "Table Schema: field name {:?} appears more than once",
                    f.name
                )));
            }
        }
        let missing_values = match obj.get("missingValues") {
            None => vec![String::new()],
            Some(v) => string_list(v, "missingValues", None)?,
        };
        Ok(TableSchema {
            fields,
            missing_values,
            doc,
        })
    }

    /// A schema of nullable string columns (loading without a schema).
    pub fn text_columns(names: &[String]) -> Result<Self, DataError> {
        let fields: Vec<Json> = names
            .iter()
            .map(|n| json!({"name": n, "type": "string"}))
            .collect();
        Self::from_json(&json!({ "fields": fields }).to_string())
    }

    pub fn field_names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.clone()).collect()
    }

    /// The names of the fields marked `"sensitive": true`.
    pub fn sensitive_names(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| f.sensitive)
            .map(|f| f.name.clone())
            .collect()
    }

    pub fn missing_values(&self) -> &[String] {
        &self.missing_values
    }

    pub fn to_json(&self) -> String {
        self.doc.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: Json) -> Result<TableSchema, DataError> {
        TableSchema::from_json(&json!({ "fields": fields }).to_string())
    }

    fn one(field: Json) -> Field {
        schema(json!([field])).unwrap().fields.remove(0)
    }

    fn ok<'a>(f: &Field, s: &'a str) -> Typed<'a> {
        f.coerce(CellRef::Text(s), &[String::new()]).unwrap()
    }

    fn rule(f: &Field, s: &str) -> &'static str {
        f.coerce(CellRef::Text(s), &[String::new()]).unwrap_err().0
    }

    #[test]
    fn types_and_sqlite_types() {
        let s = schema(json!([
            {"name": "a", "type": "integer"}, {"name": "b", "type": "number"},
            {"name": "c"}, {"name": "d", "type": "boolean"}, {"name": "e", "type": "date"},
            {"name": "f", "type": "datetime"}
        ]))
        .unwrap();
        let t: Vec<_> = s.fields.iter().map(|f| f.ftype.sqlite_type()).collect();
        assert_eq!(t, ["INTEGER", "REAL", "TEXT", "INTEGER", "TEXT", "TEXT"]);
        assert_eq!(ok(&s.fields[0], "12"), Typed::Int(12));
        assert_eq!(rule(&s.fields[0], "1.0"), "type");
        assert_eq!(ok(&s.fields[1], "1.5"), Typed::Real(1.5));
        assert_eq!(rule(&s.fields[1], "NaN"), "type");
        assert_eq!(ok(&s.fields[3], "TRUE"), Typed::Bool(true));
        assert_eq!(ok(&s.fields[3], "0"), Typed::Bool(false));
        assert_eq!(rule(&s.fields[3], "yes"), "type");
        assert_eq!(rule(&s.fields[4], "2023-02-29"), "type");
        assert_eq!(
            ok(&s.fields[5], "2024-01-01T00:00:00+01:00"),
            Typed::Text(Cow::Owned("2023-12-31T23:00:00Z".into()))
        );
        assert_eq!(ok(&s.fields[0], ""), Typed::Null);
    }

    #[test]
    fn constraints() {
        let f = one(json!({"name": "n", "type": "integer",
            "constraints": {"required": true, "minimum": 1, "maximum": "10", "enum": [1, 2, 3, 20]}}));
        assert_eq!(rule(&f, ""), "required");
        assert_eq!(rule(&f, "0"), "enum");
        assert_eq!(rule(&f, "20"), "maximum");
        assert_eq!(ok(&f, "3"), Typed::Int(3));
        let f = one(
            json!({"name": "s", "constraints": {"minLength": 2, "maxLength": 3, "pattern": "[a-zé]+"}}),
        );
        assert_eq!(rule(&f, "a"), "minLength");
        assert_eq!(rule(&f, "abcd"), "maxLength");
        assert_eq!(rule(&f, "ab1"), "pattern");
        assert_eq!(ok(&f, "éé"), Typed::Text(Cow::Borrowed("éé")));
        // pattern is a full match
        let f = one(json!({"name": "s", "constraints": {"pattern": "a|b"}}));
        assert_eq!(rule(&f, "ab"), "pattern");
        let f = one(json!({"name": "d", "type": "date", "constraints": {"minimum": "2024-01-01"}}));
        assert_eq!(rule(&f, "2023-12-31"), "minimum");
        let f = one(
            json!({"name": "t", "type": "datetime", "constraints": {"maximum": "2024-01-01T00:00:00Z"}}),
        );
        assert_eq!(rule(&f, "2024-01-01T00:00:00.5Z"), "maximum");
        assert!(f
            .coerce(CellRef::Text("2024-01-01T00:30:00+01:00"), &[])
            .is_ok());
        let f =
            one(json!({"name": "b", "type": "boolean", "trueValues": ["y"], "falseValues": ["n"]}));
        assert_eq!(ok(&f, "y"), Typed::Bool(true));
        assert_eq!(rule(&f, "true"), "type");
    }

    #[test]
    fn typed_inputs() {
        let f = one(json!({"name": "n", "type": "number"}));
        assert_eq!(f.coerce(CellRef::Int(2), &[]).unwrap(), Typed::Real(2.0));
        let f = one(json!({"name": "s"}));
        assert_eq!(
            f.coerce(CellRef::Int(2), &[]).unwrap(),
            Typed::Text(Cow::Owned("2".into()))
        );
        let f = one(json!({"name": "i", "type": "integer"}));
        assert_eq!(f.coerce(CellRef::Real(2.5), &[]).unwrap_err().0, "type");
        assert_eq!(f.coerce(CellRef::Bool(true), &[]).unwrap_err().0, "type");
    }

    #[test]
    fn schema_errors_name_the_field() {
        let cases = [
            json!([{"name": "a", "type": "geopoint"}]),
            json!([{"name": "a", "constraints": {"unique": true}}]),
            json!([{"name": "a", "constraints": {"pattern": "("}}]),
            json!([{"name": "a", "type": "integer", "constraints": {"minimum": "x"}}]),
            json!([{"name": "a", "constraints": {"minimum": 1}}]),
            json!([{"name": "a", "type": "date", "format": "%d/%m/%Y"}]),
        ];
        for c in cases {
            let e = schema(c.clone()).unwrap_err();
            assert!(matches!(e, DataError::Schema(_)), "{c}");
            assert!(e.to_string().contains("\"a\""), "{e}");
        }
        assert!(schema(json!([{"name": ""}])).is_err());
        assert!(schema(json!([{"name": "a"}, {"name": "a"}])).is_err());
        assert!(schema(json!([])).is_err());
        assert!(TableSchema::from_json("{").is_err());
        assert!(TableSchema::from_json("[]").is_err());
    }

    #[test]
    fn missing_values_and_round_trip() {
        let s = TableSchema::from_json(
            r#"{"fields": [{"name": "a", "type": "integer"}], "missingValues": ["NA", ""]}"#,
        )
        .unwrap();
        assert_eq!(
            s.fields[0]
                .coerce(CellRef::Text("NA"), s.missing_values())
                .unwrap(),
            Typed::Null
        );
        let again = TableSchema::from_json(&s.to_json()).unwrap();
        assert_eq!(again.field_names(), vec!["a".to_string()]);
        let t = TableSchema::text_columns(&["x".into(), "y\"".into()]).unwrap();
        assert_eq!(t.field_names(), vec!["x".to_string(), "y\"".to_string()]);
    }
}
