//! The per-field plans (`field_plan.rs`) against the generic path: the same batch validated
//! both ways must give the same columns, rejects (rule, reason, column, raw) and counts, on
//! generated fields (every type a plan covers, with and without constraints, missing values
//! and number options) and generated cells (valid, invalid, edge spellings).

use proptest::prelude::*;
use serde_json::{json, Value as Json};

use super::*;

/// Cells every field type finds interesting: edges of each parser and constraint.
const VOCABULARY: &[&str] = &[
    "",
    "NA",
    "-",
    " ",
    "0",
    "1",
    "-5",
    "+7",
    "12",
    "42",
    "99",
    "100",
    "-0",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999",
    "1.5",
    "-2.25",
    ".5",
    "5.",
    "1e3",
    "1E-2",
    "1,5",
    "1.234,5",
    "1,234.5",
    "$1,200",
    "95%",
    "€ -3",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-INF",
    "+Inf",
    "Infinity",
    "1e400",
    "true",
    "false",
    "True",
    "FALSE",
    "yes",
    "y",
    "n",
    "2024-02-29",
    "2023-02-29",
    "2024-01-01",
    "1999-12-31",
    "0000-01-01",
    "2024-1-01",
    "2024-01-31T12:00:00Z",
    "north",
    "south",
    "central",
    "North",
    "é",
    "éé",
    "ééé",
    "😀",
    "😀😀",
    "abcd",
    "ab1",
    "SKU-00001",
    "SKU-123456789012345",
    "2024-01-31T12:00:00+01:00",
    "2024-01-01T00:00:00Z",
    "2023-12-31T23:00:00-01:00",
    "2024-01-01T00:00:00",
    "2024-01-01 00:00:00.5",
    "9999-12-31T23:59:59-01:00",
    "2024-01-01T00:00:00.500",
    "2024-02-30T00:00:00",
];

fn cell() -> impl Strategy<Value = Option<String>> {
    let text = prop_oneof![
        4 => proptest::sample::select(VOCABULARY).prop_map(str::to_string),
        2 => "[-+0-9.,eE]{0,8}",
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        1 => "[a-zé😀 $%NA-]{0,6}",
        1 => "20[0-9]{2}-0[1-3]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,10})?(Z|[+-][01][0-9](:?[0-5][0-9])?)?",
    ];
    // None: a cell that is NULL already (a row rejected while reading, or validated twice)
    prop_oneof![12 => text.prop_map(Some), 1 => Just(None)]
}

fn bound(kind: &str, pick: u8) -> Json {
    match (kind, pick % 4) {
        ("integer", 0) => json!(0),
        ("integer", 1) => json!(-5),
        ("integer", 2) => json!("42"),
        ("integer", _) => json!(9_223_372_036_854_775_807_i64),
        ("number", 0) => json!(0),
        ("number", 1) => json!(-2.25),
        ("number", 2) => json!("1.5"),
        ("number", _) => json!(1e300),
        ("datetime", 0) => json!("2024-01-01T00:00:00Z"),
        ("datetime", 1) => json!("2000-01-01T00:00:00"),
        ("datetime", _) => json!("2024-01-01T00:00:00.5+01:00"),
        (_, 0) => json!("2000-01-01"),
        (_, 1) => json!("2024-02-29"),
        _ => json!("1999-12-31"),
    }
}

prop_compose! {
    fn field(name: String)(
        kind in proptest::sample::select(
            &["integer", "number", "boolean", "string", "date", "year", "datetime"][..]),
        required in proptest::bool::weighted(0.3),
        own_missing in 0u8..5,
        opt in 0u8..6,
        min in proptest::option::weighted(0.4, 0u8..8),
        max in proptest::option::weighted(0.4, 0u8..8),
        text in 0u8..6,
    ) -> Json {
        let mut f = json!({"name": name, "type": kind});
        let mut c = serde_json::Map::new();
        if required {
            c.insert("required".into(), json!(true));
        }
        match own_missing {
            0 => f["missingValues"] = json!(["NA"]),
            1 => f["missingValues"] = json!(["", "-"]),
            2 => f["missingValues"] = json!([]),
            _ => {}
        }
        match (kind, opt) {
            ("number", 0) => { f["decimalChar"] = json!(","); f["groupChar"] = json!("."); }
            ("number", 1) => { f["groupChar"] = json!(","); f["bareNumber"] = json!(false); }
            ("integer", 0) => f["bareNumber"] = json!(false),
            ("integer", 1) => f["groupChar"] = json!(","),
            ("boolean", 0) => { f["trueValues"] = json!(["y"]); f["falseValues"] = json!(["n", ""]); }
            ("date", 0) => f["format"] = json!("any"),
            ("integer", 2) => { c.insert("enum".into(), json!([1, 42, "-5"])); }
            ("number", 2) => { c.insert("enum".into(), json!([1.5, 0])); }
            ("string", 0 | 1) => {
                c.insert("enum".into(), json!(["north", "south", "central", "", "é"]));
            }
            ("date", 2) => { c.insert("enum".into(), json!(["2024-02-29"])); }
            ("datetime", 0) => f["format"] = json!("any"),
            ("datetime", 2) => { c.insert("enum".into(), json!(["2024-01-01T00:00:00Z"])); }
            _ => {}
        }
        if matches!(kind, "integer" | "number" | "date" | "datetime") {
            if let Some(m) = min { c.insert("minimum".into(), bound(kind, m)); }
            if let Some(m) = max { c.insert("maximum".into(), bound(kind, m.wrapping_add(1))); }
        }
        if kind == "integer" && opt == 3 {
            c.insert("maximum".into(), json!("100000000000000000000")); // a big field
        }
        match text {
            0 => { c.insert("maxLength".into(), json!(2)); }
            1 => { c.insert("minLength".into(), json!(2)); }
            2 => { c.insert("pattern".into(), json!("[a-z0-9é-]*")); }
            _ => {}
        }
        if !c.is_empty() {
            f["constraints"] = Json::Object(c);
        }
        f
    }
}

