"""Data path micro benchmark: CSV parse + Table Schema validation + SQLite insert in Rust,
against Python's ``csv.reader`` + ``sqlite3.executemany`` in one transaction (the raw Python
limit), both on the same generated file (``peers.generate``: 8 columns of integers, floats,
short strings, ISO dates and a nullable column) in the same run.

Targets (issue 6): at least 1.0x (quick mode fails only below 0.5x):
- sequential: ``CsvReader`` -> ``RecordBatch.validate`` -> ``SqliteWriter.insert_batch``, one
  thread, one transaction;
- overlapped: the same with reading + validation on a second thread (both detach from the
  interpreter), as the loader's pipeline does.

Run: ``python3 -m pytest benches/bench_data_path.py`` (``TALLYCLERK_BENCH=full`` for 1,000,000
rows).
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The benches' harness is their conftest.py; this works from any rootdir or invocation.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest as harness
import peers
from tallyclerk._core import CsvReader, RecordBatch, SqliteWriter, TableSchema
from tallyclerk.errors import TallyclerkError

ROWS = harness.size(50_000, 1_000_000)
SCHEMA = TableSchema.from_json(json.dumps(peers.SCHEMA))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    csv_path, _, _ = peers.generate(ROWS, tmp_path_factory.mktemp("data"))
    return str(csv_path)


def fresh(db: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)


def load_sequential(src: str, db: str) -> int:
    w = SqliteWriter(db)
    try:
        w.create_table("orders", SCHEMA, [("_tc_file_id", "INTEGER")])
        w.begin()
        n = 0
        for batch in CsvReader(src, batch_rows=10_000):
            batch.validate(SCHEMA)
            n += w.insert_batch("orders", batch, [1])
        w.commit()
        return n
    finally:
        w.close()


def load_overlapped(src: str, db: str) -> int:
    """Reader + validation on one thread, inserts on this one (a bounded hand-off)."""
    handoff: queue.Queue[RecordBatch | TallyclerkError | None] = queue.Queue(maxsize=4)

    def produce() -> None:
        try:
            for batch in CsvReader(src, batch_rows=10_000):
                batch.validate(SCHEMA)
                handoff.put(batch)
        except TallyclerkError as exc:  # handed to the consumer, which raises it
            handoff.put(exc)
        finally:
            handoff.put(None)

    w = SqliteWriter(db)
    t = threading.Thread(target=produce, name="bench-reader")
    try:
        w.create_table("orders", SCHEMA, [("_tc_file_id", "INTEGER")])
        w.begin()
        t.start()
        n = 0
        while (item := handoff.get()) is not None:
            if isinstance(item, TallyclerkError):
                raise item
            n += w.insert_batch("orders", item, [1])
        w.commit()
        return n
    finally:
        t.join()
        w.close()


def run_ratio(benchmark: Any, name: str, load: Callable[[str, str], int], src: str,
              tmp_path: Path) -> None:
    db = str(tmp_path / "ours.db")
    base_db = str(tmp_path / "base.db")
    base_times: list[float] = []
    counts: list[int] = []

    def baseline() -> None:
        # Timed right before each round so that load on the machine hits both sides alike.
        fresh(base_db)
        t0 = time.perf_counter()
        assert peers.csv_executemany(src, base_db) == ROWS
        base_times.append(time.perf_counter() - t0)
        fresh(db)

    def ours() -> None:
        counts.append(load(src, db))

    benchmark.pedantic(ours, setup=baseline, rounds=harness.size(3, 5), iterations=1)
    assert counts and all(c == ROWS for c in counts)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM orders").fetchone() == (
            ROWS, ROWS)
    ours_s = harness.benchmark_median(benchmark)
    base_s = sorted(base_times)[len(base_times) // 2]
    harness.check_ratio(
        name,
        base_s / ours_s,
        at_least=1.0,
        detail=f"{ROWS / ours_s:,.0f} rows/s vs {ROWS / base_s:,.0f} rows/s ({ROWS:,} rows)",
    )


def test_csv_to_sqlite_sequential(benchmark: Any, source: str, tmp_path: Path) -> None:
    run_ratio(benchmark, "data path: CSV->SQLite (parse+validate+insert) vs csv.reader+"
              "executemany", load_sequential, source, tmp_path)


def test_csv_to_sqlite_overlapped(benchmark: Any, source: str, tmp_path: Path) -> None:
    run_ratio(benchmark, "data path: CSV->SQLite, read+validate overlapped with insert",
              load_overlapped, source, tmp_path)
