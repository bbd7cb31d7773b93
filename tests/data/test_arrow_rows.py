"""RecordBatch.arrow_rows: the valid rows as Arrow arrays built in Rust and imported by pyarrow
through the Arrow C Data Interface (``__arrow_c_array__``). The values must equal the batch's
own Python view of its valid rows, for any data (hypothesis), with the schema's types."""

from __future__ import annotations

import datetime as dt
import gc
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyclerk._core import RecordBatch, TableSchema

pa = pytest.importorskip("pyarrow")

SCHEMA = TableSchema.from_json("""{"fields": [
    {"name": "id", "type": "integer"}, {"name": "x", "type": "number"},
    {"name": "ok", "type": "boolean"}, {"name": "day", "type": "date"},
    {"name": "note", "type": "string"}, {"name": "absent", "type": "integer"}]}""")

COLUMNS = ["id", "x", "ok", "day", "note"]


def text_batch(rows: list[list[Any]]) -> RecordBatch:
    n = len(rows)
    return RecordBatch.from_rows(COLUMNS, rows, list(range(1, n + 1)), list(range(2, n + 2)))


def expected(batch: RecordBatch, file_id: int) -> list[dict[str, Any]]:
    """The batch's valid rows as it shows them to Python, plus the constant column."""
    out = []
    for i, row in enumerate(batch.to_pylist()):
        if not batch.is_rejected(i):
            day = row["day"]
            out.append({**row, "day": None if day is None else dt.date.fromisoformat(day),
                        "_tc_file_id": file_id})
    return out


def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def norm(v: Any) -> Any:
        return "nan" if isinstance(v, float) and math.isnan(v) else v
    return [{k: norm(v) for k, v in r.items()} for r in a] == \
        [{k: norm(v) for k, v in r.items()} for r in b]


def test_types_follow_the_schema_and_rejected_rows_are_left_out() -> None:
    batch = text_batch([
        ["1", "1.5", "true", "2024-01-02", "a"],
        ["not a number", "2", "false", "2024-01-03", "b"],
        ["3", "", "", "", ""],
    ])
    assert batch.validate(SCHEMA) == 1
    rows = batch.arrow_rows(SCHEMA, ("_tc_file_id", 7))
    assert rows is not None and rows.num_rows == 2
    rb = pa.record_batch(rows)
    assert rb.schema.names == [*COLUMNS, "absent", "_tc_file_id"]
    assert [str(t) for t in rb.schema.types] == [
        "int64", "double", "bool", "date32[day]", "string", "int64", "int64"]
    assert rb.to_pylist() == expected(batch, 7)
    assert rb.column("absent").null_count == 2


def test_without_a_constant_column_and_with_no_valid_row() -> None:
    batch = text_batch([["x", "1", "true", "2024-01-01", "a"]])
    batch.validate(SCHEMA)
    rows = batch.arrow_rows(SCHEMA)
    assert rows is not None
    rb = pa.record_batch(rows)
    assert rb.num_rows == 0 and rb.schema.names == [*COLUMNS, "absent"]


def test_an_unvalidated_batch_whose_values_do_not_fit_gives_none() -> None:
    batch = text_batch([["1", "1.5", "true", "2024-01-02", "a"]])  # still text
    assert batch.arrow_rows(SCHEMA) is None


def test_the_constant_column_cannot_be_a_field() -> None:
    batch = text_batch([["1", "1.5", "true", "2024-01-02", "a"]])
    batch.validate(SCHEMA)
    with pytest.raises(ValueError, match="both a schema field"):
        batch.arrow_rows(SCHEMA, ("id", 1))


def test_capsules_not_imported_are_released() -> None:
    batch = text_batch([["1", "1.5", "true", "2024-01-02", "a"]])
    batch.validate(SCHEMA)
    rows = batch.arrow_rows(SCHEMA)
    assert rows is not None
    for _ in range(100):
        schema_capsule, array_capsule = rows.__arrow_c_array__()
        del schema_capsule, array_capsule
    gc.collect()
    assert pa.record_batch(rows).num_rows == 1  # still exportable afterwards


cell = st.one_of(st.none(), st.text(max_size=8),
                 st.integers(-10**6, 10**6).map(str),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.sampled_from(["true", "false", "2024-02-29", "2023-02-29", "0001-01-01",
                                  "9999-12-31", "1969-12-31", ""]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(cell, min_size=5, max_size=5), max_size=30),
       st.integers(-2**63, 2**63 - 1))
def test_equals_the_batch_python_view_of_its_valid_rows(
    rows: list[list[Any]], file_id: int,
) -> None:
    batch = text_batch(rows)
    batch.validate(SCHEMA)
    out = batch.arrow_rows(SCHEMA, ("_tc_file_id", file_id))
    assert out is not None
    assert same(pa.record_batch(out).to_pylist(),
                [{**r, "absent": None} for r in expected(batch, file_id)])
