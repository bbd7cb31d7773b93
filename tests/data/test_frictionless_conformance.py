"""Differential test against frictionless-py, the Table Schema reference implementation.

Generated values (hostile ones included) are read by a frictionless ``Field`` and by our Rust
coercion (``RecordBatch.validate``). Every disagreement on whether a value is accepted must be
one of the deliberate deviations below, and those are exactly the rows of README's table
"Deviations from frictionless-py" (between the ``deviations`` markers): each row's example is
run on both sides and must behave as the table says, so the documentation cannot drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

frictionless = pytest.importorskip("frictionless")

from tallyclerk._core import RecordBatch, TableSchema  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"
I64 = (-(2**63), 2**63 - 1)


def ours(field: dict[str, Any], value: str) -> bool:
    """Whether tallyclerk accepts ``value`` for ``field``."""
    batch = RecordBatch.from_rows(["x"], [[value]], [1], [2])
    batch.validate(TableSchema.from_json(json.dumps({"fields": [{"name": "x", **field}]})))
    return batch.num_rejected == 0


def theirs(field: dict[str, Any], value: str) -> bool:
    """Whether frictionless-py accepts ``value`` for ``field``."""
    f = frictionless.Field.from_descriptor({"name": "x", **field})
    _, notes = f.read_cell(value)
    return notes is None


def their_value(field: dict[str, Any], value: str) -> Any:
    f = frictionless.Field.from_descriptor({"name": "x", **field})
    return f.read_cell(value)[0]


def _beyond_float64(field: dict[str, Any], value: str) -> bool:
    v = their_value(field, value)
    return isinstance(v, Decimal) and v.is_finite() and abs(float(v)) == float("inf")


# Deviation id -> does this (field, value) fall under it?
Classifier = Callable[[dict[str, Any], str], bool]
DEVIATIONS: dict[str, Classifier] = {
    "whitespace": lambda f, v: f.get("type") in ("integer", "number", "year")
    and v != v.strip(),
    "non-ascii-digits": lambda f, v: f.get("type") in ("integer", "number", "year")
    and not v.isascii(),
    "underscore": lambda f, v: "_" in v and f.get("type") in ("integer", "number", "year"),
    "beyond-64-bits": lambda f, v: f.get("type") == "integer"
    and isinstance(n := their_value(f, v), int) and not I64[0] <= n <= I64[1],
    "beyond-float64": lambda f, v: f.get("type") == "number" and _beyond_float64(f, v),
    "nan": lambda f, v: f.get("type") == "number" and "nan" in v.lower(),
    "infinity-spelled-out": lambda f, v: f.get("type") == "number" and "infinity" in v.lower(),
    "year-sign": lambda f, v: f.get("type") == "year" and v[:1] == "+",
    "midnight-24": lambda f, v: f.get("type") in ("time", "datetime") and "24:00" in v,
    "date-single-digits": lambda f, v: f.get("type") == "date" and "format" not in f
    and re.fullmatch(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}", v) is not None,
    "yearmonth-loose": lambda f, v: f.get("type") == "yearmonth"
    and re.fullmatch(r"[0-9]{4}-[0-9]{2}", v) is None,
    "empty-duration": lambda f, v: f.get("type") == "duration" and v.lstrip("-") in ("P", "PT"),
}


def explained(field: dict[str, Any], value: str) -> list[str]:
    return [k for k, pred in DEVIATIONS.items() if pred(field, value)]


def assert_agrees(field: dict[str, Any], value: str) -> None:
    a, b = ours(field, value), theirs(field, value)
    if a != b:
        why = explained(field, value)
        assert why, (f"tallyclerk {'accepts' if a else 'rejects'} {value!r} for {field}, "
                     f"frictionless-py {'accepts' if b else 'rejects'} it: fix it or add a "
                     "deviation (README table + DEVIATIONS)")


HOSTILE = [" 1", "1 ", "\t2", "+5", "007", "-0", "١٢", "１２", "1_000", "1e400", "-1e400",
           "1e3", "1.0", ".5", "5.", "NaN", "nan", "INF", "-inf", "Infinity", "0x10", "",
           "9223372036854775808", "-9223372036854775809", "12,5", "2024-02-30", "2024-02-29",
           "2023-02-29", "2024-1-5", "24:00:00", "23:59:59", "12:00:00+0100", "12:00:00+01",
           "12:00:00+01:00", "12:00", "2024-01-01T00:00:00+0100", "2024-01-01 10:00:00",
           "2024-01-01T24:00:00", "2024-01-01T00:00:00.1234567Z", "2024-01-01T00:00:00Z",
           "0000", "2024", "+202", "true", "FALSE", "yes", "1", "0", "2024-01", "2024-1",
           "2024-13", "P1D", "PT", "P1Y2M3DT4H5M6S", "PT0.5S", "-P1D", "P1W", "1, 2", "200, 0",
           "10,20", "[1, 2]", '{"type": "Point", "coordinates": [1, 2]}', '{"type": "Point"}',
           "{}", "anything"]
TYPES = ["integer", "number", "year", "date", "time", "datetime", "boolean", "yearmonth",
         "duration", "geopoint", "geojson", "any"]


@pytest.mark.parametrize("kind", TYPES)
def test_hostile_values(kind: str) -> None:
    for value in HOSTILE:
        assert_agrees({"type": kind}, value)


digits = st.text(alphabet="0123456789", min_size=1, max_size=22)
numeric = st.one_of(
    digits,
    st.builds(lambda s, d: s + d, st.sampled_from(["", "+", "-", " ", "0"]), digits),
    st.builds(lambda a, b: f"{a}.{b}", digits, digits),
    st.builds(lambda a, e: f"{a}e{e}", digits, st.integers(-500, 500)),
    st.floats().map(repr),
    st.text(alphabet="0123456789+-.eE _", max_size=8),
)
temporal = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.times().map(lambda t: t.isoformat()),
    st.builds(lambda y, m, d: f"{y:04d}-{m}-{d}", st.integers(1, 9999), st.integers(0, 13),
              st.integers(0, 32)),
    st.builds(lambda h, m, s, z: f"{h:02d}:{m:02d}:{s:02d}{z}", st.integers(0, 25),
              st.integers(0, 60), st.integers(0, 60),
              st.sampled_from(["", "Z", "+0100", "-05:30", "+01", " "])),
)

other = st.one_of(
    st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(0, 9999), st.integers(0, 13)),
    st.builds(lambda parts: "P" + "".join(parts),
              st.lists(st.sampled_from(["1Y", "2M", "3W", "4D", "T5H", "T6M", "T7S", "T0.5S"]),
                       max_size=3)),
    st.builds(lambda a, b, sep: f"{a}{sep}{b}", st.floats(-200, 200, allow_nan=False),
              st.floats(-100, 100, allow_nan=False), st.sampled_from([",", ", ", " ,"])),
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(TYPES), value=st.one_of(numeric, temporal, other))
def test_generated_values(kind: str, value: str) -> None:
    assert_agrees({"type": kind}, value)


@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from([
        {"type": "number", "decimalChar": ",", "groupChar": "."},
        {"type": "number", "groupChar": ",", "bareNumber": False},
        {"type": "integer", "bareNumber": False},
        {"type": "date", "format": "%d/%m/%Y"},
        {"type": "datetime", "format": "%d/%m/%Y %H:%M"},
        {"type": "time", "format": "%H:%M"},
        {"type": "boolean", "trueValues": ["y"], "falseValues": ["n"]},
    ]),
    value=st.one_of(
        numeric,
        st.builds(lambda a, b, c: f"{a}.{b},{c}", digits, digits, digits),
        st.builds(lambda p, n, s: f"{p}{n}{s}", st.sampled_from(["$", "€ ", "", "EUR"]),
                  digits, st.sampled_from(["", "%", " net"])),
        st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
        st.datetimes().map(lambda d: d.strftime("%d/%m/%Y %H:%M")),
        st.times().map(lambda t: t.strftime("%H:%M")),
        st.sampled_from(["y", "n", "Y", "yes", "true"]),
    ),
)
def test_options(field: dict[str, Any], value: str) -> None:
    assert_agrees(field, value)


@pytest.mark.parametrize("value", ["inf", "-INF", "+inf", "NaN", "nan"])
@pytest.mark.parametrize("field", [
    {"type": "number", "bareNumber": False},
    {"type": "number", "groupChar": ",", "bareNumber": False},
    {"type": "number", "decimalChar": ",", "bareNumber": False},
    {"type": "number", "groupChar": ","},
])
@pytest.mark.parametrize("nan", [False, True])
def test_special_numbers_with_number_options(field: dict[str, Any], value: str,
                                             nan: bool) -> None:
    """``bareNumber: false`` strips every non-digit around a number, so the special values
    are not numbers there (frictionless-py: rejected); with bare numbers they are, whatever
    the group or decimal character. Found by ``test_options`` (``inf`` was accepted)."""
    batch = RecordBatch.from_rows(["x"], [[value]], [1], [2])
    batch.validate(TableSchema.from_json(json.dumps({"fields": [{"name": "x", **field}]})),
                   nan=nan)
    accepted = batch.num_rejected == 0
    expected = theirs(field, value) and (nan or "nan" not in value.lower())
    assert accepted == expected


def readme_rows() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- deviations:start -->")[1].split("<!-- deviations:end -->")[0]
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    return [[c.strip().strip("`") for c in row.strip("|").split("|")] for row in rows]


def test_readme_table_matches_behaviour() -> None:
    rows = readme_rows()
    assert sorted(r[0] for r in rows) == sorted(DEVIATIONS), "README table vs DEVIATIONS"
    for ident, field_json, value, theirs_says, ours_says, _reason in rows:
        field = json.loads(field_json)
        value = json.loads(value)  # JSON string in the table: whitespace stays visible
        assert explained(field, value) == [ident], (ident, value)
        assert theirs(field, value) == (theirs_says == "accepts"), (ident, "frictionless-py")
        assert ours(field, value) == (ours_says == "accepts"), (ident, "tallyclerk")
