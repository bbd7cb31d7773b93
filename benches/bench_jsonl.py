"""JSON Lines against CSV on the same rows (issue 16, item 2): the JSONL loader parses, coerces
and validates in Rust (``tallyclerk._core.JsonlReader``), so a JSONL load should run at least
0.7x the CSV load's rows/s (quick mode fails only below 0.35x).

Both files come from ``peers.generate`` (the same 300,000 rows x 8 columns: integers, floats,
short strings, ISO dates, a nullable text column; about 74 bytes a row as CSV, 160 as JSONL).
Each round loads the CSV file (the baseline, timed in the round's set-up) and then the JSONL
file through ``tallyclerk.load()`` in this process: Table Schema validation on, the audit store
in the same fresh SQLite file. Reported beside it, without a target: the data path alone
(reader + ``RecordBatch.validate``, no database).

Run: ``python3 -m pytest benches/bench_jsonl.py -s`` (``TALLYCLERK_BENCH=full`` enforces 0.7x).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest as harness
import peers
import tallyclerk
from tallyclerk._core import CsvReader, JsonlReader, TableSchema

ROWS = 300_000
TARGET = 0.7


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return peers.generate(ROWS, tmp_path_factory.mktemp("data"))


def _load(src: Path, schema: Path, work: Path) -> int:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    report = tallyclerk.load(str(src), table="orders", into=f"sqlite:///{work / 'd.db'}",
                             schema=str(schema))
    (f,) = report.files
    assert f.status == "loaded" and f.rows_rejected == 0, f
    return f.rows_written


def test_jsonl_load_vs_csv_load(benchmark: Any, files: tuple[Path, Path, Path],
                                tmp_path: Path) -> None:
    csv_path, jsonl_path, schema = files
    csv_times: list[float] = []
    counts: list[int] = []

    def baseline() -> None:
        # timed right before each round, so that load on the machine hits both sides alike
        t0 = time.perf_counter()
        assert _load(csv_path, schema, tmp_path / "csv") == ROWS
        csv_times.append(time.perf_counter() - t0)

    def ours() -> None:
        counts.append(_load(jsonl_path, schema, tmp_path / "jsonl"))

    benchmark.pedantic(ours, setup=baseline, rounds=harness.size(3, 5), iterations=1,
                       warmup_rounds=1)
    assert counts and all(c == ROWS for c in counts)
    jsonl_s = harness.benchmark_median(benchmark)
    csv_s = sorted(csv_times)[len(csv_times) // 2]
    harness.check_ratio(
        "JSONL load vs CSV load, rows/s (same rows, schema + audit)",
        csv_s / jsonl_s,
        at_least=TARGET,
        detail=f"{ROWS / jsonl_s:,.0f} vs {ROWS / csv_s:,.0f} rows/s ({ROWS:,} rows)",
    )


def test_jsonl_data_path_vs_csv(files: tuple[Path, Path, Path]) -> None:
    csv_path, jsonl_path, _ = files
    schema = TableSchema.from_json(json.dumps(peers.SCHEMA))

    def read(reader: Any) -> int:
        n = 0
        for batch in reader:
            batch.validate(schema)
            n += batch.num_valid
        return n

    times: dict[str, list[float]] = {"csv": [], "jsonl": []}
    for _ in range(harness.size(3, 5)):  # alternating, so both see the same machine
        for name, make in (("csv", lambda: CsvReader(str(csv_path))),
                           ("jsonl", lambda: JsonlReader(str(jsonl_path)))):
            t0 = time.perf_counter()
            assert read(make()) == ROWS
            times[name].append(time.perf_counter() - t0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    harness.report_ratio(
        "JSONL data path vs CSV (read + validate, no database)",
        med["csv"] / med["jsonl"],
        detail=f"{ROWS / med['jsonl']:,.0f} vs {ROWS / med['csv']:,.0f} rows/s",
    )
