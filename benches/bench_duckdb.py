"""DuckDB as a target: tallyclerk into ``duckdb:///`` against DuckDB's own ``read_csv``.

tallyclerk runs as ``python3 -m tallyclerk.cli load data.csv --table orders --schema
schema.json --into duckdb:///DB`` in a child process (Table Schema validation on, the audit
trail in its default SQLite file beside the DuckDB file, a fresh database each run); the peer
is DuckDB itself, ``CREATE TABLE orders AS SELECT * FROM read_csv('data.csv', header=true)``
in a child process (a parallel C++ CSV reader writing straight into DuckDB storage, no
validation, no audit). Rounds alternate the two (:func:`loadrun.rounds`).

Target (issue 17): tallyclerk at least 0.8x DuckDB's ``read_csv`` throughput on the
1,000,000-row file (full mode, ``TALLYCLERK_BENCH=full``, whole-process medians). Quick mode
(100,000 rows, CI) compares throughput net of start-up (best full run minus best one-row run,
as ``bench_e2e.py`` does) and asserts half the target.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest as harness
import loadrun
import peers

ROWS = harness.size(100_000, 1_000_000)
ROUNDS = 3
TC = "tallyclerk csv -> duckdb"
PEER = "duckdb read_csv"
TARGET = 0.8

_READ_CSV = """
import sys, duckdb
src, db = sys.argv[1], sys.argv[2]
con = duckdb.connect(db)
con.execute("CREATE TABLE orders AS SELECT * FROM read_csv(?, header=true)", [src])
print(con.execute("SELECT count(*) FROM orders").fetchone()[0])
"""


def _fresh(db: Path) -> None:
    for suffix in ("", ".wal", ".audit.db", ".audit.db-wal", ".audit.db-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)


def _rows(db: Path) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM orders").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def tallyclerk_duckdb(schema: Path) -> loadrun.Command:
    env = loadrun.cli_env()

    def run(src: Path, db: Path) -> peers.Run:
        target = db.with_suffix(".duckdb")
        _fresh(target)
        argv = [sys.executable, "-m", "tallyclerk.cli", "load", str(src), "--table", "orders",
                "--schema", str(schema), "--into", f"duckdb:///{target}"]
        r = peers.run_command(TC, argv, 0, env=env, cwd=db.parent)
        r.rows = _rows(target)
        _fresh(target)
        return r

    return loadrun.Command(TC, run)


def duckdb_read_csv() -> loadrun.Command:
    def run(src: Path, db: Path) -> peers.Run:
        target = db.with_suffix(".duckdb")
        _fresh(target)
        r = peers.run_command(PEER, [sys.executable, "-c", _READ_CSV, str(src), str(target)])
        _fresh(target)
        return r

    return loadrun.Command(PEER, run)


@pytest.fixture(scope="module")
def seconds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    csv_path, _jsonl, schema = loadrun.data(ROWS)
    work = tmp_path_factory.mktemp("duckdb")
    commands = [(tallyclerk_duckdb(schema), csv_path), (duckdb_read_csv(), csv_path)]
    runs = loadrun.rounds(commands, ROUNDS, work)
    for name, rs in runs.items():
        assert all(r.rows == ROWS for r in rs), f"{name} loaded {[r.rows for r in rs]} rows"
    if not harness.QUICK:
        return {name: loadrun.median_s(rs) for name, rs in runs.items()}
    one_csv, _one_jsonl, _ = loadrun.data(1)
    start = loadrun.rounds([(c, one_csv) for c, _ in commands], ROUNDS, work)
    return {name: max(min(r.seconds for r in rs) - min(r.seconds for r in start[name]), 1e-3)
            for name, rs in runs.items()}


def test_duckdb_target_vs_duckdb_read_csv(seconds: dict[str, float]) -> None:
    net = "net of start-up, " if harness.QUICK else ""
    harness.check_ratio(
        f"duckdb target: {ROWS:,} rows vs DuckDB read_csv", seconds[PEER] / seconds[TC],
        at_least=TARGET,
        detail=f"{net}tallyclerk {seconds[TC]:.2f} s, read_csv {seconds[PEER]:.2f} s; "
        f"{loadrun.load_average()}",
    )
