//! One compiled Table Schema field: its type, options and constraints, and the coercion of one
//! value (see [`super::schema`] for what is supported).

use std::borrow::Cow;

use regex::Regex;
use serde_json::{json, Map, Value as Json};

use super::batch::CellRef;
use super::coerce::{self, DateTime};
use super::error::{preview, DataError};
pub use super::field_type::FieldType;
use super::geo::{self, GeoFormat};
use super::number::NumberFormat;
use super::strptime::Pattern;
use super::temporal;

#[path = "field_formats.rs"]
mod formats;
pub use formats::TimeFormat;
use formats::{ANY_DATE, ANY_DATETIME, ANY_TIME};
#[path = "field_plan.rs"]
mod plan;
pub(crate) use plan::{run as run_plan, run_values, Plan};

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
    /// An integer of a big field (beyond 64 bits).
    Big(i128),
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
            (Key::Big(a), Key::Big(b)) => a <= b,
            (Key::Int(a), Key::Big(b)) => i128::from(*a) <= *b,
            (Key::Big(a), Key::Int(b)) => *a <= i128::from(*b),
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
    /// `constraints.unique`: no two rows of the table share a value (see `super::keys`).
    pub unique: bool,
    /// An integer field with a `minimum`/`maximum` beyond 64 bits: its values may be too
    /// (up to 128 bits), held as their digits; stored where the database keeps them exactly.
    pub big: bool,
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
    number: NumberFormat,
    format: TimeFormat,
    any_patterns: Vec<Pattern>,
    geo: GeoFormat,
    /// The field's own `missingValues` (else the schema's).
    missing: Option<Vec<String>>,
}

/// What the target database stores exactly, beyond what every one does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Target {
    /// NaN in a `number` column (PostgreSQL, DuckDB; SQLite would turn it into NULL).
    pub nan: bool,
    /// Integers beyond 64 bits in a big integer field's column (PostgreSQL `numeric`, DuckDB
    /// `HUGEINT`; SQLite's INTEGER is 64-bit).
    pub big_int: bool,
}

