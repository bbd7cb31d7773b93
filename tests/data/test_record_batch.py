"""RecordBatch: validation by column name, rejects (first verdict wins), raw text, Python
plugin operations (reject, set_column, rows)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tallyclerk._core import CsvReader, RecordBatch, TableSchema
from tallyclerk.errors import SourceError

Write = Callable[..., str]

SCHEMA = TableSchema.from_json(json.dumps({"fields": [
    {"name": "id", "type": "integer", "constraints": {"required": True}},
    {"name": "price", "type": "number", "constraints": {"minimum": 0}},
    {"name": "day", "type": "date"},
    {"name": "note"},
]}))


def test_validate_matches_columns_by_name_and_drops_extras(write: Write) -> None:
    path = write('note,extra,day,id,price\nhi,x,2024-01-01,1,2.5\n"a,b",y,2024-02-30,2,1\n'
                 ',z,,3,-1\n')
    (batch,) = list(CsvReader(path))
    assert batch.validate(SCHEMA) == 2
    assert batch.columns == ["id", "price", "day", "note"]
    # cells of a rejected row after its failing field stay NULL (never written)
    assert batch.rows() == [(1, 2.5, "2024-01-01", "hi"), (2, 1.0, None, None),
                            (3, None, None, None)]
    assert batch.to_pylist()[0] == {"id": 1, "price": 2.5, "day": "2024-01-01", "note": "hi"}
    r1, r2 = batch.rejects()
    assert (r1.index, r1.record_number, r1.line, r1.column, r1.rule) == (1, 2, 3, "day", "type")
    assert r1.reason == '"2024-02-30" is not a valid calendar date'
    assert r1.raw == '"a,b",y,2024-02-30,2,1', "rebuilt from the fields, extra columns kept"
    assert (r2.column, r2.rule) == ("price", "minimum")
    assert batch.num_valid == 1
    assert batch.is_rejected(1) and not batch.is_rejected(0)


def test_required_column_missing_from_the_header(write: Write) -> None:
    (batch,) = list(CsvReader(write("price,note\n1,x\n")))
    with pytest.raises(SourceError, match='column "id" required by the schema is missing'):
        batch.validate(SCHEMA)
    optional = TableSchema.from_json('{"fields": [{"name": "price", "type": "number"}, '
                                     '{"name": "other"}]}')
    assert batch.validate(optional) == 0
    assert batch.rows() == [(1.0, None)]


def test_first_verdict_wins_and_raw_survives() -> None:
    b = RecordBatch.from_rows(["id", "price"], [["x", "1"], ["2", "-5"]], [1, 2], [2, 3],
                              raws=['{"id": "x"}', '{"id": 2}'])
    b.reject(0, "id", "custom", "a plugin said no")
    b.reject(0, None, "later", "ignored")
    assert b.validate(SCHEMA) == 1
    (r0, r1) = b.rejects()
    assert (r0.rule, r0.reason, r0.raw) == ("custom", "a plugin said no", '{"id": "x"}')
    assert (r1.rule, r1.raw) == ("minimum", '{"id": 2}')
    with pytest.raises(IndexError):
        b.reject(2, None, "r", "r")
    with pytest.raises(IndexError):
        b.raw(-1)


def test_set_column_and_column() -> None:
    b = RecordBatch.from_rows(["id"], [[1], [2]], [1, 2], [1, 2])
    b.set_column("price", [1.5, None])
    b.set_column("id", ["10", "20"])
    assert b.columns == ["id", "price"]
    assert b.column("id") == ["10", "20"]
    with pytest.raises(ValueError, match="2 rows"):
        b.set_column("price", [1])
    with pytest.raises(KeyError):
        b.column("nope")
    assert b.validate(SCHEMA) == 0
    assert b.rows() == [(10, 1.5, None, None), (20, None, None, None)]
    assert b.raw(0) == "10,1.5,,"


def test_from_rows_checks_shapes_and_converts_values() -> None:
    with pytest.raises(ValueError, match="row 0 has 1 values for 2 columns"):
        RecordBatch.from_rows(["a", "b"], [[1]], [1], [1])
    with pytest.raises(ValueError, match="record numbers"):
        RecordBatch.from_rows(["a"], [[1]], [], [1])
    with pytest.raises(ValueError, match="appears twice"):
        RecordBatch.from_rows(["a", "a"], [[1, 2]], [1], [1])
    b = RecordBatch.from_rows(["v"], [[None], [True], [3], [2.5], ["s"], [2**80], [[1, "é"]],
                                      [{"a": {"b": None}}], [(1, 2)]],
                              list(range(9)), list(range(9)))
    assert b.column("v") == [None, True, 3, 2.5, "s", str(2**80), '[1,"é"]',
                             '{"a":{"b":null}}', "(1, 2)"]
    assert len(b) == 9 and b.num_rows == 9
