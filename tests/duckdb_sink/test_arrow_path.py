"""The DuckDB sink's two ways to Arrow give the same table: the Rust export of a validated
batch (``RecordBatch.arrow_rows``) and the Python-list path a batch not validated against the
schema falls back to; and DuckDB runs one worker thread fewer than the process's cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tallyclerk._core import RecordBatch, TableSchema
from tallyclerk.builtins.duckdb_sink import FILE_ID_COLUMN, DuckDbSink

pa = pytest.importorskip("pyarrow")

SCHEMA = TableSchema.from_json("""{"fields": [
    {"name": "id", "type": "integer"}, {"name": "x", "type": "number"},
    {"name": "ok", "type": "boolean"}, {"name": "day", "type": "date"},
    {"name": "note", "type": "string"}]}""")
FIELDS = [(str(f["name"]), str(f["type"])) for f in SCHEMA.fields()]
ROWS = [["1", "1.5", "true", "2024-01-02", "a"], ["2", "", "false", "", ""],
        ["bad", "1", "true", "2024-01-02", "b"], ["3", "-0.5", "", "1999-12-31", "c\"d"]]


def batch() -> RecordBatch:
    return RecordBatch.from_rows(["id", "x", "ok", "day", "note"], ROWS,
                                 [1, 2, 3, 4], [2, 3, 4, 5])


def test_the_rust_export_and_the_python_fallback_give_the_same_table(tmp_path: Path) -> None:
    sink = DuckDbSink(str(tmp_path / "t.duckdb"))
    try:
        b = batch()
        b.validate(SCHEMA)
        fast = sink.to_arrow(b, FIELDS, 5, SCHEMA)
        slow = sink.to_arrow(b, FIELDS, 5)  # no schema: the Python lists
        assert fast.num_rows == slow.num_rows == 3
        assert fast.column_names == slow.column_names == [n for n, _ in FIELDS] + [FILE_ID_COLUMN]
        assert fast.to_pylist() == slow.to_pylist()
        unvalidated = batch()
        assert unvalidated.arrow_rows(SCHEMA) is None  # text where integers belong
    finally:
        sink.close()


def test_duckdb_gets_one_thread_fewer_than_the_cores(tmp_path: Path) -> None:
    sink = DuckDbSink(str(tmp_path / "t.duckdb"))
    try:
        row = sink.conn.execute("SELECT current_setting('threads')").fetchone()
        assert row is not None
        assert int(row[0]) == max(1, len(os.sched_getaffinity(0)) - 1)
    finally:
        sink.close()
