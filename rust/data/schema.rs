//! Frictionless Table Schema, compiled: field types, constraints and the coercion of one value.
//!
//! Supported: types `string`, `integer`, `number`, `boolean`, `date`, `datetime`, `time`,
//! `year`, `object` and `array` (JSON text), with their options (`format`, `decimalChar`,
//! `groupChar`, `bareNumber`, `trueValues`/`falseValues`, per-field `missingValues`: see
//! [`super::field`]); constraints `required`, `enum`, `minimum`/`maximum`, `minLength`/
//! `maxLength` (characters) and `pattern` (a full match, Rust `regex` syntax); `missingValues`
//! (default `[""]`); `unique` and the schema's `primaryKey` are compiled here and checked
//! across rows by [`super::keys`].
//! Anything else that changes how values are read (an unknown type, format or constraint) is a
//! [`DataError::Schema`] naming the field; descriptive keys (`title`, `description`, ...) and
//! unknown top-level keys are ignored.

use std::collections::HashSet;

use serde_json::{json, Value as Json};

use super::error::DataError;
use super::field::string_list;
pub use super::field::Field;
pub use super::field::{Typed, Verdict};
pub use super::field_type::FieldType;
use super::keys::KeySpec;

/// A compiled Table Schema.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub fields: Vec<Field>,
    missing_values: Vec<String>,
    /// `primaryKey` (empty when the schema has none).
    pub primary_key: Vec<String>,
    doc: Json,
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
        let primary_key = match obj.get("primaryKey") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::String(s)) if s.is_empty() => Vec::new(),
            Some(Json::String(s)) => vec![s.clone()],
            Some(v @ Json::Array(_)) => string_list(v, "primaryKey", None)?,
            Some(_) => {
                return Err(DataError::Schema(
                    "Table Schema: primaryKey must be a field name or a list of names".into(),
                ))
            }
        };
        for k in &primary_key {
            if !seen.contains(k.as_str()) {
                return Err(DataError::Schema(format!(
                    "Table Schema: primaryKey names {k:?}, which is not a field"
                )));
            }
        }
        if primary_key.iter().collect::<HashSet<_>>().len() != primary_key.len() {
            return Err(DataError::Schema(
                "Table Schema: primaryKey names a field twice".into(),
            ));
        }
        Ok(TableSchema {
            fields,
            missing_values,
            primary_key,
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

    /// The keys no two rows may share: the primary key (rule `primary-key`), then each
    /// `unique` field (rule `unique`) that is not the primary key on its own.
    pub fn key_specs(&self) -> Vec<KeySpec> {
        let mut out = Vec::new();
        if !self.primary_key.is_empty() {
            out.push(KeySpec::primary(self.primary_key.clone()));
        }
        for f in &self.fields {
            if f.unique && self.primary_key != [f.name.clone()] {
                out.push(KeySpec::unique(f.name.clone()));
            }
        }
        out
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
    use crate::data::batch::CellRef;
    use std::borrow::Cow;

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
        // lengths count characters, whatever the byte length says (4 bytes for "éé", 8 for
        // two emoji, 6 for "ééé"); the byte length alone only settles the clear cases
        let f = one(json!({"name": "s", "constraints": {"minLength": 2, "maxLength": 2}}));
        assert_eq!(ok(&f, "éé"), Typed::Text(Cow::Borrowed("éé")));
        assert_eq!(ok(&f, "😀😀"), Typed::Text(Cow::Borrowed("😀😀")));
        assert_eq!(ok(&f, "ab"), Typed::Text(Cow::Borrowed("ab")));
        assert_eq!(rule(&f, "ééé"), "maxLength");
        assert_eq!(rule(&f, "😀"), "minLength");
        assert_eq!(rule(&f, "é"), "minLength");
        let f = one(json!({"name": "s", "constraints": {"minLength": 1}}));
        assert_eq!(ok(&f, "😀"), Typed::Text(Cow::Borrowed("😀")));
        assert_eq!(ok(&f, "abcd"), Typed::Text(Cow::Borrowed("abcd")));
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
    fn number_options_and_specials() {
        let f = one(json!({"name": "n", "type": "number", "decimalChar": ",", "groupChar": "."}));
        assert_eq!(ok(&f, "1.234.567,89"), Typed::Real(1_234_567.89));
        assert_eq!(ok(&f, "12,50"), Typed::Real(12.5));
        let f = one(json!({"name": "n", "type": "number", "decimalChar": ","}));
        assert_eq!(rule(&f, "1.5"), "type");
        let f = one(json!({"name": "n", "type": "number", "groupChar": ",", "bareNumber": false}));
        assert_eq!(ok(&f, "$1,200"), Typed::Real(1200.0));
        assert_eq!(ok(&f, "95%"), Typed::Real(95.0));
        let f = one(json!({"name": "i", "type": "integer", "bareNumber": false}));
        assert_eq!(ok(&f, "95%"), Typed::Int(95));
        assert_eq!(ok(&f, "€ -3"), Typed::Int(-3));
        let f = one(json!({"name": "n", "type": "number"}));
        assert_eq!(ok(&f, "inf"), Typed::Real(f64::INFINITY));
        assert_eq!(ok(&f, "-Inf"), Typed::Real(f64::NEG_INFINITY));
        assert_eq!(rule(&f, "nan"), "type");
        assert!(schema(json!([{"name": "s", "decimalChar": ","}])).is_err());
        assert!(schema(json!([{"name": "i", "type": "integer", "decimalChar": ","}])).is_err());
        assert!(schema(json!([{"name": "n", "type": "number", "groupChar": "."}])).is_err());
    }

    #[test]
    fn formats_and_field_missing_values() {
        let f = one(json!({"name": "d", "type": "date", "format": "%d/%m/%Y"}));
        assert_eq!(
            ok(&f, "31/01/2024"),
            Typed::Text(Cow::Owned("2024-01-31".into()))
        );
        assert_eq!(rule(&f, "2024-01-31"), "type");
        assert!(!f.text_passthrough());
        let f = one(json!({"name": "d", "type": "date", "format": "any"}));
        assert_eq!(
            ok(&f, "2024-01-31"),
            Typed::Text(Cow::Borrowed("2024-01-31"))
        );
        assert_eq!(
            ok(&f, "01/31/2024"),
            Typed::Text(Cow::Owned("2024-01-31".into()))
        );
        let f = one(json!({"name": "t", "type": "datetime", "format": "%d/%m/%Y %H:%M%z"}));
        assert_eq!(
            ok(&f, "31/01/2024 10:00+0100"),
            Typed::Text(Cow::Owned("2024-01-31T09:00:00Z".into()))
        );
        let f = one(json!({"name": "t", "type": "time", "format": "%I:%M %p"}));
        assert_eq!(
            ok(&f, "1:05 PM"),
            Typed::Text(Cow::Owned("13:05:00".into()))
        );
        assert!(schema(json!([{"name": "d", "type": "date", "format": "%Q"}])).is_err());
        assert!(schema(json!([{"name": "s", "format": "%Y"}])).is_err());
        let f = one(json!({"name": "i", "type": "integer", "missingValues": ["-"]}));
        assert_eq!(
            f.coerce(CellRef::Text("-"), &[String::new()]).unwrap(),
            Typed::Null
        );
        assert_eq!(
            f.coerce(CellRef::Text(""), &[String::new()]).unwrap_err().0,
            "type"
        );
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
    fn a_bound_beyond_64_bits_makes_a_big_field() {
        use crate::data::field::Target;
        let f = one(json!({"name": "n", "type": "integer",
                           "constraints": {"maximum": "100000000000000000000"}}));
        assert!(f.big);
        let pg = Target {
            nan: true,
            big_int: true,
        };
        let big = |s| f.coerce_for(CellRef::Text(s), &[], pg);
        assert_eq!(
            big("99999999999999999999").unwrap(),
            Typed::Text(Cow::Owned("99999999999999999999".into()))
        );
        assert_eq!(big("100000000000000000001").unwrap_err().0, "maximum");
        assert_eq!(ok(&f, "7"), Typed::Text(Cow::Owned("7".into())));
        let e = f
            .coerce(CellRef::Text("99999999999999999999"), &[])
            .unwrap_err();
        assert!(e.1.contains("beyond 64 bits"), "{}", e.1);
        let small = one(json!({"name": "n", "type": "integer", "constraints": {"maximum": 5}}));
        assert!(!small.big);
    }

    #[test]
    fn schema_errors_name_the_field() {
        let cases = [
            json!([{"name": "a", "type": "point"}]),
            json!([{"name": "a", "constraints": {"unique": 1}}]),
            json!([{"name": "a", "constraints": {"pattern": "("}}]),
            json!([{"name": "a", "type": "integer", "constraints": {"minimum": "x"}}]),
            json!([{"name": "a", "constraints": {"minimum": 1}}]),
            json!([{"name": "a", "type": "date", "format": "%d/%m/%q"}]),
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