prop_compose! {
    fn case()(n in 1usize..4)(
        fields in (0..n).map(|i| field(format!("c{i}"))).collect::<Vec<_>>(),
        rows in proptest::collection::vec(proptest::collection::vec(cell(), n), 0..24),
        schema_missing in 0u8..3,
        nan in any::<bool>(),
        big_int in any::<bool>(),
        pre_rejected in proptest::option::of(0usize..24),
    ) -> (Json, Vec<Vec<Option<String>>>, bool, bool, Option<usize>) {
        let mut schema = json!({"fields": fields});
        match schema_missing {
            0 => schema["missingValues"] = json!(["", "NA"]),
            1 => schema["missingValues"] = json!(["-"]),
            _ => {}
        }
        (schema, rows, nan, big_int, pre_rejected)
    }
}

fn batch(ncols: usize, rows: &[Vec<Option<String>>], pre: Option<usize>) -> RecordBatch {
    let names = (0..ncols).map(|i| format!("c{i}")).collect();
    let mut b = RecordBatch::new_text(names, rows.len(), &[]);
    for (i, r) in rows.iter().enumerate() {
        let (number, line) = (i as u64 + 1, i as u64 + 2);
        if r.iter().all(Option::is_some) {
            b.push_text_row(r.iter().map(|c| c.as_deref().unwrap_or("")), number, line);
        } else {
            // a cell that is NULL before validation: push it as such
            for (col, c) in b.columns.iter_mut().zip(r) {
                if let Column::Text(t) = col {
                    t.push(c.as_deref());
                }
            }
            b.record_numbers.push(number);
            b.lines.push(line);
            b.rejects.push(None);
        }
    }
    if let Some(p) = pre.filter(|p| *p < rows.len()) {
        b.reject(p, None, "custom", "rejected before validation")
            .unwrap();
    }
    b
}