/// A rejected value: the rule that failed and a reason naming the value.
pub type Verdict = (&'static str, String);

pub(crate) fn schema_err(field: &str, msg: impl std::fmt::Display) -> DataError {
    DataError::Schema(format!("Table Schema field {field:?}: {msg}"))
}

pub(crate) fn string_list(
    v: &Json,
    what: &str,
    field: Option<&str>,
) -> Result<Vec<String>, DataError> {
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
    pub(crate) fn compile(v: &Json) -> Result<Field, DataError> {
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
        let temporal_type = matches!(
            ftype,
            FieldType::Date | FieldType::Time | FieldType::Datetime
        );
        let geo = match (ftype, obj.get("format").and_then(Json::as_str)) {
            (FieldType::Geopoint, Some("array")) => GeoFormat::Array,
            (FieldType::Geopoint, Some("object")) => GeoFormat::Object,
            _ => GeoFormat::Default,
        };
        let (format, any_patterns) = match obj.get("format") {
            _ if geo != GeoFormat::Default => (TimeFormat::Default, Vec::new()),
            None => (TimeFormat::Default, Vec::new()),
            Some(Json::String(f)) if f == "default" => (TimeFormat::Default, Vec::new()),
            Some(Json::String(f)) if temporal_type && f == "any" => {
                let list: &[&str] = match ftype {
                    FieldType::Date => &ANY_DATE,
                    FieldType::Time => &ANY_TIME,
                    _ => &ANY_DATETIME,
                };
                let patterns = list
                    .iter()
                    .map(|p| Pattern::compile(p).map_err(|e| schema_err(&name, e)))
                    .collect::<Result<Vec<_>, _>>()?;
                (TimeFormat::Any, patterns)
            }
            Some(Json::String(f)) if temporal_type && f.contains('%') => {
                let p = Pattern::compile(f)
                    .map_err(|e| schema_err(&name, format!("format {f:?}: {e}")))?;
                (TimeFormat::Pattern(p), Vec::new())
            }
            Some(f) => {
                return Err(schema_err(
                    &name,
                    format!(
                        "format {f} is not supported (\"default\"; for date, time and datetime \
                         also \"any\" and strptime patterns such as \"%d/%m/%Y\")"
                    ),
                ))
            }
        };
        let mut field = Field {
            name,
            ftype,
            required: false,
            sensitive: false,
            unique: false,
            big: false,
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
            number: NumberFormat::default(),
            format,
            any_patterns,
            geo,
            missing: None,
        };
        field.number_options(obj)?;
        if let Some(mv) = obj.get("missingValues") {
            field.missing = Some(string_list(mv, "missingValues", Some(&field.name))?);
        }
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
            (FieldType::Integer, Json::Number(n)) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Key::Int(i),
                (None, Some(u)) => Key::Big(i128::from(u)),
                _ => return Err(bad()), // beyond u64: JSON numbers lose digits, write a string
            },
            (FieldType::Year, Json::Number(n)) => Key::Int(n.as_i64().ok_or_else(bad)?),
            (FieldType::Year, Json::String(s)) => {
                Key::Int(temporal::parse_year(s).map_err(|_| bad())?)
            }
            (FieldType::Integer, Json::String(s)) => match coerce::parse_int(s) {
                Ok(i) => Key::Int(i),
                Err(_) => Key::Big(coerce::parse_big_int(s).map_err(|_| bad())?),
            },
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
            "unique" => {
                self.unique = v
                    .as_bool()
                    .ok_or_else(|| schema_err(&name, "unique must be true or false"))?
            }
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
                if matches!(b.0, Key::Big(_)) {
                    self.big = true;
                }
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
        self.coerce_for(cell, missing, Target::default())
    }

    /// [`Field::coerce`] for a target that stores NaN and integers beyond 64 bits or not (see
    /// [`Target`]).
    pub fn coerce_for<'a>(
        &self,
        cell: CellRef<'a>,
        missing: &[String],
        target: Target,
    ) -> Result<Typed<'a>, Verdict> {
        let missing = self.missing.as_deref().unwrap_or(missing);
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
        let typed = self.convert(cell, target)?;
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

    fn convert<'a>(&self, cell: CellRef<'a>, target: Target) -> Result<Typed<'a>, Verdict> {
        let err = |msg: &str| self.type_error(cell, msg);
        Ok(match (self.ftype, cell) {
            (_, CellRef::Null) => Typed::Null,
            (FieldType::Integer, CellRef::Text(s)) if self.big => {
                let v = self.parse_big_int_text(s).map_err(err)?;
                if !target.big_int && i64::try_from(v).is_err() {
                    return Err(err("is beyond 64 bits, which this database cannot store \
                                    exactly (PostgreSQL and DuckDB can)"));
                }
                Typed::Text(Cow::Owned(v.to_string()))
            }
            (FieldType::Integer, CellRef::Int(i)) if self.big => {
                Typed::Text(Cow::Owned(i.to_string()))
            }
            (FieldType::String, CellRef::Text(s)) => Typed::Text(Cow::Borrowed(s)),
            (FieldType::String, c) => Typed::Text(Cow::Owned(c.to_text())),
            (FieldType::Integer, CellRef::Text(s)) => {
                Typed::Int(self.parse_int_text(s).map_err(err)?)
            }
            (FieldType::Integer, CellRef::Int(i)) => Typed::Int(i),
            (FieldType::Integer, _) => return Err(err("is not an integer")),
            (FieldType::Number, c) => {
                let v = match c {
                    CellRef::Text(s) => self.parse_number_text(s).map_err(err)?,
                    CellRef::Int(i) => i as f64,
                    CellRef::Real(f) => f,
                    _ => return Err(err("is not a number")),
                };
                if v.is_nan() && !target.nan {
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
            (FieldType::Date, CellRef::Text(s)) => Typed::Text(self.date_text(s).map_err(err)?),
            (FieldType::Datetime, CellRef::Text(s)) => {
                let t = self.datetime_value(s).map_err(err)?;
                Typed::Text(Cow::Owned(t.to_iso()))
            }
            (FieldType::Time, CellRef::Text(s)) => {
                Typed::Text(Cow::Owned(self.time_text(s).map_err(err)?))
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
            (FieldType::Yearmonth, CellRef::Text(s)) => {
                temporal::parse_yearmonth(s).map_err(err)?;
                Typed::Text(Cow::Borrowed(s))
            }
            (FieldType::Duration, CellRef::Text(s)) => {
                temporal::check_duration(s).map_err(err)?;
                Typed::Text(Cow::Borrowed(s))
            }
            (FieldType::Geopoint, CellRef::Text(s)) => {
                Typed::Text(Cow::Owned(geo::parse_geopoint(s, self.geo).map_err(err)?))
            }
            (FieldType::Geojson, CellRef::Text(s)) => {
                geo::check_geojson(s).map_err(err)?;
                Typed::Text(Cow::Borrowed(s))
            }
            (FieldType::Any, CellRef::Text(s)) => Typed::Text(Cow::Borrowed(s)),
            (FieldType::Any, c) => Typed::Text(Cow::Owned(c.to_text())),
            (FieldType::Yearmonth, _) => return Err(err("is not a year and month")),
            (FieldType::Duration, _) => return Err(err("is not a duration")),
            (FieldType::Geopoint, _) => return Err(err("is not a geopoint")),
            (FieldType::Geojson, _) => return Err(err("is not a GeoJSON object")),
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
            (FieldType::Integer, Typed::Text(s)) if self.big => Key::Big(s.parse().ok()?),
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
        // A string has at most as many characters as bytes and at least a quarter as many
        // (UTF-8): when its byte length already satisfies both bounds, skip counting.
        let certain = self.min_length.map_or(true, |min| s.len() / 4 >= min)
            && self.max_length.map_or(true, |max| s.len() <= max);
        if !certain && (self.min_length.is_some() || self.max_length.is_some()) {
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
            "big": self.big,
            "constraints": Json::Object(self.constraints.clone()),
            "sensitive": self.sensitive,
        })
    }
}
