"""tallyclerk-parquet's tests: tallyclerk's loader conformance suite plus Parquet specifics.

Skipped, with the reason, when the plugin (or pyarrow) is not installed.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
tallyclerk_parquet = pytest.importorskip(
    "tallyclerk_parquet",
    reason="the tallyclerk-parquet plugin is not installed "
    "(python3 -m pip install -e ./plugins/tallyclerk-parquet)",
)

from tallyclerk.testing import LoaderConformance, Runner  # noqa: E402

ROWS: list[dict[str, Any]] = [
    {"id": 1, "name": "a", "amount": 1.5, "day": dt.date(2026, 1, 1), "tags": ["x"]},
    {"id": 2, "name": "ünï", "amount": None, "day": dt.date(2026, 2, 28), "tags": []},
    {"id": 3, "name": None, "amount": -2.0, "day": None, "tags": None},
    {"id": 4, "name": "d", "amount": 4.0, "day": dt.date(2026, 3, 1), "tags": ["y", "z"]},
    {"id": 5, "name": "e", "amount": 5.25, "day": dt.date(2026, 3, 2), "tags": ["q"]},
]


def write_parquet(path: Path, rows: list[dict[str, Any]], row_group_size: int = 2) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


class TestParquetLoader(LoaderConformance):
    plugin = tallyclerk_parquet
    format = "parquet"
    suffixes = (".parquet", ".pq")
    expected_rows: ClassVar[list[dict[str, Any]]] = [
        {"id": 1, "name": "a", "amount": 1.5, "day": "2026-01-01", "tags": '["x"]'},
        {"id": 2, "name": "ünï", "amount": None, "day": "2026-02-28", "tags": "[]"},
        {"id": 3, "name": None, "amount": -2.0, "day": None, "tags": None},
        {"id": 4, "name": "d", "amount": 4.0, "day": "2026-03-01", "tags": '["y","z"]'},
        {"id": 5, "name": "e", "amount": 5.25, "day": "2026-03-02", "tags": '["q"]'},
    ]

    def make_sample(self, directory: Path) -> Path:
        return write_parquet(directory / "sample.parquet", ROWS)  # three row groups

    def make_bad_file(self, directory: Path) -> Path:
        path = directory / "broken.parquet"
        path.write_bytes(b"PAR1 this is not really parquet PAR1")
        return path


def test_streams_row_groups_in_bounded_memory(tmp_path: Path) -> None:
    """Peak Arrow memory while reading stays a fraction of the file's data (one row group at a
    time), where reading the whole table would need all of it."""
    n, group = 400_000, 10_000
    table = pa.table({
        "id": pa.array(range(n), pa.int64()),
        "name": pa.array([f"name-{i:012d}" for i in range(n)]),
    })
    whole = table.nbytes
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=group)
    del table
    gc.collect()
    base = pa.total_allocated_bytes()
    source = tallyclerk_parquet.ParquetSource(str(path), batch_rows=5_000)
    peak, rows = 0, 0
    try:
        for batch in source:
            assert batch.num_rows <= 5_000
            rows += batch.num_rows
            peak = max(peak, pa.total_allocated_bytes() - base)
    finally:
        source.close()
    assert rows == n
    assert peak < whole / 5, (peak, whole)


def test_typed_values_validate_against_a_schema(tallyclerk_runner: Runner, tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "typed.parquet", ROWS)
    schema = {"fields": [
        {"name": "id", "type": "integer"},
        {"name": "amount", "type": "number", "constraints": {"minimum": 0}},
        {"name": "day", "type": "date"},
    ]}
    result = tallyclerk_runner.load([path], table="typed", schema=schema)
    result.check_accounting()
    assert result.file(path)["rows_rejected"] == 1
    [reject] = result.rejects()
    assert (reject["line"], reject["column"], reject["rule"]) == (3, "amount", "minimum")
    assert [r["id"] for r in result.data()] == [1, 2, 4, 5]


def test_parquet_columns_option(tallyclerk_runner: Runner, tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "cols.parquet", ROWS)
    result = tallyclerk_runner.load([path], table="cols",
                                    options={"parquet_columns": "name,id"})
    assert result.data()[0] == {"name": "a", "id": "1"}  # no schema: text columns
    bad = tallyclerk_runner.load([write_parquet(tmp_path / "cols2.parquet", ROWS[:2])],
                                 table="cols", options={"parquet_columns": "id,nope"})
    entry = bad.files[0]
    assert entry["status"] == "failed" and "'nope'" in entry["error"], entry


def test_installed_plugin_is_listed(tallyclerk_runner: Runner) -> None:
    result = tallyclerk_runner.cli("plugins", "--json")
    assert result.code == 0, result.err
    listed = {p["name"]: p for p in json.loads(result.out)["plugins"]}
    assert "parquet" in listed, sorted(listed)
    entry = listed["parquet"]
    assert (entry["distribution"], entry["version"], entry["builtin"]) == (
        "tallyclerk-parquet", tallyclerk_parquet.__version__, False)
    assert entry["hooks"] == [
        "tallyclerk_addoption", "tallyclerk_formats", "tallyclerk_open_source"]


def test_tallyclerk_load_parquet_end_to_end(tallyclerk_runner: Runner, tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "x.parquet", ROWS)
    db = tmp_path / "e2e.db"
    result = tallyclerk_runner.cli("load", str(path), "--table", "t", "--into",
                                   f"sqlite:///{db}", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["files"][0]["status"] == "loaded"
    assert report["rows_read"] == report["rows_written"] == len(ROWS)
    rows = tallyclerk_runner.rows("t", into=f"sqlite:///{db}")
    assert [r["name"] for r in rows] == ["a", "ünï", None, "d", "e"]
    # --format parquet claims a file whatever its name
    other = tmp_path / "export.bin"
    other.write_bytes(write_parquet(tmp_path / "y.parquet", ROWS[:2]).read_bytes())
    again = tallyclerk_runner.cli("load", str(other), "--format", "parquet", "--table", "u",
                                  "--into", f"sqlite:///{db}", "--json")
    assert again.code == 0, again.err
    assert again.json()["rows_written"] == 2