fn outcome(b: &RecordBatch) -> Vec<String> {
    let mut out = vec![format!("{:?} rejected {}", b.names, b.num_rejected())];
    for i in 0..b.len() {
        let cells: Vec<_> = b
            .columns
            .iter()
            .map(|c| format!("{:?}", c.get(i)))
            .collect();
        out.push(format!("{i}: {cells:?} {:?}", b.reject_info(i)));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn plans_equal_the_generic_path(case in case()) {
        let (schema_json, rows, nan, big_int, pre) = case;
        let Ok(schema) = TableSchema::from_json(&schema_json.to_string()) else {
            return Ok(()); // a combination the schema refuses (e.g. a bound of another type)
        };
        let ncols = schema.fields.len();
        let target = Target { nan, big_int };
        let mut planned = batch(ncols, &rows, pre);
        let mut generic = planned.clone();
        let a = planned.validate_with(&schema, target, true).map_err(|e| e.to_string());
        let b = generic.validate_with(&schema, target, false).map_err(|e| e.to_string());
        prop_assert_eq!(a, b);
        prop_assert_eq!(outcome(&planned), outcome(&generic), "schema {}", schema_json);
    }
}

#[test]
fn the_benchmark_schema_takes_the_plans() {
    let schema = TableSchema::from_json(
        &json!({"fields": [
            {"name": "id", "type": "integer", "constraints": {"required": true, "minimum": 0}},
            {"name": "amount", "type": "number", "constraints": {"minimum": 0}},
            {"name": "flag", "type": "boolean"},
            {"name": "sku", "type": "string", "constraints": {"maxLength": 16}},
            {"name": "region", "type": "string", "constraints": {"enum": ["north", "south"]}},
            {"name": "day", "type": "date"},
            {"name": "at", "type": "datetime"},
        ]})
        .to_string(),
    )
    .unwrap();
    let kinds: Vec<&str> = schema
        .fields
        .iter()
        .map(
            |f| match f.plan(schema.missing_values(), Target::default()) {
                Plan::Int(..) => "int",
                Plan::Num(..) => "num",
                Plan::Bool(..) => "bool",
                Plan::Datetime(..) => "datetime",
                Plan::Pass(..) => "pass",
                Plan::Generic => "generic",
            },
        )
        .collect();
    assert_eq!(
        kinds,
        ["int", "num", "bool", "pass", "pass", "pass", "datetime"]
    );
}

/// A typed column as the JSONL reader builds it: integers, floats, or a mix of values.
fn typed_column() -> impl Strategy<Value = Vec<Value>> {
    let int = proptest::sample::select(
        &[
            0,
            1,
            -1,
            -5,
            12,
            42,
            99,
            100,
            i64::MAX,
            i64::MIN,
            1_000_000_000_000,
        ][..],
    );
    let real = proptest::sample::select(
        &[
            0.0,
            -0.0,
            1.5,
            -2.25,
            42.0,
            0.5,
            1e300,
            -1e300,
            1e-300,
            f64::NAN,
            f64::INFINITY,
        ][..],
    );
    let ints = prop_oneof![6 => int.clone().prop_map(Value::Int), 1 => Just(Value::Null)];
    let reals = prop_oneof![6 => real.clone().prop_map(Value::Real), 1 => Just(Value::Null)];
    let mixed = prop_oneof![
        int.prop_map(Value::Int),
        real.prop_map(Value::Real),
        Just(Value::Null),
        Just(Value::Bool(true)),
        proptest::sample::select(VOCABULARY).prop_map(|s| Value::Text(s.to_string())),
    ];
    prop_oneof![
        proptest::collection::vec(ints, 24),
        proptest::collection::vec(reals, 24),
        proptest::collection::vec(mixed, 24),
    ]
}

/// A column of `values` as the reader finishes it: `Int`/`Real` when they are all of a kind.
fn typed(values: Vec<Value>) -> Column {
    if values
        .iter()
        .all(|v| matches!(v, Value::Int(_) | Value::Null))
    {
        Column::Int(
            values
                .iter()
                .map(|v| match v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect(),
        )
    } else if values
        .iter()
        .all(|v| matches!(v, Value::Real(_) | Value::Null))
    {
        Column::Real(
            values
                .iter()
                .map(|v| match v {
                    Value::Real(f) => Some(*f),
                    _ => None,
                })
                .collect(),
        )
    } else {
        Column::Any(values)
    }
}

prop_compose! {
    fn typed_case()(n in 1usize..4)(
        fields in (0..n).map(|i| field(format!("c{i}"))).collect::<Vec<_>>(),
        columns in proptest::collection::vec(typed_column(), n),
        rows in 0usize..24,
        nan in any::<bool>(),
        big_int in any::<bool>(),
        pre_rejected in proptest::option::of(0usize..24),
    ) -> (Json, Vec<Vec<Value>>, usize, bool, bool, Option<usize>) {
        (json!({"fields": fields}), columns, rows, nan, big_int, pre_rejected)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Typed columns (the JSONL reader's integers and floats) read by the plans as by the
    /// generic path, and as the same cells held as a column of values.
    #[test]
    fn typed_plans_equal_the_generic_path(case in typed_case()) {
        let (schema_json, columns, rows, nan, big_int, pre) = case;
        let Ok(schema) = TableSchema::from_json(&schema_json.to_string()) else {
            return Ok(());
        };
        let names: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
        let make = |as_values: bool| {
            let cols = columns
                .iter()
                .map(|c| {
                    let c = c[..rows].to_vec();
                    if as_values { Column::Any(c) } else { typed(c) }
                })
                .collect();
            let mut raws = TextCol::with_capacity(rows, 0);
            (0..rows).for_each(|i| raws.push(Some(&format!("{{\"raw\": {i}}}"))));
            let mut b = RecordBatch::from_columns(
                names.clone(),
                cols,
                (1..=rows as u64).collect(),
                (2..=rows as u64 + 1).collect(),
                raws,
                Vec::new(),
            );
            if let Some(p) = pre.filter(|p| *p < rows) {
                b.reject(p, None, "custom", "rejected before validation").unwrap();
            }
            b
        };
        let target = Target { nan, big_int };
        let mut planned = make(false);
        let mut generic = planned.clone();
        let mut values = make(true);
        let a = planned.validate_with(&schema, target, true).map_err(|e| e.to_string());
        let b = generic.validate_with(&schema, target, false).map_err(|e| e.to_string());
        let c = values.validate_with(&schema, target, true).map_err(|e| e.to_string());
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
        prop_assert_eq!(outcome(&planned), outcome(&generic), "schema {}", schema_json);
        prop_assert_eq!(outcome(&planned), outcome(&values), "schema {}", schema_json);
    }
}
