"""Schema inference speed: ``tallyclerk._core.infer_csv`` on a 100,000-row sample against the
CSV reader alone reading the same rows (``CsvReader``, batches of 10,000), in the same run, on
the generated file of the other benchmarks (``peers.generate``: 8 columns of integers, floats,
short strings, ISO dates and a nullable column).

Target (issue 13): inference costs at most 2x the reader's time for the same rows (quick mode
fails only above 4x): every sampled value is checked by the load's own coercion for each
candidate type still open. The detail column shows the absolute time of the 100,000-row sample
(the issue asks for well under a second).

``test_schema_less_load_vs_given_schema``: a whole ``tallyclerk load`` of the generated CSV
without ``--schema`` (the default since issue 13.2: types inferred from a 10,000-row sample of
the file, then every row validated) against the same load with the benchmark's ``--schema``,
paired runs (start-up cancels out). Target: at most 1.10x (quick mode fails above 2.2x).

Run: ``python3 -m pytest benches/bench_infer.py``.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest as harness
import loadrun
import peers
from tallyclerk._core import CsvReader, infer_csv

ROWS = 100_000


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    csv_path, _, _ = peers.generate(ROWS + 1_000, tmp_path_factory.mktemp("data"))
    return str(csv_path)


def read_rows(src: str) -> int:
    n = 0
    reader = CsvReader(src, batch_rows=10_000)
    for batch in reader:
        n += len(batch)
        if n >= ROWS:
            break
    return n


def test_infer_vs_csv_reader(benchmark: Any, source: str) -> None:
    base_s = harness.measure(lambda: read_rows(source), repeat=harness.size(5, 9))
    schema = benchmark.pedantic(lambda: infer_csv([source], rows=ROWS),
                                rounds=harness.size(5, 9), iterations=1, warmup_rounds=1)
    doc = json.loads(schema)
    assert f"{ROWS} rows" in doc["description"]
    types = {f["name"]: f["type"] for f in doc["fields"]}
    assert "string" in types.values() and "integer" in types.values(), types
    ours_s = harness.benchmark_median(benchmark)
    harness.check_ratio(
        "infer: 100,000-row CSV sample vs CsvReader reading it",
        ours_s / base_s,
        at_most=2.0,
        detail=f"infer {ours_s * 1000:.0f} ms, reader {base_s * 1000:.0f} ms ({ROWS:,} rows, "
        f"types {sorted(set(types.values()))})",
    )


LOAD_ROWS = harness.size(100_000, 1_000_000)
PAIRS = harness.size(2, 4)
INFERRED = "tallyclerk csv, no --schema (inferred)"
GIVEN = "tallyclerk csv, --schema"


def test_schema_less_load_vs_given_schema(tmp_path: Path) -> None:
    csv_path, _, schema = loadrun.data(LOAD_ROWS)
    inferred = loadrun.tallyclerk_load(INFERRED, None)
    given = loadrun.tallyclerk_load(GIVEN, schema)
    runs = loadrun.rounds([(inferred, csv_path), (given, csv_path)], PAIRS * 2, tmp_path)
    assert all(r.rows == LOAD_ROWS for r in runs[GIVEN])
    written = {r.rows for r in runs[INFERRED]}
    ratios = [a.seconds / b.seconds for a, b in zip(runs[INFERRED], runs[GIVEN], strict=True)]
    inf_s, given_s = loadrun.median_s(runs[INFERRED]), loadrun.median_s(runs[GIVEN])
    harness.check_ratio(
        "e2e CSV->SQLite without --schema (inferred) / with --schema (time, median of pairs)",
        statistics.median(ratios), at_most=1.10,
        detail=f"inferred {LOAD_ROWS / inf_s:,.0f} rows/s ({sorted(written)} rows written), "
        f"given {LOAD_ROWS / given_s:,.0f} rows/s ({len(ratios)} pairs); "
        f"{loadrun.load_average()}",
    )
