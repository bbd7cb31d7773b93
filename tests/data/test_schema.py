"""TableSchema: compiling Frictionless Table Schema documents and coercing values through
RecordBatch.validate."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyclerk._core import RecordBatch, TableSchema
from tallyclerk.errors import ConfigError, SchemaError


def schema(*fields: dict[str, Any], **top: Any) -> TableSchema:
    return TableSchema.from_json(json.dumps({"fields": list(fields), **top}))


def check(field: dict[str, Any], values: list[Any]) -> list[tuple[Any, str | None]]:
    """Validate one column; per value: (coerced value, rule of the reject or None)."""
    b = RecordBatch.from_rows(
        [field["name"]], [[v] for v in values], list(range(1, len(values) + 1)),
        list(range(2, len(values) + 2)),
    )
    b.validate(schema(field))
    rules = {r.index: r.rule for r in b.rejects()}
    col = b.column(field["name"])
    return [(None if i in rules else col[i], rules.get(i)) for i in range(len(values))]


def test_fields_describe_types_and_sqlite_types() -> None:
    s = schema(
        {"name": "i", "type": "integer", "constraints": {"required": True}},
        {"name": "n", "type": "number"}, {"name": "s"}, {"name": "b", "type": "boolean"},
        {"name": "d", "type": "date"}, {"name": "t", "type": "datetime"},
    )
    assert s.field_names == ["i", "n", "s", "b", "d", "t"]
    assert [(f["type"], f["sqlite_type"]) for f in s.fields()] == [
        ("integer", "INTEGER"), ("number", "REAL"), ("string", "TEXT"),
        ("boolean", "INTEGER"), ("date", "TEXT"), ("datetime", "TEXT"),
    ]
    assert s.fields()[0]["constraints"] == {"required": True}
    assert TableSchema.from_json(s.to_json()).field_names == s.field_names
    assert TableSchema.text_columns(["a", "b"]).fields()[1]["type"] == "string"


def test_integer() -> None:
    got = check({"name": "x", "type": "integer"},
                ["42", "-7", "+3", "1.0", "1e3", " 1", "9223372036854775807",
                 "9223372036854775808", "", 5, 2**70, 1.5, True])
    assert got == [
        (42, None), (-7, None), (3, None), (None, "type"), (None, "type"), (None, "type"),
        (2**63 - 1, None), (None, "type"), (None, None), (5, None), (None, "type"),
        (None, "type"), (None, "type"),
    ]


def test_number_special_values() -> None:
    got = check({"name": "x", "type": "number"}, ["1.5", "-2e3", ".5", "INF", "-INF", "NaN",
                                                    "inf", "nan", "1,5", 3, 2.5])
    assert got == [
        (1.5, None), (-2000.0, None), (0.5, None), (float("inf"), None),
        (float("-inf"), None), (None, "type"), (float("inf"), None), (None, "type"),
        (None, "type"), (3.0, None), (2.5, None),
    ]


def test_boolean_default_and_custom_values() -> None:
    got = check({"name": "x", "type": "boolean"}, ["true", "True", "TRUE", "1", "false", "0",
                                                     "yes", True])
    assert got == [(True, None)] * 4 + [(False, None)] * 2 + [(None, "type"), (True, None)]
    got = check({"name": "x", "type": "boolean", "trueValues": ["Y"], "falseValues": ["N"]},
                ["Y", "N", "true"])
    assert got == [(True, None), (False, None), (None, "type")]


def test_date_and_datetime() -> None:
    got = check({"name": "x", "type": "date"},
                ["2024-02-29", "2023-02-29", "2024-13-01", "2024-1-1", "20240101"])
    assert got == [("2024-02-29", None)] + [(None, "type")] * 4
    got = check({"name": "x", "type": "datetime"}, [
        "2024-01-31T12:00:00Z", "2024-01-31T12:00:00+02:00", "2024-01-31 12:00:00.500",
        "2024-01-31T24:00:00", "2024-01-31",
    ])
    assert got == [
        ("2024-01-31T12:00:00Z", None), ("2024-01-31T10:00:00Z", None),
        ("2024-01-31T12:00:00.5", None), (None, "type"), (None, "type"),
    ]


def test_constraints() -> None:
    got = check({"name": "x", "type": "integer",
                 "constraints": {"required": True, "minimum": 1, "maximum": 10}},
                ["", "0", "11", "5", None])
    assert got == [(None, "required"), (None, "minimum"), (None, "maximum"), (5, None),
                   (None, "required")]
    got = check({"name": "x", "constraints": {"enum": ["a", "b"], "minLength": 1,
                                               "maxLength": 1}}, ["a", "c", "b"])
    assert got == [("a", None), (None, "enum"), ("b", None)]
    got = check({"name": "x", "constraints": {"pattern": "[A-Z]{2}[0-9]+", "maxLength": 4}},
                ["AB12", "AB12345", "ab12", "XAB1"])
    assert got == [("AB12", None), (None, "maxLength"), (None, "pattern"), (None, "pattern")]
    got = check({"name": "x", "constraints": {"minLength": 2}}, ["ñé", "ñ"])
    assert got == [("ñé", None), (None, "minLength")], "lengths count characters"
    got = check({"name": "x", "type": "date", "constraints": {"minimum": "2024-01-01"}},
                ["2023-12-31", "2024-01-01"])
    assert got == [(None, "minimum"), ("2024-01-01", None)]


def test_missing_values() -> None:
    s = schema({"name": "x", "type": "integer"}, missingValues=["NA", "-"])
    b = RecordBatch.from_rows(["x"], [["NA"], ["-"], [""], ["3"]], [1, 2, 3, 4], [2, 3, 4, 5])
    assert b.validate(s) == 1
    assert b.column("x") == [None, None, None, 3]
    assert b.rejects()[0].rule == "type", "'' is not a missing value here"


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ('{"fields": [{"name": "a", "type": "point"}]}',
         '"a": type "point" is not supported'),
        ('{"fields": [{"name": "a", "constraints": {"unique": 1}}]}',
         '"a": unique must be true or false'),
        ('{"fields": [{"name": "a"}], "primaryKey": "b"}',
         'primaryKey names "b", which is not a field'),
        ('{"fields": [{"name": "a"}], "primaryKey": ["a", "a"]}',
         "primaryKey names a field twice"),
        ('{"fields": [{"name": "a", "constraints": {"pattern": "(("}}]}', "does not compile"),
        ('{"fields": [{"name": "a", "type": "integer", "constraints": {"minimum": "x"}}]}',
         "minimum"),
        ('{"fields": [{"name": "a", "format": "%d/%m/%q", "type": "date"}]}', "format"),
        ('{"fields": [{"name": "a"}, {"name": "a"}]}', "more than once"),
        ('{"fields": [{"name": ""}]}', "empty name"),
        ('{"fields": [{"type": "string"}]}', "needs a \"name\""),
        ('{"fields": []}', "no fields"),
        ("{nope", "not valid JSON"),
        ('["a"]', "JSON object"),
    ],
)
def test_schema_errors(doc: str, fragment: str) -> None:
    with pytest.raises(SchemaError) as e:
        TableSchema.from_json(doc)
    assert fragment in str(e.value)
    assert isinstance(e.value, ConfigError)


# --- coercion agrees with Python's own parsers ----------------------------------------------

PROPS = settings(max_examples=300, deadline=None)


def one(ftype: str, value: str) -> tuple[Any, str | None]:
    return check({"name": "x", "type": ftype}, [value])[0]


@PROPS
@given(st.one_of(st.text(alphabet="0123456789+- .e", max_size=22),
                 st.integers(-(2**70), 2**70).map(str)))
def test_integer_agrees_with_python(s: str) -> None:
    value, rule = one("integer", s)
    if re.fullmatch(r"[+-]?[0-9]+", s) and -(2**63) <= int(s) < 2**63:
        assert (value, rule) == (int(s), None)
    else:
        assert (value, rule) == (None, "type") or (s == "" and rule is None)


@PROPS
@given(st.one_of(st.text(alphabet="0123456789+-.eE", max_size=12),
                 st.floats(allow_nan=False, allow_infinity=False).map(repr)))
def test_number_agrees_with_python(s: str) -> None:
    value, rule = one("number", s)
    try:
        expected: float | None = float(s)
    except ValueError:
        expected = None
    if s == "":
        assert (value, rule) == (None, None)
    elif expected is None or expected in (float("inf"), float("-inf")):
        assert rule == "type"
    else:
        assert (value, rule) == (expected, None)


@PROPS
@given(st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"))
def test_date_agrees_with_python(s: str) -> None:
    try:
        dt.date.fromisoformat(s)
        ok = True
    except ValueError:
        ok = False
    assert one("date", s) == ((s, None) if ok else (None, "type"))


@PROPS
@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                    timezones=st.none() | st.timezones()),
       st.sampled_from(["T", " "]))
def test_datetime_normalizes_like_python(value: dt.datetime, sep: str) -> None:
    offset = value.utcoffset()
    if offset is not None and offset.total_seconds() % 60:
        return  # offsets with seconds (old local mean times) are not ISO 8601 (+HH:MM:SS)
    got, rule = one("datetime", value.isoformat(sep))
    assert rule is None
    parsed = dt.datetime.fromisoformat(got)
    if value.tzinfo is None:
        assert parsed == value and not got.endswith("Z")
    else:
        assert got.endswith("Z") and parsed == value.astimezone(dt.timezone.utc)


def test_formats_and_number_options_through_validate() -> None:
    got = check({"name": "x", "type": "date", "format": "%d/%m/%Y"},
                ["31/01/2024", "2024-01-31", "30/02/2024", ""])
    assert got == [("2024-01-31", None), (None, "type"), (None, "type"), (None, None)]
    got = check({"name": "x", "type": "number", "decimalChar": ",", "groupChar": "."},
                ["1.234.567,89", "12,50", "1.5", "-INF", "nan"])
    assert got == [(1234567.89, None), (12.5, None), (15.0, None), (float("-inf"), None),
                   (None, "type")]
    got = check({"name": "x", "type": "integer", "bareNumber": False, "missingValues": ["-"]},
                ["$1200", "95%", "-", ""])
    assert got == [(1200, None), (95, None), (None, None), (None, "type")]
    got = check({"name": "x", "type": "time", "format": "%I:%M %p"}, ["1:05 PM", "13:05"])
    assert got == [("13:05:00", None), (None, "type")]


def test_the_other_types_through_validate() -> None:
    assert check({"name": "x", "type": "yearmonth"}, ["2024-01", "2024-13"]) == [
        ("2024-01", None), (None, "type")]
    assert check({"name": "x", "type": "duration"}, ["P1DT2H", "1 day"]) == [
        ("P1DT2H", None), (None, "type")]
    assert check({"name": "x", "type": "geopoint"}, ["10, 20", "200, 0"]) == [
        ("10,20", None), (None, "type")]
    assert check({"name": "x", "type": "geopoint", "format": "object"},
                 ['{"lon": 1, "lat": 2}']) == [("1,2", None)]
    point = '{"type": "Point", "coordinates": [1, 2]}'
    assert check({"name": "x", "type": "geojson"}, [point, "{}"]) == [
        (point, None), (None, "type")]
    assert check({"name": "x", "type": "any"}, ["anything", 3]) == [
        ("anything", None), ("3", None)]
